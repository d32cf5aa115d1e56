//! Durability and recovery: group commits, the journal of local changes
//! and its checkpoints, replaying it, and opening the store again after a
//! write failed underneath it.

use kith_core::SignedChange;

use crate::error::{CommitError, OpenError, StoreError};
use crate::journal::{CHECKPOINT_BYTES, Journal};

use super::*;

impl Store {
    /// Closes the database and opens it again, replaying the journal: what
    /// a store needs after a write failed underneath redb (a full disk, an
    /// I/O error), which then refuses every operation. Commits since the
    /// last durable one may be lost with the old handle; the journal holds
    /// every local one, and sync fetches again what peers sent. Should the
    /// open fail (the disk is still full), the store stays closed, and its
    /// operations say so, until a later call succeeds.
    pub fn reopen(&mut self) -> Result<(), OpenError> {
        // The file must be closed before it can be opened again.
        self.db = None;
        self.docs.clear();
        self.groups.clear();
        self.device_keys = Default::default();
        self.unflushed = false;
        self.journal_owed = true;
        self.poisoned = false;
        self.replay_pending = false;
        let opened = self.reopen_steps();
        match &opened {
            Ok(()) => {}
            // Open, but the disk is too full to replay the journal yet:
            // reads work (without the journal's latest changes, which stay
            // in it), and the next write opens the store again first.
            Err(OpenError::Store(StoreError::DiskFull { closed: false, .. }))
                if self.db.is_some() =>
            {
                self.replay_pending = true;
            }
            // Half-opened is closed: the next call tries again from the start.
            Err(_) => self.db = None,
        }
        opened
    }

    pub(super) fn reopen_steps(&mut self) -> Result<(), OpenError> {
        let (db, suffix, _) = open_db(&self.path)?;
        // A session open here is this store's own; `open_db` saw it as a
        // crash and took a new suffix, which is right: changes published
        // since the last durable commit may be gone with the old handle.
        self.db = Some(db);
        self.suffix = suffix;
        let opened = Journal::open(&self.path.with_extension("journal"))?;
        self.journal = opened.journal;
        if opened.damage.is_some() {
            self.journal_damage = opened.damage;
        }
        self.sealing_due = true;
        self.replay(opened.changes)?;
        if self.session {
            self.begin_session()?;
        }
        tracing::info!(store = %self.path.display(), "the store is open again");
        Ok(())
    }

    /// Applies what the journal holds (a crash, or a reopen, left it),
    /// durably, and only then empties it. These are this device's own
    /// signed changes, checked like any other; those the store holds
    /// already are duplicates.
    pub(super) fn replay(&mut self, left: Vec<SignedChange>) -> Result<(), OpenError> {
        if left.is_empty() {
            self.journal_owed = false;
            return Ok(());
        }
        let count = left.len();
        let report = self.ingest_with(&[], left)?;
        if !report.rejected.is_empty() {
            // A record that passed its checksum but fails verification is
            // damage the checksum could not see (it never was a valid
            // change): kept aside with the rest, like any damaged record,
            // rather than keeping the store from opening.
            let kept_at = self.journal.keep_aside()?;
            let reasons: Vec<String> = report
                .rejected
                .iter()
                .take(3)
                .map(|(_, why)| why.to_string())
                .collect();
            let damage = crate::JournalDamage {
                kept_at,
                skipped: Vec::new(),
                inside: true,
                refused: report.rejected.len(),
            };
            tracing::warn!(
                refused = report.rejected.len(),
                reasons = %reasons.join("; "),
                "the journal holds changes the store refuses; {damage}"
            );
            self.journal_damage = Some(damage);
        }
        tracing::info!(
            changes = count,
            new = report.applied + report.pending,
            "replayed the journal of local changes"
        );
        // `ingest_with` committed durably: everything in the journal is in redb.
        self.journal_owed = false;
        self.journal.clear()?;
        Ok(())
    }

