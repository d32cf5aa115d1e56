//! Where stored changes live, and how runs of them are sealed.
//!
//! A change arrives as one row of `CHANGES` (signature, then the raw
//! automerge chunk): cheap to write, which matters while catching up. Short
//! posts barely compress one at a time, but a run of them from one device
//! shares its actor id, its vocabulary and its op layout, so [`seal`] later
//! packs [`SEAL_RUN`] consecutive changes of one actor into a DEFLATE block
//! in `SEALED`, split into pieces that fit redb's 4 KiB pages two to a page
//! (a single large value would get a power-of-two page of its own and waste
//! up to half of it). Only changes at or below the actor's clock and below
//! its first change still waiting for dependencies are sealed: a sealed run
//! has no gaps, and everything in it has been applied and indexed.
//!
//! Inside a block, a change whose only dependency is the change before it
//! (a device writing one change after another: nearly always) is stored
//! without that 32-byte hash, which is incompressible; reading the block
//! recomputes it from the previous change. A change's post bodies (see
//! `bodies`) are sealed with it, in the same block, and a change with one
//! body is stored without the body's hash (32 more incompressible bytes):
//! reading recomputes it from the body. Erasing a sealed body rewrites its
//! block, the hash back in its change.
//!
//! Block layout, before DEFLATE: a format byte, then per change:
//! - format 1 (no bodies): `u32 length || u8 elided || row`, where `row` is
//!   the signature and the chunk, less the dependency hash when `elided` is 1;
//! - format 2 ([`BLOCK_FORMAT`]): `u32 length || u8 flags || [u32 body hash
//!   position] || row || u8 bodies || per body (u64 op counter || u32
//!   length || body)`. Flag 1: the dependency hash is elided; flag 2: the
//!   hash of the one body is elided from the row at the position given (in
//!   the whole row), which then follows the flags.
//!
//! Every reader goes through [`Rows`], which looks in both places.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::rc::Rc;

use redb::ReadableTable;

use crate::error::StoreError;
use crate::rows::{change_key, split_change_key, split_pair_key};
use crate::tables::{ChangesTable, SealedTable};
use crate::tx::Writer;

/// Changes per sealed block.
pub const SEAL_RUN: u32 = 64;
/// Largest piece of a block stored as one value: two fit in a 4 KiB page.
pub(crate) const PIECE_BYTES: usize = 2000;
/// The layout of a block's contents; another layout gets another number.
/// Blocks of layout 1 (before bodies) are still read.
const BLOCK_FORMAT: u8 = 2;
const BLOCK_FORMAT_NO_BODIES: u8 = 1;
/// Most pieces a block is split into (the piece number is one byte); a
/// block of very large changes gets larger pieces.
const MAX_PIECES: usize = 256;
/// Decoded blocks a [`BlockCache`] keeps: a page of a feed reads a few.
const CACHED_BLOCKS: usize = 8;

/// `doc_no || actor_no || first seq || piece number`.
pub fn sealed_key(doc_no: u32, actor_no: u32, first_seq: u32, piece: u8) -> [u8; 13] {
    let mut k = [0; 13];
    k[..12].copy_from_slice(&change_key(doc_no, actor_no, first_seq));
    k[12] = piece;
    k
}

fn split_sealed_key(k: &[u8; 13]) -> (u32, u32, u32) {
    split_change_key(k[..12].try_into().expect("12 bytes"))
}

/// The post bodies of one change: `(op counter, body)`, in op order.
pub type RowBodies = Vec<(u64, Vec<u8>)>;

/// One decoded block: the rows of seqs `first..first + rows.len()`, and
/// each row's bodies.
#[derive(Debug)]
pub struct Block {
    first: u32,
    rows: Vec<Vec<u8>>,
    bodies: Vec<RowBodies>,
}

impl Block {
    fn row(&self, seq: u32) -> Option<&[u8]> {
        let i = seq.checked_sub(self.first)? as usize;
        self.rows.get(i).map(Vec::as_slice)
    }

    /// The bodies of change `seq`, if this block holds it.
    pub fn bodies(&self, seq: u32) -> Option<&RowBodies> {
        let i = seq.checked_sub(self.first)? as usize;
        self.bodies.get(i)
    }
}

