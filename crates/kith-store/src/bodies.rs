//! Post bodies in the store (proto/README.md §9.1, *Bodies*): kept beside
//! the change that put their hash, read for views, served beside that
//! change, and dropped, every version of them, once the post is deleted.
//!
//! A body is keyed by where its hash was put: the change (document, actor,
//! sequence number) and the op counter. That is exactly what the post index
//! already records for each text of a post (`TextRef`), so a view reads its
//! text with one lookup, sync serves a change's bodies with one range read,
//! and a deletion finds every version's body from the index alone.

use automerge::Change;
use kith_core::schema;
use redb::ReadableTable;

use crate::error::StoreError;
use crate::rows::{TextRef, body_key};
use crate::tx::Writer;

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

/// Drops the body of one text of a post, if it is here.
pub(crate) fn erase(w: &mut Writer<'_>, doc_no: u32, text: TextRef) -> Result<(), StoreError> {
    w.bodies()?
        .remove(&body_key(doc_no, text.actor_no, text.seq, text.counter))?;
    Ok(())
}

/// Drops every body kept for one change (a change that is not kept after
/// all).
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

/// Whether any body of one change is here: a change that has its bodies
/// needs no duplicate's.
pub(crate) fn any_of_change(
    w: &mut Writer<'_>,
    doc_no: u32,
    actor_no: u32,
    seq: u32,
) -> Result<bool, StoreError> {
    let lo = body_key(doc_no, actor_no, seq, 0);
    let hi = body_key(doc_no, actor_no, seq, u64::MAX);
    Ok(w.bodies()?.range::<&[u8; 20]>(&lo..=&hi)?.next().is_some())
}

/// Whether the body of one text is here.
pub(crate) fn has(w: &mut Writer<'_>, doc_no: u32, text: TextRef) -> Result<bool, StoreError> {
    Ok(w.bodies()?
        .get(&body_key(doc_no, text.actor_no, text.seq, text.counter))?
        .is_some())
}

/// The bodies held for one stored change, in op order: what goes beside it
/// when it is served.
pub(crate) fn of_change(
    table: &impl ReadableTable<&'static [u8; 20], &'static [u8]>,
    doc_no: u32,
    actor_no: u32,
    seq: u32,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let lo = body_key(doc_no, actor_no, seq, 0);
    let hi = body_key(doc_no, actor_no, seq, u64::MAX);
    table
        .range::<&[u8; 20]>(&lo..=&hi)?
        .map(|e| Ok(e?.1.value().to_vec()))
        .collect()
}

fn seq_of(change: &Change) -> Result<u32, StoreError> {
    u32::try_from(change.seq()).map_err(|_| StoreError::Corrupt("sequence number overflow".into()))
}
