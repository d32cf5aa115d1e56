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
//! recomputes it from the previous change. Block layout, before DEFLATE: a
//! format byte ([`BLOCK_FORMAT`]), then per change `u32 length || u8 elided
//! || row`, where `row` is the signature and the chunk, less the dependency
//! hash when `elided` is 1.
//!
//! Every reader goes through [`Rows`], which looks in both places.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::rc::Rc;

use redb::ReadableTable;

use crate::error::StoreError;
use crate::rows::{change_key, split_change_key, split_pair_key};
use crate::tx::Writer;

/// Changes per sealed block.
pub const SEAL_RUN: u32 = 64;
/// Largest piece of a block stored as one value: two fit in a 4 KiB page.
pub(crate) const PIECE_BYTES: usize = 2000;
/// The layout of a block's contents; another layout gets another number.
const BLOCK_FORMAT: u8 = 1;
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

/// One decoded block: the rows of seqs `first..first + rows.len()`.
#[derive(Debug)]
pub struct Block {
    first: u32,
    rows: Vec<Vec<u8>>,
}

impl Block {
    fn row(&self, seq: u32) -> Option<&[u8]> {
        let i = seq.checked_sub(self.first)? as usize;
        self.rows.get(i).map(Vec::as_slice)
    }
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

fn encode_block(rows: &[Vec<u8>]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&[BLOCK_FORMAT])
        .expect("compressing into memory");
    let mut previous: Option<[u8; 32]> = None;
    for row in rows {
        let elide =
            single_dep_at(row).filter(|&at| previous.is_some_and(|h| row[at..at + 32] == h));
        let (len, parts): (usize, [&[u8]; 2]) = match elide {
            Some(at) => (row.len() - 32, [&row[..at], &row[at + 32..]]),
            None => (row.len(), [row, &[]]),
        };
        // Writing into a Vec cannot fail.
        e.write_all(&(len as u32).to_be_bytes())
            .and_then(|()| e.write_all(&[u8::from(elide.is_some())]))
            .and_then(|()| e.write_all(parts[0]))
            .and_then(|()| e.write_all(parts[1]))
            .expect("compressing into memory");
        previous = chunk_hash(row);
    }
    e.finish().expect("compressing into memory")
}

fn decode_block(first: u32, compressed: &[u8]) -> Result<Block, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("sealed block at seq {first} is damaged"));
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(compressed)
        .read_to_end(&mut raw)
        .map_err(|_| corrupt())?;
    let mut rows: Vec<Vec<u8>> = Vec::new();
    let Some((&BLOCK_FORMAT, mut rest)) = raw.split_first() else {
        return Err(corrupt());
    };
    while !rest.is_empty() {
        if rows.len() == SEAL_RUN as usize {
            return Err(corrupt());
        }
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(*len) as usize;
        let (&elided, tail) = tail.split_first().ok_or_else(corrupt)?;
        if tail.len() < len || len < 64 {
            return Err(corrupt());
        }
        let stored = &tail[..len];
        let row = match elided {
            0 => stored.to_vec(),
            1 => {
                let at = single_dep_at(stored).ok_or_else(corrupt)?;
                let dep = rows
                    .last()
                    .and_then(|r| chunk_hash(r))
                    .ok_or_else(corrupt)?;
                let mut row = Vec::with_capacity(len + 32);
                row.extend_from_slice(&stored[..at]);
                row.extend_from_slice(&dep);
                row.extend_from_slice(&stored[at..]);
                // The chunk's checksum covers the restored hash.
                chunk_hash(&row).ok_or_else(corrupt)?;
                row
            }
            _ => return Err(corrupt()),
        };
        rows.push(row);
        rest = &tail[len..];
    }
    Ok(Block { first, rows })
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
    C: ReadableTable<&'static [u8; 12], &'static [u8]>,
    S: ReadableTable<&'static [u8; 13], &'static [u8]>,
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
        Ok(block.row(seq).map(<[u8]>::to_vec))
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
        let compressed = encode_block(&rows);
        // Pieces of equal size, so that two always share a page.
        let pieces = compressed.len().div_ceil(PIECE_BYTES).clamp(1, MAX_PIECES);
        let per = compressed.len().div_ceil(pieces).max(1);
        for (i, piece) in compressed.chunks(per).enumerate() {
            let i = u8::try_from(i)
                .map_err(|_| StoreError::Corrupt("a sealed block needs over 255 pieces".into()))?;
            w.sealed()?
                .insert(&sealed_key(doc_no, actor_no, first, i), piece)?;
        }
        w.changes()?.retain_in::<&[u8; 12], _>(
            &change_key(doc_no, actor_no, first)..=&change_key(doc_no, actor_no, last),
            |_, _| false,
        )?;
        crate::bodies::seal_run(w, doc_no, actor_no, first, last)?;
    }
    Ok(runs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip() {
        let rows: Vec<Vec<u8>> = (0..SEAL_RUN as u8)
            .map(|i| vec![i; 64 + i as usize])
            .collect();
        let block = decode_block(7, &encode_block(&rows)).unwrap();
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
        let encoded = encode_block(&rows);
        let plain: usize = 1 + rows.iter().map(|r| 4 + 1 + r.len()).sum::<usize>();
        assert_eq!(inflated_len(&encoded), plain - 4 * 32, "four hashes elided");
        let block = decode_block(1, &encoded).unwrap();
        assert_eq!(block.rows, rows);
    }

    #[test]
    fn damaged_blocks_are_errors() {
        let rows = vec![vec![1u8; 100]; 3];
        let mut bytes = encode_block(&rows);
        bytes.truncate(bytes.len() / 2);
        assert!(decode_block(1, &bytes).is_err());
        assert!(decode_block(1, b"not deflate at all").is_err());
    }
}
