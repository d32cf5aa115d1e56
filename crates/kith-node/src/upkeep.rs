//! Keeping a running node's store in shape, each tick and at its stop:
//! group commits made durable, history sealed into blocks, the file
//! compacted after a deletion, and the store opened again after a write
//! failed underneath it. Failures are logged and tried again next tick:
//! none of them may stop the node.

use crate::service::{ActionError, Service};

/// Runs of changes sealed per tick: 16 × 64 changes, a few milliseconds.
const SEAL_RUNS_PER_TICK: usize = 16;

impl Service {
    /// One tick's upkeep, at `now`.
    pub(crate) fn upkeep(&mut self, now: std::time::Instant) {
        self.group_commit();
        self.seal();
        self.scrub(now);
    }

    /// The last upkeep, when the node stops: a deletion's scrub does not
    /// wait for its delay, and the store's session ends.
    pub(crate) fn stop_upkeep(&mut self) {
        self.flush_store();
        self.scrub(std::time::Instant::now() + kith_store::SCRUB_DELAY);
        if let Err(e) = self.store_mut().end_session() {
            tracing::error!(error = %e, "could not close the store's session");
        }
    }

    /// Makes changes ingested from the network durable (group commit: at
    /// most one tick's worth can be lost in a crash, and sync fetches it
    /// again). A failed commit leaves redb refusing every operation: the
    /// store is opened again, and the journal replays.
    fn group_commit(&mut self) {
        if let Err(e) = self.store_mut().group_commit() {
            tracing::error!(error = %e, "could not commit the store");
            if e.needs_reopen() {
                self.reopen_store();
            }
        }
    }

    /// Makes everything durable and empties the journal.
    fn flush_store(&mut self) {
        if let Err(e) = self.store_mut().flush() {
            tracing::error!(error = %e, "could not flush the store");
            if e.needs_reopen() {
                self.reopen_store();
            }
        }
    }

    /// Packs a little of the stored history into compressed blocks (a few
    /// milliseconds), so the store shrinks without a pause.
    fn seal(&mut self) {
        if let Err(e) = self.store_mut().seal(SEAL_RUNS_PER_TICK) {
            tracing::error!(error = %e, "could not seal stored changes");
        }
    }

    /// Compacts the store file some seconds after a deletion, so that the
    /// deleted post's text does not linger in freed pages (see
    /// `Store::scrub_if_due`). A failure leaves it due for the next tick.
    fn scrub(&mut self, now: std::time::Instant) {
        let from = std::time::Instant::now();
        match self.store_mut().scrub_if_due(now) {
            Ok(true) => tracing::info!(
                seconds = from.elapsed().as_secs_f32(),
                "compacted the store after a deletion"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not compact the store after a deletion"),
        }
    }

    /// Opens the store again if a failed write closed it or left redb
    /// refusing everything.
    pub(crate) fn reopen_if_closed(&mut self) {
        // A store that only waits for room to replay its journal still
        // reads; its next write opens it again itself.
        if self.store().needs_reopen_to_read() {
            self.reopen_store();
        }
    }

    /// Closes and opens the store again after a failed write (see
    /// `Store::reopen`); if that fails too, the store stays closed, its
    /// operations say why, and the next input tries again.
    pub(crate) fn reopen_store(&mut self) {
        if let Err(e) = self.store_mut().reopen() {
            tracing::warn!(error = %e, "the store is closed until it can open again");
        }
    }

    /// Reopens the store if `result` says a write failed underneath it.
    pub(crate) fn reopen_after<T>(&mut self, result: &Result<T, ActionError>) {
        if let Err(ActionError::Store(e) | ActionError::NotDurable(e)) = result
            && e.needs_reopen()
        {
            self.reopen_store();
        }
    }
}
