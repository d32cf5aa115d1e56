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
//! Like changes, bodies arrive one row each in `BODIES`, and are sealed
//! with their change, in its run's block (see `changelog`): short posts
//! barely compress alone, a run of one person's posts does, and the body's
//! hash need not be kept twice. Erasing a sealed body rewrites its block.

use automerge::Change;
use kith_core::schema;
use redb::ReadableTable;

use crate::changelog::{BlockCache, RowBodies, Rows};
use crate::error::StoreError;
use crate::rows::{TextRef, body_key, change_key, split_change_key};
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

/// Drops the body of one text of a post, wherever it is kept.
pub(crate) fn erase(w: &mut Writer<'_>, doc_no: u32, text: TextRef) -> Result<(), StoreError> {
    let key = body_key(doc_no, text.actor_no, text.seq, text.counter);
    if w.bodies()?.remove(&key)?.is_none() {
        crate::changelog::erase_sealed_body(w, doc_no, text.actor_no, text.seq, text.counter)?;
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

/// The bodies of a sealed change, if it is sealed.
fn sealed_of(
    w: &mut Writer<'_>,
    doc_no: u32,
    actor_no: u32,
    seq: u32,
) -> Result<Option<RowBodies>, StoreError> {
    let block = w.rows()?.block_cached(
        &change_key(doc_no, actor_no, seq),
        &mut BlockCache::default(),
    )?;
    Ok(block.and_then(|b| b.bodies(seq).cloned()))
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
    Ok(sealed_of(w, doc_no, actor_no, seq)?.is_some_and(|b| !b.is_empty()))
}

/// Whether the body of one text is kept.
pub(crate) fn has(w: &mut Writer<'_>, doc_no: u32, text: TextRef) -> Result<bool, StoreError> {
    if w.bodies()?
        .get(&body_key(doc_no, text.actor_no, text.seq, text.counter))?
        .is_some()
    {
        return Ok(true);
    }
    Ok(sealed_of(w, doc_no, text.actor_no, text.seq)?
        .is_some_and(|b| b.iter().any(|(c, _)| *c == text.counter)))
}

/// Takes the bodies of changes `first..=last` of one actor out of `BODIES`,
/// one list per change, for `changelog::seal` to seal with them.
pub(crate) fn take_run(
    w: &mut Writer<'_>,
    doc_no: u32,
    actor_no: u32,
    first: u32,
    last: u32,
) -> Result<Vec<RowBodies>, StoreError> {
    let lo = body_key(doc_no, actor_no, first, 0);
    let hi = body_key(doc_no, actor_no, last, u64::MAX);
    let mut run = vec![RowBodies::new(); (last - first + 1) as usize];
    for entry in w.bodies()?.range::<&[u8; 20]>(&lo..=&hi)? {
        let (k, v) = entry?;
        let k = k.value();
        let (_, _, seq) = split_change_key(k[..12].try_into().expect("12 bytes"));
        let counter = u64::from_be_bytes(k[12..].try_into().expect("8 bytes"));
        run[(seq - first) as usize].push((counter, v.value().to_vec()));
    }
    w.bodies()?
        .retain_in::<&[u8; 20], _>(&lo..=&hi, |_, _| false)?;
    Ok(run)
}

/// Both homes of bodies, read together: `BODIES`, and the sealed blocks of
/// changes.
pub(crate) struct BodyRows<'a, B, C, S> {
    pub bodies: &'a B,
    pub rows: Rows<'a, C, S>,
}

impl<B, C, S> BodyRows<'_, B, C, S>
where
    B: ReadableTable<&'static [u8; 20], &'static [u8]>,
    C: ReadableTable<&'static [u8; 12], &'static [u8]>,
    S: ReadableTable<&'static [u8; 13], &'static [u8]>,
{
    /// The body of one text, if it is kept.
    pub fn get(
        &self,
        doc_no: u32,
        text: TextRef,
        cache: &mut BlockCache,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) =
            self.bodies
                .get(&body_key(doc_no, text.actor_no, text.seq, text.counter))?
        {
            return Ok(Some(v.value().to_vec()));
        }
        let key = change_key(doc_no, text.actor_no, text.seq);
        Ok(self.rows.block_cached(&key, cache)?.and_then(|b| {
            b.bodies(text.seq)?
                .iter()
                .find(|(c, _)| *c == text.counter)
                .map(|(_, body)| body.clone())
        }))
    }

    /// The bodies kept for one change, in op order: what goes beside it
    /// when it is served.
    pub fn of_change(
        &self,
        doc_no: u32,
        actor_no: u32,
        seq: u32,
        cache: &mut BlockCache,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let lo = body_key(doc_no, actor_no, seq, 0);
        let hi = body_key(doc_no, actor_no, seq, u64::MAX);
        let out: Vec<Vec<u8>> = self
            .bodies
            .range::<&[u8; 20]>(&lo..=&hi)?
            .map(|e| Ok::<_, StoreError>(e?.1.value().to_vec()))
            .collect::<Result<_, _>>()?;
        if !out.is_empty() {
            return Ok(out);
        }
        let block = self
            .rows
            .block_cached(&change_key(doc_no, actor_no, seq), cache)?;
        Ok(block
            .and_then(|b| b.bodies(seq).cloned())
            .unwrap_or_default()
            .into_iter()
            .map(|(_, body)| body)
            .collect())
    }
}

fn seq_of(change: &Change) -> Result<u32, StoreError> {
    u32::try_from(change.seq()).map_err(|_| StoreError::Corrupt("sequence number overflow".into()))
}