/// Where the hash of a change's one body sits in its row, if it has one
/// body and the hash is found once, after the chunk's header.
fn body_hash_at(row: &[u8], bodies: &RowBodies) -> Option<usize> {
    let [(_, body)] = bodies.as_slice() else {
        return None;
    };
    let hash = kith_core::body::hash(body);
    let from = 64 + 9;
    let mut found = row
        .get(from..)?
        .windows(32)
        .enumerate()
        .filter(|(_, w)| *w == hash)
        .map(|(i, _)| from + i);
    let at = found.next()?;
    found.next().is_none().then_some(at)
}

/// Where the dependency hash of a change row (signature, then chunk) sits,
/// if the change has exactly one dependency.
fn single_dep_at(row: &[u8]) -> Option<usize> {
    // Chunk: magic (4), checksum (4), type (1), body length (LEB128), then
    // the body, which opens with the number of dependencies (LEB128).
    let mut i = 64 + 9;
    while *row.get(i)? & 0x80 != 0 {
        i += 1;
    }
    i += 1;
    let at = i + 1;
    (*row.get(i)? == 1 && row.len() >= at + 32).then_some(at)
}

/// The hash of the chunk in a change row, if it is a well-formed one.
fn chunk_hash(row: &[u8]) -> Option<[u8; 32]> {
    kith_core::chunk::parse_header(row.get(64..)?)
        .ok()
        .map(|h| h.hash)
}

fn encode_block(rows: &[Vec<u8>], bodies: &[RowBodies]) -> Vec<u8> {
    let mut out = vec![BLOCK_FORMAT];
    let mut previous: Option<[u8; 32]> = None;
    let none = RowBodies::new();
    for (i, row) in rows.iter().enumerate() {
        let bodies = bodies.get(i).unwrap_or(&none);
        let dep = single_dep_at(row).filter(|&at| previous.is_some_and(|h| row[at..at + 32] == h));
        // The body's hash lies in the operations, after the header's
        // dependency: cutting it first leaves the dependency where it was.
        let body = body_hash_at(row, bodies).filter(|&b| dep.is_none_or(|d| b >= d + 32));
        let mut stored = row.clone();
        if let Some(b) = body {
            stored.drain(b..b + 32);
        }
        if let Some(d) = dep {
            stored.drain(d..d + 32);
        }
        out.extend_from_slice(&(stored.len() as u32).to_be_bytes());
        out.push(u8::from(dep.is_some()) | (u8::from(body.is_some()) << 1));
        if let Some(b) = body {
            out.extend_from_slice(&(b as u32).to_be_bytes());
        }
        out.extend_from_slice(&stored);
        out.push(u8::try_from(bodies.len()).expect("a change puts at most a few bodies"));
        for (counter, body) in bodies {
            out.extend_from_slice(&counter.to_be_bytes());
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(body);
        }
        previous = chunk_hash(row);
    }
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&out).expect("compressing into memory");
    e.finish().expect("compressing into memory")
}

