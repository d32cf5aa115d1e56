//! Post bodies in the store (proto/README.md §9.1, *Bodies*): kept beside
//! the change that put their hash, read for views, served beside that
//! change, and dropped, every version of them, once the post is deleted.
//!
//! A body is keyed by where its hash was put: the change (document, actor,
//! sequence number) and the op counter. That is exactly what the post index
//! already records for each text of a post (`TextRef`), so a view reads its
//! text with one lookup, sync serves a change's bodies with one range read,
//! and a deletion finds every version's body from the index alone.
//!
//! Like changes (see `changelog`), bodies arrive one row each in `BODIES`,
//! and are sealed with their run of changes: one DEFLATE block per run in
//! `SEALED_BODIES`, under the run's key. Short posts barely compress alone;
//! a run of one person's posts does. Erasing a sealed body rewrites its
//! block without it. Block layout, before DEFLATE: a format byte
//! ([`BLOCK_FORMAT`]), then per body `u32 seq || u64 op counter || u32
//! length || body`, all big-endian.

use std::io::{Read, Write};
use std::rc::Rc;

use automerge::Change;
use kith_core::schema;
use redb::ReadableTable;

use crate::changelog::{PIECE_BYTES, SEAL_RUN, sealed_key};
use crate::error::StoreError;
use crate::rows::{TextRef, body_key, change_key, split_change_key};
use crate::tx::Writer;

/// The layout of a sealed block of bodies.
const BLOCK_FORMAT: u8 = 1;

/// One body of a sealed block: `(seq, op counter, body)`.
type Entry = (u32, u64, Vec<u8>);

/// Keeps the bodies whose hashes `change` puts; others are not stored
/// (nobody signed them). Returns how many were kept.
pub(crate) fn keep(
    w: &mut Writer<'_>,
    doc_no: u32,
    actor_no: u32,
    change: &Change,
    bodies: &[Vec<u8>],
) -> Result<usize, StoreError> {
    if bodies.is_empty() {
        return Ok(0);
    }
    let seq = seq_of(change)?;
    let Some(expanded) = schema::expand(change) else {
        return Ok(0);
    };
    let matched = schema::match_bodies(&expanded, bodies);
    for (counter, bytes) in &matched {
        w.bodies()?
            .insert(&body_key(doc_no, actor_no, seq, *counter), bytes.as_slice())?;
    }
    Ok(matched.len())
}

/// Keeps one body, already matched to the op that put its hash.
pub(crate) fn put(
    w: &mut Writer<'_>,
    doc_no: u32,
    text: TextRef,
    bytes: &[u8],
) -> Result<(), StoreError> {
    w.bodies()?.insert(
        &body_key(doc_no, text.actor_no, text.seq, text.counter),
        bytes,
    )?;
    Ok(())
}

/// Drops the body of one text of a post, wherever it is kept.
pub(crate) fn erase(w: &mut Writer<'_>, doc_no: u32, text: TextRef) -> Result<(), StoreError> {
    let key = body_key(doc_no, text.actor_no, text.seq, text.counter);
    if w.bodies()?.remove(&key)?.is_some() {
        return Ok(());
    }
    let Some((first, mut entries)) =
        find_sealed(w.sealed_bodies()?, doc_no, text.actor_no, text.seq)?
    else {
        return Ok(());
    };
    let before = entries.len();
    entries.retain(|(seq, counter, _)| (*seq, *counter) != (text.seq, text.counter));
    if entries.len() != before {
        write_block(w, doc_no, text.actor_no, first, &entries)?;
    }
    Ok(())
}

/// Drops every body kept for one change (a change that is not kept after
/// all: it is still unsealed, waiting for its dependencies).
pub(crate) fn erase_change(
    w: &mut Writer<'_>,
    doc_no: u32,
    actor_no: u32,
    seq: u32,
) -> Result<(), StoreError> {
    let lo = body_key(doc_no, actor_no, seq, 0);
    let hi = body_key(doc_no, actor_no, seq, u64::MAX);
    w.bodies()?
        .retain_in::<&[u8; 20], _>(&lo..=&hi, |_, _| false)?;
    Ok(())
}

/// Whether any body of one change is kept: a change that has its bodies
/// needs no duplicate's.
pub(crate) fn any_of_change(
    w: &mut Writer<'_>,
    doc_no: u32,
    actor_no: u32,
    seq: u32,
) -> Result<bool, StoreError> {
    let lo = body_key(doc_no, actor_no, seq, 0);
    let hi = body_key(doc_no, actor_no, seq, u64::MAX);
    if w.bodies()?.range::<&[u8; 20]>(&lo..=&hi)?.next().is_some() {
        return Ok(true);
    }
    Ok(find_sealed(w.sealed_bodies()?, doc_no, actor_no, seq)?
        .is_some_and(|(_, entries)| entries.iter().any(|(s, ..)| *s == seq)))
}