    /// Makes every buffered ingest and every local change durable in redb
    /// (a checkpoint), and empties the journal. Cheap when there is none.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.unflushed {
            // An empty durable commit persists every earlier non-durable one.
            let committed = (|| Ok::<_, StoreError>(self.db()?.begin_write()?.commit()?))();
            self.note(committed)?;
            self.unflushed = false;
        }
        // Emptied only once every record in it is durably in redb: never
        // while records from before the open wait to be replayed, nor
        // while redb refuses writes or the store is closed after a failed
        // one (this runs from `Drop` on every path, failed opens included).
        if !self.journal_owed && !self.poisoned && self.db.is_some() {
            self.journal.clear()?;
        }
        Ok(())
    }

    /// A group commit, as a running node makes one each tick: every earlier
    /// non-durable commit (ingested changes, which nobody was promised)
    /// becomes durable. The journal is emptied once it holds half of
    /// [`CHECKPOINT_BYTES`]: until then its records are duplicates a replay
    /// skips, and keeping them costs no write each tick; emptying it here,
    /// off the path of any call, keeps [`Store::sync_local`] from having to
    /// checkpoint before it acknowledges a post (unless posts come faster
    /// than half a checkpoint a tick).
    pub fn group_commit(&mut self) -> Result<(), StoreError> {
        if self.journal.bytes() > CHECKPOINT_BYTES / 2 {
            return self.flush();
        }
        if self.unflushed {
            let committed = (|| Ok::<_, StoreError>(self.db()?.begin_write()?.commit()?))();
            self.note(committed)?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// Makes every local change durable: syncs the journal, and checkpoints
    /// once it has grown past [`CHECKPOINT_BYTES`]. What a node calls before
    /// it acknowledges an action of a session (see `begin_session`).
    ///
    /// Once the journal is synced the changes are durable: a checkpoint
    /// that fails after it does not fail this call. It leaves redb
    /// refusing every operation, so the store is marked to open again
    /// (see [`Store::needs_reopen`]).
    pub fn sync_local(&mut self) -> Result<(), StoreError> {
        self.journal.sync()?;
        if self.journal.bytes() > CHECKPOINT_BYTES
            && let Err(e) = self.flush()
        {
            tracing::warn!(error = %e, "could not checkpoint; the journal keeps the changes");
            self.poisoned |= e.needs_reopen();
        }
        Ok(())
    }

    /// Whether the store must open again before it is used (see
    /// [`Store::reopen`]): it is closed, or a write failed inside redb.
    /// Local commits and ingests open it again themselves.
    pub fn needs_reopen(&self) -> bool {
        self.poisoned || self.replay_pending || self.db.is_none()
    }

    /// Whether reads fail until the store opens again: it is closed, or
    /// redb refuses everything after a failed write.
    pub fn needs_reopen_to_read(&self) -> bool {
        self.poisoned || self.db.is_none()
    }

    /// Opens the store again if it needs to, for a write about to start.
    pub(super) fn heal(&mut self) -> Result<(), StoreError> {
        if !self.needs_reopen() {
            return Ok(());
        }
        self.reopen().map_err(|e| match e {
            OpenError::Store(e) => e,
            other => StoreError::Closed(other.to_string()),
        })
    }

    /// Notes an error of a write: one that failed inside redb leaves it
    /// refusing everything until the store opens again.
    pub(crate) fn note<T, E: AsStoreError>(&mut self, result: Result<T, E>) -> Result<T, E> {
        if let Err(e) = &result
            && e.as_store_error().is_some_and(StoreError::needs_reopen)
        {
            self.poisoned = true;
        }
        result
    }
}

/// Errors that may carry a [`StoreError`], for [`Store::note`].
pub(crate) trait AsStoreError {
    fn as_store_error(&self) -> Option<&StoreError>;
}

impl AsStoreError for StoreError {
    fn as_store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

impl AsStoreError for CommitError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            CommitError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl AsStoreError for crate::ImportError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            crate::ImportError::Store(e) => Some(e),
            _ => None,
        }
    }
}