fn decode_block(first: u32, compressed: &[u8]) -> Result<Block, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("sealed block at seq {first} is damaged"));
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(compressed)
        .read_to_end(&mut raw)
        .map_err(|_| corrupt())?;
    let (&format, mut rest) = raw.split_first().ok_or_else(corrupt)?;
    if format != BLOCK_FORMAT && format != BLOCK_FORMAT_NO_BODIES {
        return Err(corrupt());
    }
    let mut rows: Vec<Vec<u8>> = Vec::new();
    let mut all_bodies: Vec<RowBodies> = Vec::new();
    while !rest.is_empty() {
        if rows.len() == SEAL_RUN as usize {
            return Err(corrupt());
        }
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(*len) as usize;
        let (&flags, mut tail) = tail.split_first().ok_or_else(corrupt)?;
        let body_at = if flags & 2 != 0 && format == BLOCK_FORMAT {
            let (at, t) = tail.split_first_chunk::<4>().ok_or_else(corrupt)?;
            tail = t;
            Some(u32::from_be_bytes(*at) as usize)
        } else {
            None
        };
        if flags > 3 || (format == BLOCK_FORMAT_NO_BODIES && flags > 1) {
            return Err(corrupt());
        }
        if tail.len() < len || len < 64 {
            return Err(corrupt());
        }
        let mut row = tail[..len].to_vec();
        tail = &tail[len..];
        let mut bodies = RowBodies::new();
        if format == BLOCK_FORMAT {
            let (&n, t) = tail.split_first().ok_or_else(corrupt)?;
            tail = t;
            for _ in 0..n {
                let (counter, t) = tail.split_first_chunk::<8>().ok_or_else(corrupt)?;
                let (blen, t) = t.split_first_chunk::<4>().ok_or_else(corrupt)?;
                let blen = u32::from_be_bytes(*blen) as usize;
                if t.len() < blen {
                    return Err(corrupt());
                }
                bodies.push((u64::from_be_bytes(*counter), t[..blen].to_vec()));
                tail = &t[blen..];
            }
        }
        if flags & 1 != 0 {
            let at = single_dep_at(&row).ok_or_else(corrupt)?;
            let dep = rows
                .last()
                .and_then(|r| chunk_hash(r))
                .ok_or_else(corrupt)?;
            row.splice(at..at, dep);
        }
        if let Some(at) = body_at {
            let [(_, body)] = bodies.as_slice() else {
                return Err(corrupt());
            };
            if at > row.len() {
                return Err(corrupt());
            }
            row.splice(at..at, kith_core::body::hash(body));
        }
        if flags != 0 {
            // The chunk's checksum covers the restored hashes.
            chunk_hash(&row).ok_or_else(corrupt)?;
        }
        rows.push(row);
        all_bodies.push(bodies);
        rest = tail;
    }
    Ok(Block {
        first,
        rows,
        bodies: all_bodies,
    })
}

/// A few recently decoded blocks, for readers that look up many changes of
/// one feed (a page of posts) within one transaction.
#[derive(Debug, Default)]
pub struct BlockCache {
    blocks: VecDeque<([u8; 12], Rc<Block>)>,
}

/// The two homes of change rows, read together.
pub struct Rows<'a, C, S> {
    pub changes: &'a C,
    pub sealed: &'a S,
}

impl<C, S> Clone for Rows<'_, C, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C, S> Copy for Rows<'_, C, S> {}