/// Whether the body of one text is kept.
pub(crate) fn has(w: &mut Writer<'_>, doc_no: u32, text: TextRef) -> Result<bool, StoreError> {
    if w.bodies()?
        .get(&body_key(doc_no, text.actor_no, text.seq, text.counter))?
        .is_some()
    {
        return Ok(true);
    }
    Ok(
        find_sealed(w.sealed_bodies()?, doc_no, text.actor_no, text.seq)?.is_some_and(
            |(_, entries)| {
                entries
                    .iter()
                    .any(|(s, c, _)| (*s, *c) == (text.seq, text.counter))
            },
        ),
    )
}

/// Seals the bodies of changes `first..=last` of one actor, the run
/// `changelog::seal` just sealed: one block under the run's key.
pub(crate) fn seal_run(
    w: &mut Writer<'_>,
    doc_no: u32,
    actor_no: u32,
    first: u32,
    last: u32,
) -> Result<(), StoreError> {
    let lo = body_key(doc_no, actor_no, first, 0);
    let hi = body_key(doc_no, actor_no, last, u64::MAX);
    let mut entries = Vec::new();
    for entry in w.bodies()?.range::<&[u8; 20]>(&lo..=&hi)? {
        let (k, v) = entry?;
        let k = k.value();
        let (_, _, seq) = split_change_key(k[..12].try_into().expect("12 bytes"));
        let counter = u64::from_be_bytes(k[12..].try_into().expect("8 bytes"));
        entries.push((seq, counter, v.value().to_vec()));
    }
    if entries.is_empty() {
        return Ok(());
    }
    write_block(w, doc_no, actor_no, first, &entries)?;
    w.bodies()?
        .retain_in::<&[u8; 20], _>(&lo..=&hi, |_, _| false)?;
    Ok(())
}

/// Writes (or, with no entries left, removes) the sealed block of the run
/// starting at `first`, replacing its pieces.
fn write_block(
    w: &mut Writer<'_>,
    doc_no: u32,
    actor_no: u32,
    first: u32,
    entries: &[Entry],
) -> Result<(), StoreError> {
    let sealed = w.sealed_bodies()?;
    sealed.retain_in::<&[u8; 13], _>(
        &sealed_key(doc_no, actor_no, first, 0)..=&sealed_key(doc_no, actor_no, first, u8::MAX),
        |_, _| false,
    )?;
    if entries.is_empty() {
        return Ok(());
    }
    let compressed = encode_block(entries);
    let pieces = compressed.len().div_ceil(PIECE_BYTES).clamp(1, 256);
    let per = compressed.len().div_ceil(pieces).max(1);
    for (i, piece) in compressed.chunks(per).enumerate() {
        let i = u8::try_from(i).map_err(|_| {
            StoreError::Corrupt("a sealed block of bodies needs over 255 pieces".into())
        })?;
        sealed.insert(&sealed_key(doc_no, actor_no, first, i), piece)?;
    }
    Ok(())
}

fn encode_block(entries: &[Entry]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let mut raw = vec![BLOCK_FORMAT];
    for (seq, counter, body) in entries {
        raw.extend_from_slice(&seq.to_be_bytes());
        raw.extend_from_slice(&counter.to_be_bytes());
        raw.extend_from_slice(&(body.len() as u32).to_be_bytes());
        raw.extend_from_slice(body);
    }
    e.write_all(&raw).expect("compressing into memory");
    e.finish().expect("compressing into memory")
}

fn decode_block(first: u32, compressed: &[u8]) -> Result<Vec<Entry>, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("sealed bodies at seq {first} are damaged"));
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(compressed)
        .read_to_end(&mut raw)
        .map_err(|_| corrupt())?;
    let Some((&BLOCK_FORMAT, mut rest)) = raw.split_first() else {
        return Err(corrupt());
    };
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let (seq, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let (counter, tail) = tail.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let (len, tail) = tail.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(corrupt());
        }
        entries.push((
            u32::from_be_bytes(*seq),
            u64::from_be_bytes(*counter),
            tail[..len].to_vec(),
        ));
        rest = &tail[len..];
    }
    Ok(entries)
}

