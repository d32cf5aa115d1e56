//! Scrubbing: after a deletion, the deleted post's bodies must linger
//! neither in the journal nor in the store file.
//!
//! Dropping a body removes it from its table, but redb does not overwrite a
//! page when it frees it: the bytes stay in the file until the page is used
//! again. Compacting moves the pages still in use to the front of the file
//! and cuts off the rest, so the freed pages are rewritten or gone. It costs
//! time in proportion to the file, so it waits a little after a deletion
//! (several deletions in a row cost one compaction) and runs on the node's
//! tick, when nothing else holds the store.

use std::time::{Duration, Instant};

use super::Store;
use crate::changed::Changed;
use crate::error::StoreError;

/// How long after a deletion the store file is compacted.
pub const SCRUB_DELAY: Duration = Duration::from_secs(10);

impl Store {
    /// Checkpoints after a deletion was applied, so that the journal, which
    /// holds the bodies of this node's posts until a checkpoint, no longer
    /// holds the deleted post's. The deletion itself is durable either way
    /// (journalled, or in redb), so a failure here fails nothing: the
    /// bodies then leave the journal at the next checkpoint.
    pub(crate) fn checkpoint_after_erasure(&mut self) {
        self.erased_at.get_or_insert_with(std::time::Instant::now);
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "could not checkpoint after a deletion; the journal keeps the deleted post's text until the next checkpoint");
            self.poisoned |= e.needs_reopen();
        }
    }

    /// Compacts the store file if a deletion dropped bodies at least
    /// [`SCRUB_DELAY`] before `now`. Returns whether it compacted. On a
    /// disk too full to compact, or while a read is open, it stays due.
    pub fn scrub_if_due(&mut self, now: Instant) -> Result<bool, StoreError> {
        match self.erased_at {
            Some(at) if now.saturating_duration_since(at) >= SCRUB_DELAY => {}
            _ => return Ok(false),
        }
        self.ensure_space()?;
        // Whatever a checkpoint still owes goes first: compaction needs
        // every commit durable.
        self.flush()?;
        let compacted = (|| Ok::<_, StoreError>(self.db_mut()?.compact()?))();
        self.note(compacted)?;
        self.erased_at = None;
        Ok(true)
    }

    /// Whether a deletion's scrub is waiting (see [`Store::scrub_if_due`]).
    pub fn scrub_due(&self) -> bool {
        self.erased_at.is_some()
    }
}

/// Whether a transaction deleted a post, whose bodies it dropped.
pub(crate) fn erases(changed: &[Changed]) -> bool {
    changed
        .iter()
        .any(|c| matches!(c, Changed::Post { deleted: true, .. }))
}