impl<C, S> Rows<'_, C, S>
where
    C: ChangesTable,
    S: SealedTable,
{
    fn read_block(&self, doc_no: u32, actor_no: u32, first: u32) -> Result<Block, StoreError> {
        let mut compressed = Vec::new();
        for piece in self.sealed.range::<&[u8; 13]>(
            &sealed_key(doc_no, actor_no, first, 0)..=&sealed_key(doc_no, actor_no, first, u8::MAX),
        )? {
            compressed.extend_from_slice(piece?.1.value());
        }
        decode_block(first, &compressed)
    }

    /// The first seq of the sealed block that would hold `seq`, if any.
    fn block_start(&self, doc_no: u32, actor_no: u32, seq: u32) -> Result<Option<u32>, StoreError> {
        let last = self
            .sealed
            .range::<&[u8; 13]>(
                &sealed_key(doc_no, actor_no, 0, 0)..=&sealed_key(doc_no, actor_no, seq, u8::MAX),
            )?
            .next_back()
            .transpose()?;
        Ok(last.map(|(k, _)| split_sealed_key(k.value()).2))
    }

    /// The row (signature, then chunk) of change `(doc_no, actor_no, seq)`.
    pub fn get(&self, key: &[u8; 12]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_cached(key, &mut BlockCache::default())
    }

    /// [`Rows::get`], decoding each sealed block at most once per `cache`.
    pub fn get_cached(
        &self,
        key: &[u8; 12],
        cache: &mut BlockCache,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(row) = self.changes.get(key)? {
            return Ok(Some(row.value().to_vec()));
        }
        let (_, _, seq) = split_change_key(key);
        Ok(self
            .block_cached(key, cache)?
            .and_then(|b| b.row(seq).map(<[u8]>::to_vec)))
    }

    /// The sealed block holding change `(doc_no, actor_no, seq)`, through
    /// `cache`; `None` if the change is not sealed.
    pub fn block_cached(
        &self,
        key: &[u8; 12],
        cache: &mut BlockCache,
    ) -> Result<Option<Rc<Block>>, StoreError> {
        let (doc_no, actor_no, seq) = split_change_key(key);
        let Some(first) = self.block_start(doc_no, actor_no, seq)? else {
            return Ok(None);
        };
        let id = change_key(doc_no, actor_no, first);
        let block = match cache.blocks.iter().find(|(k, _)| *k == id) {
            Some((_, b)) => b.clone(),
            None => {
                let b = Rc::new(self.read_block(doc_no, actor_no, first)?);
                if cache.blocks.len() >= CACHED_BLOCKS {
                    cache.blocks.pop_front();
                }
                cache.blocks.push_back((id, b.clone()));
                b
            }
        };
        Ok(block.row(seq).is_some().then_some(block))
    }

    /// Calls `f(actor_no, seq, row)` for every change of a document.
    pub fn for_each_in_doc(
        &self,
        doc_no: u32,
        f: impl FnMut(u32, u32, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.visit(
            change_key(doc_no, 0, 0),
            change_key(doc_no, u32::MAX, u32::MAX),
            f,
        )
    }

    /// Calls `f(seq, row)` for the changes of one actor with seq in
    /// `from..=to` that are stored, in order.
    pub fn for_each_of_actor(
        &self,
        doc_no: u32,
        actor_no: u32,
        from: u32,
        to: u32,
        mut f: impl FnMut(u32, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.visit(
            change_key(doc_no, actor_no, from),
            change_key(doc_no, actor_no, to),
            |_, seq, row| f(seq, row),
        )
    }

    /// Calls `f(actor_no, seq, row)` for every stored change whose key is
    /// in `lo..=hi`: sealed ones first (each actor's oldest), then the rest,
    /// so that one actor's changes come in order.
    fn visit(
        &self,
        lo: [u8; 12],
        hi: [u8; 12],
        mut f: impl FnMut(u32, u32, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if lo > hi {
            return Ok(());
        }
        let (doc_no, actor_no, seq) = split_change_key(&lo);
        // A block that starts before `lo` may still hold it.
        let start = self.block_start(doc_no, actor_no, seq)?.unwrap_or(seq);
        let (_, hi_actor, hi_seq) = split_change_key(&hi);
        let mut blocks = Vec::new();
        for entry in self.sealed.range::<&[u8; 13]>(
            &sealed_key(doc_no, actor_no, start, 0)
                ..=&sealed_key(doc_no, hi_actor, hi_seq, u8::MAX),
        )? {
            let (k, _) = entry?;
            if k.value()[12] == 0 {
                blocks.push(split_sealed_key(k.value()));
            }
        }
        for (_, actor_no, first) in blocks {
            let block = self.read_block(doc_no, actor_no, first)?;
            for (i, row) in block.rows.iter().enumerate() {
                let seq = first + i as u32;
                if (lo..=hi).contains(&change_key(doc_no, actor_no, seq)) {
                    f(actor_no, seq, row)?;
                }
            }
        }
        for entry in self.changes.range::<&[u8; 12]>(&lo..=&hi)? {
            let (k, v) = entry?;
            let (_, actor_no, seq) = split_change_key(k.value());
            f(actor_no, seq, v.value())?;
        }
        Ok(())
    }
}

/// The lowest seq of `actor_no` in `doc_no` at or below `upto` that `table`
/// (keyed like `CHANGES`) holds.
fn first_seq<V: redb::Value + 'static>(
    table: &impl ReadableTable<&'static [u8; 12], V>,
    doc_no: u32,
    actor_no: u32,
    upto: u32,
) -> Result<Option<u32>, StoreError> {
    let (lo, hi) = (
        change_key(doc_no, actor_no, 0),
        change_key(doc_no, actor_no, upto),
    );
    let first = table.range::<&[u8; 12]>(&lo..=&hi)?.next();
    Ok(first
        .transpose()?
        .map(|(k, _)| split_change_key(k.value()).2))
}

/// Seals at most `limit` runs of [`SEAL_RUN`] changes; returns how many.
pub fn seal(w: &mut Writer<'_>, limit: usize) -> Result<usize, StoreError> {
    // Which (doc, actor) have a full run of unsealed changes at or below
    // their clock? The oldest unsealed change is the actor's first row.
    let mut runs = Vec::new();
    let clocks: Vec<(u32, u32, u32)> = w
        .clocks()?
        .iter()?
        .map(|entry| {
            entry.map(|(k, clock)| {
                let (doc_no, actor_no) = split_pair_key(k.value());
                (doc_no, actor_no, clock.value())
            })
        })
        .collect::<Result<_, _>>()?;
    for (doc_no, actor_no, clock) in clocks {
        // Changes from the first one waiting for dependencies on are not
        // applied yet: they stay where the ingest path looks for them.
        let top = match first_seq(w.pending()?, doc_no, actor_no, clock)? {
            Some(waiting) => waiting.saturating_sub(1),
            None => clock,
        };
        let Some(mut first) = first_seq(w.changes()?, doc_no, actor_no, top)? else {
            continue;
        };
        while top >= first && top - first + 1 >= SEAL_RUN && runs.len() < limit {
            runs.push((doc_no, actor_no, first));
            first += SEAL_RUN;
        }
        if runs.len() >= limit {
            break;
        }
    }
    for &(doc_no, actor_no, first) in &runs {
        let last = first + SEAL_RUN - 1;
        let mut rows = Vec::with_capacity(SEAL_RUN as usize);
        for entry in w.changes()?.range::<&[u8; 12]>(
            &change_key(doc_no, actor_no, first)..=&change_key(doc_no, actor_no, last),
        )? {
            rows.push(entry?.1.value().to_vec());
        }
        if rows.len() != SEAL_RUN as usize {
            return Err(StoreError::Corrupt(format!(
                "changes {first}..={last} of actor {actor_no} in doc {doc_no} are below its clock but not all stored"
            )));
        }
        let bodies = crate::bodies::take_run(w, doc_no, actor_no, first, last)?;
        write_block(w, doc_no, actor_no, first, &encode_block(&rows, &bodies))?;
        w.changes()?.retain_in::<&[u8; 12], _>(
            &change_key(doc_no, actor_no, first)..=&change_key(doc_no, actor_no, last),
            |_, _| false,
        )?;
    }
    Ok(runs.len())
}

/// Writes a sealed block's pieces in place of the ones it had.
fn write_block(
    w: &mut Writer<'_>,
    doc_no: u32,
    actor_no: u32,
    first: u32,
    compressed: &[u8],
) -> Result<(), StoreError> {
    let sealed = w.sealed()?;
    sealed.retain_in::<&[u8; 13], _>(
        &sealed_key(doc_no, actor_no, first, 0)..=&sealed_key(doc_no, actor_no, first, u8::MAX),
        |_, _| false,
    )?;
    // Pieces of equal size, so that two always share a page.
    let pieces = compressed.len().div_ceil(PIECE_BYTES).clamp(1, MAX_PIECES);
    let per = compressed.len().div_ceil(pieces).max(1);
    for (i, piece) in compressed.chunks(per).enumerate() {
        let i = u8::try_from(i)
            .map_err(|_| StoreError::Corrupt("a sealed block needs over 255 pieces".into()))?;
        sealed.insert(&sealed_key(doc_no, actor_no, first, i), piece)?;
    }
    Ok(())
}

/// Erases one body from the sealed block that holds its change, rewriting
/// the block (its change then keeps the body's hash). Returns whether the
/// body was there.
pub(crate) fn erase_sealed_body(
    w: &mut Writer<'_>,
    doc_no: u32,
    actor_no: u32,
    seq: u32,
    counter: u64,
) -> Result<bool, StoreError> {
    let block = w.rows()?.block_cached(
        &change_key(doc_no, actor_no, seq),
        &mut BlockCache::default(),
    )?;
    let Some(block) = block else {
        return Ok(false);
    };
    let mut bodies = block.bodies.clone();
    let i = (seq - block.first) as usize;
    let before = bodies[i].len();
    bodies[i].retain(|(c, _)| *c != counter);
    if bodies[i].len() == before {
        return Ok(false);
    }
    write_block(
        w,
        doc_no,
        actor_no,
        block.first,
        &encode_block(&block.rows, &bodies),
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip() {
        let rows: Vec<Vec<u8>> = (0..SEAL_RUN as u8)
            .map(|i| vec![i; 64 + i as usize])
            .collect();
        let block = decode_block(7, &encode_block(&rows, &[])).unwrap();
        assert_eq!(block.row(7), Some(&rows[0][..]));
        assert_eq!(block.row(7 + SEAL_RUN - 1), Some(&rows[63][..]));
        assert_eq!(block.row(6), None);
        assert_eq!(block.row(7 + SEAL_RUN), None);
    }

    /// Rows of a chain of real changes, each depending on the one before.
    fn chain(n: usize) -> Vec<Vec<u8>> {
        // kith's actor ids: a 32-byte device key and an 8-byte suffix.
        let mut doc =
            automerge::AutoCommit::new().with_actor(automerge::ActorId::from(vec![5u8; 40]));
        (0..n)
            .map(|i| {
                automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "k", i as i64)
                    .unwrap();
                doc.commit();
                let change = doc.get_last_local_change().unwrap();
                let mut row = vec![i as u8; 64];
                row.extend_from_slice(change.raw_bytes());
                row
            })
            .collect()
    }

    fn inflated_len(compressed: &[u8]) -> usize {
        let mut raw = Vec::new();
        flate2::read::DeflateDecoder::new(compressed)
            .read_to_end(&mut raw)
            .unwrap();
        raw.len()
    }

    #[test]
    fn a_chain_is_stored_without_its_dependency_hashes() {
        let rows = chain(5);
        let encoded = encode_block(&rows, &[]);
        let plain: usize = 1 + rows.iter().map(|r| 4 + 1 + r.len() + 1).sum::<usize>();
        assert_eq!(inflated_len(&encoded), plain - 4 * 32, "four hashes elided");
        let block = decode_block(1, &encoded).unwrap();
        assert_eq!(block.rows, rows);
    }

    #[test]
    fn bodies_are_sealed_with_their_changes_without_a_second_copy_of_their_hash() {
        let mut doc =
            automerge::AutoCommit::new().with_actor(automerge::ActorId::from(vec![5u8; 40]));
        let mut rows = Vec::new();
        let mut bodies = Vec::new();
        for i in 0..4 {
            let body = kith_core::schema::feed::create_post(
                &mut doc,
                &format!("k{i}"),
                &format!("post {i}"),
                1,
                None,
            )
            .unwrap();
            doc.commit();
            let change = doc.get_last_local_change().unwrap();
            let mut row = vec![i as u8; 64];
            row.extend_from_slice(change.raw_bytes());
            let expanded = change.decode();
            let counter =
                kith_core::schema::match_bodies(&expanded, &[body.as_bytes().to_vec()])[0].0;
            rows.push(row);
            // The third change's body is gone (erased): its hash stays.
            bodies.push(if i == 2 {
                vec![]
            } else {
                vec![(counter, body.into_bytes())]
            });
        }
        let encoded = encode_block(&rows, &bodies);
        let block = decode_block(9, &encoded).unwrap();
        assert_eq!(block.rows, rows);
        assert_eq!(block.bodies, bodies);
        assert_eq!(block.bodies(11), Some(&vec![]));
        let with_bodies: usize = bodies.iter().flatten().map(|(_, b)| 8 + 4 + b.len()).sum();
        let plain: usize = 1 + rows.iter().map(|r| 4 + 1 + r.len() + 1).sum::<usize>();
        // Three dependency hashes and three body hashes elided; three body
        // hash positions written.
        assert_eq!(inflated_len(&encoded), plain + with_bodies - 6 * 32 + 3 * 4);
    }

    #[test]
    fn a_block_of_the_layout_before_bodies_is_still_read() {
        let rows = chain(3);
        let mut raw = vec![BLOCK_FORMAT_NO_BODIES];
        for row in &rows {
            raw.extend_from_slice(&(row.len() as u32).to_be_bytes());
            raw.push(0);
            raw.extend_from_slice(row);
        }
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&raw).unwrap();
        let block = decode_block(1, &e.finish().unwrap()).unwrap();
        assert_eq!(block.rows, rows);
        assert_eq!(block.bodies(1), Some(&vec![]));
    }

    #[test]
    fn damaged_blocks_are_errors() {
        let rows = vec![vec![1u8; 100]; 3];
        let mut bytes = encode_block(&rows, &[]);
        bytes.truncate(bytes.len() / 2);
        assert!(decode_block(1, &bytes).is_err());
        assert!(decode_block(1, b"not deflate at all").is_err());
    }
}