/// The sealed block that would hold the bodies of change `seq`, if any:
/// its first seq and its bodies.
fn find_sealed(
    sealed: &impl ReadableTable<&'static [u8; 13], &'static [u8]>,
    doc_no: u32,
    actor_no: u32,
    seq: u32,
) -> Result<Option<(u32, Vec<Entry>)>, StoreError> {
    let last = sealed
        .range::<&[u8; 13]>(
            &sealed_key(doc_no, actor_no, 0, 0)..=&sealed_key(doc_no, actor_no, seq, u8::MAX),
        )?
        .next_back()
        .transpose()?;
    let Some((k, _)) = last else {
        return Ok(None);
    };
    let (_, _, first) = split_change_key(k.value()[..12].try_into().expect("12 bytes"));
    if seq >= first.saturating_add(SEAL_RUN) {
        return Ok(None);
    }
    let mut compressed = Vec::new();
    for piece in sealed.range::<&[u8; 13]>(
        &sealed_key(doc_no, actor_no, first, 0)..=&sealed_key(doc_no, actor_no, first, u8::MAX),
    )? {
        compressed.extend_from_slice(piece?.1.value());
    }
    Ok(Some((first, decode_block(first, &compressed)?)))
}

/// The last sealed block of bodies a reader decoded: a page of a feed
/// reads several bodies of one block.
#[derive(Debug, Default)]
pub(crate) struct BodyCache {
    block: Option<([u8; 12], Rc<Vec<Entry>>)>,
}

/// Both homes of bodies, read together.
pub(crate) struct BodyRows<'a, B, S> {
    pub bodies: &'a B,
    pub sealed: &'a S,
}

impl<B, S> BodyRows<'_, B, S>
where
    B: ReadableTable<&'static [u8; 20], &'static [u8]>,
    S: ReadableTable<&'static [u8; 13], &'static [u8]>,
{
    /// The sealed bodies of the run that holds change `seq`, through `cache`.
    fn sealed_of(
        &self,
        doc_no: u32,
        actor_no: u32,
        seq: u32,
        cache: &mut BodyCache,
    ) -> Result<Option<Rc<Vec<Entry>>>, StoreError> {
        if let Some((key, entries)) = &cache.block {
            let (d, a, first) = split_change_key(key);
            if (d, a) == (doc_no, actor_no)
                && (first..first.saturating_add(SEAL_RUN)).contains(&seq)
            {
                return Ok(Some(entries.clone()));
            }
        }
        let Some((first, entries)) = find_sealed(self.sealed, doc_no, actor_no, seq)? else {
            return Ok(None);
        };
        let entries = Rc::new(entries);
        cache.block = Some((change_key(doc_no, actor_no, first), entries.clone()));
        Ok(Some(entries))
    }

    /// The body of one text, if it is kept.
    pub fn get(
        &self,
        doc_no: u32,
        text: TextRef,
        cache: &mut BodyCache,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) =
            self.bodies
                .get(&body_key(doc_no, text.actor_no, text.seq, text.counter))?
        {
            return Ok(Some(v.value().to_vec()));
        }
        Ok(self
            .sealed_of(doc_no, text.actor_no, text.seq, cache)?
            .and_then(|entries| {
                entries
                    .iter()
                    .find(|(s, c, _)| (*s, *c) == (text.seq, text.counter))
                    .map(|(.., b)| b.clone())
            }))
    }

    /// The bodies kept for one change, in op order: what goes beside it
    /// when it is served.
    pub fn of_change(
        &self,
        doc_no: u32,
        actor_no: u32,
        seq: u32,
        cache: &mut BodyCache,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let lo = body_key(doc_no, actor_no, seq, 0);
        let hi = body_key(doc_no, actor_no, seq, u64::MAX);
        let mut out: Vec<Vec<u8>> = self
            .bodies
            .range::<&[u8; 20]>(&lo..=&hi)?
            .map(|e| Ok::<_, StoreError>(e?.1.value().to_vec()))
            .collect::<Result<_, _>>()?;
        if out.is_empty()
            && let Some(entries) = self.sealed_of(doc_no, actor_no, seq, cache)?
        {
            out = entries
                .iter()
                .filter(|(s, ..)| *s == seq)
                .map(|(.., b)| b.clone())
                .collect();
        }
        Ok(out)
    }
}

fn seq_of(change: &Change) -> Result<u32, StoreError> {
    u32::try_from(change.seq()).map_err(|_| StoreError::Corrupt("sequence number overflow".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_bodies_round_trip_and_damage_is_an_error() {
        let entries: Vec<Entry> = (0..5u32)
            .map(|i| (7 + i, 3 + u64::from(i), vec![i as u8; 16 + i as usize]))
            .collect();
        let encoded = encode_block(&entries);
        assert_eq!(decode_block(7, &encoded).unwrap(), entries);
        assert!(decode_block(7, &encoded[..encoded.len() / 2]).is_err());
        assert!(decode_block(7, b"not deflate").is_err());
    }
}
