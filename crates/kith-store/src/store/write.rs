//! The one write step by which a change enters the store, whether it was
//! made here (`local`) or came from elsewhere (`ingest`); both have passed
//! the group gate (`Store::admit`) first. A change gets its row
//! ([`keep`]) as soon as its document holds it, applied or still waiting for
//! its dependencies, and its index rows ([`index`]) once it is applied. A
//! local change is applied at once: [`write`] does both.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, Change};
use kith_core::DocId;
use redb::ReadableTable;

use crate::error::StoreError;
use crate::index::{Applied, index_change};
use crate::rows::change_key;
use crate::tx::Writer;

/// One change's row: its actor's number, the change and its signature.
pub(super) type Row<'a> = (u32, &'a Change, &'a [u8; 64]);

/// The document a change belongs to, as the index needs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target {
    pub doc: DocId,
    pub doc_no: u32,
    /// The person the document's posts and profile belong to
    /// (`NO_PERSON` for a group's control document).
    pub author_no: u32,
}

/// Stores change rows of one document: signature, then the raw chunk. Not
/// compressed here: per-change DEFLATE cost a fifth of ingest time and saved
/// little on short posts; `Store::seal` compresses runs of changes together.
/// The document's size and its actors' clocks are updated once per call.
pub(super) fn keep(w: &mut Writer<'_>, doc_no: u32, rows: &[Row<'_>]) -> Result<(), StoreError> {
    let mut added: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    let mut row = Vec::new();
    for (actor_no, change, signature) in rows {
        let seq = u32::try_from(change.seq())
            .map_err(|_| StoreError::Corrupt("sequence number overflow".into()))?;
        row.clear();
        row.extend_from_slice(*signature);
        row.extend_from_slice(change.raw_bytes());
        w.changes()?
            .insert(&change_key(doc_no, *actor_no, seq), row.as_slice())?;
        added.entry(*actor_no).or_default().insert(seq);
    }
    let size = w.doc_sizes()?.get(doc_no)?.map_or(0, |v| v.value());
    w.doc_sizes()?.insert(doc_no, size + rows.len() as u32)?;
    // Advance each actor's clock over every sequence number now stored
    // without a gap (rows stored earlier, waiting, may close the gap too).
    for (actor_no, seqs) in added {
        let clock_key = crate::rows::pair_key(doc_no, actor_no);
        let clock = w.clocks()?.get(&clock_key)?.map_or(0, |v| v.value());
        let mut top = clock;
        while seqs.contains(&(top + 1))
            || w.changes()?
                .get(&change_key(doc_no, actor_no, top + 1))?
                .is_some()
        {
            top += 1;
        }
        if top != clock {
            w.clocks()?.insert(&clock_key, top)?;
        }
    }
    Ok(())
}

/// Updates the indexes for a change `doc` has applied, and keeps the bodies
/// that came beside it. Returns how many of `bodies` the change names.
pub(super) fn index(
    w: &mut Writer<'_>,
    doc: &AutoCommit,
    target: Target,
    actor_no: u32,
    change: &Change,
    bodies: &[Vec<u8>],
) -> Result<usize, StoreError> {
    index_change(
        w,
        doc,
        &Applied {
            change,
            doc_no: target.doc_no,
            doc: target.doc,
            actor_no,
            author_no: target.author_no,
            bodies,
        },
    )
}

/// Both steps, for a change applied as it is stored (a local commit).
pub(super) fn write(
    w: &mut Writer<'_>,
    doc: &AutoCommit,
    target: Target,
    row: Row<'_>,
    bodies: &[Vec<u8>],
) -> Result<usize, StoreError> {
    keep(w, target.doc_no, &[row])?;
    index(w, doc, target, row.0, row.1, bodies)
}
