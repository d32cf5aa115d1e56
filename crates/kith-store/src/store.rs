//! The store: one redb file holding signed changes, certificates and the
//! read indexes, and the only code that writes them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ChangeHash};
use kith_core::{DeviceCert, DeviceId, DeviceKey, DocId, IdentityId, SignedChange, Verified};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::changed::{Changed, ChangedLog};
use crate::changelog::{self, Rows};
use crate::docs::DocCache;
use crate::draft::Draft;
use crate::error::{CommitError, IngestError, OpenError, StoreError};
use crate::groups::GroupCache;
use crate::index::{Applied, index_change};
use crate::journal::{CHECKPOINT_BYTES, Journal};
use crate::rows::change_key;
use crate::tables::*;
use crate::tx::Writer;

mod export;
mod ingest;
mod scrub;

pub use scrub::SCRUB_DELAY;
pub(crate) use scrub::erases;

/// Most changes of one document that may wait for missing dependencies.
/// Beyond this a change is refused, so that no peer can grow the store with
/// changes that never apply.
pub const MAX_PENDING_PER_DOC: usize = 4096;

/// `author_no` of changes to documents with no single author.
const NO_PERSON: u32 = u32::MAX;

/// Length of the random actor suffix chosen when a store is created.
pub const ACTOR_SUFFIX_LEN: usize = 8;

/// What this device signs local changes with.
#[derive(Debug, Clone, Copy)]
pub struct LocalSigner<'a> {
    pub key: &'a DeviceKey,
    pub author: IdentityId,
}

/// The outcome of ingesting a batch of changes that did not originate here.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// Changes applied to their documents (including earlier pending ones
    /// whose dependencies arrived).
    pub applied: usize,
    /// Changes stored but waiting for dependencies.
    pub pending: usize,
    /// Changes already stored.
    pub duplicates: usize,
    /// Refused changes, by their index in the batch.
    pub rejected: Vec<(usize, IngestError)>,
}

/// Least free space on the store's disk for a write to be tried. Below it a
/// write is refused with [`StoreError::DiskFull`] before redb sees it: a
/// write that fails inside redb closes the whole database (reads too) until
/// it is opened again, while a refusal here leaves reads working.
pub const MIN_FREE_BYTES: u64 = 4 << 20;

/// The redb-backed store.
pub struct Store {
    /// `None` while closed after a failed write (see [`Store::reopen`]).
    pub(crate) db: Option<Database>,
    pub(crate) docs: DocCache,
    suffix: Vec<u8>,
    path: PathBuf,
    /// A non-durable commit happened since the last durable one.
    unflushed: bool,
    /// Local changes since the last durable commit (see `journal`).
    journal: Journal,
    /// The journal holds records that may not be in redb yet (from before
    /// the last open): it must not be emptied until they are replayed.
    journal_owed: bool,
    /// What opening found unreadable in the journal.
    journal_damage: Option<crate::JournalDamage>,
    /// Free bytes below which writes are refused.
    min_free_bytes: u64,
    /// A write failed inside redb, which now refuses every operation until
    /// the store opens again (see [`Store::reopen`]).
    poisoned: bool,
    /// Opened again, but the disk was too full to replay the journal: reads
    /// work, and the next write opens the store again first.
    replay_pending: bool,
    /// Threads that check signatures during an ingest (1: the caller's only).
    verify_threads: usize,
    /// Signing keys of the devices heard from, as curve points.
    device_keys: kith_core::DeviceKeys,
    /// Local commits are not durable until `flush` (see `begin_session`).
    session: bool,
    /// Opening found a crashed session.
    recovered: bool,
    /// Changes may have been stored since a seal last found nothing more to
    /// do: an idle node's tick then costs no scan.
    sealing_due: bool,
    /// Replayed group memberships.
    pub(crate) groups: GroupCache,
    /// What committed transactions changed in the indexes, not yet taken.
    changed: ChangedLog,
    /// When a deletion first dropped bodies since the file was last
    /// compacted (see `scrub`).
    erased_at: Option<std::time::Instant>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("docs", &self.docs)
            .finish()
    }
}

/// A clean close checkpoints, so the next open has no journal to replay.
impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "could not checkpoint the store as it closed; the journal will replay");
        }
    }
}

impl Store {
    /// Opens the store at `path`, creating it (and its actor suffix) if needed.
    pub fn open(path: &Path) -> Result<Store, OpenError> {
        if let Some(damaged) = crate::repair::unfinished(path) {
            return Err(OpenError::RepairUnfinished {
                path: path.display().to_string(),
                damaged: damaged.display().to_string(),
            });
        }
        let (db, suffix, recovered) = open_db(path)?;
        let opened = Journal::open(&path.with_extension("journal"))?;
        let mut store = Store {
            db: Some(db),
            docs: DocCache::default(),
            suffix,
            path: path.to_owned(),
            unflushed: false,
            journal: opened.journal,
            journal_owed: true,
            journal_damage: opened.damage,
            min_free_bytes: MIN_FREE_BYTES,
            poisoned: false,
            replay_pending: false,
            verify_threads: 1,
            device_keys: Default::default(),
            session: false,
            recovered,
            sealing_due: true,
            groups: GroupCache::default(),
            changed: ChangedLog::default(),
            erased_at: None,
        };
        store.replay(opened.changes)?;
        Ok(store)
    }

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

    fn reopen_steps(&mut self) -> Result<(), OpenError> {
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

    /// Whether the store is closed after a failed write (see [`Store::reopen`]).
    pub fn is_closed(&self) -> bool {
        self.db.is_none()
    }

    /// The database, unless closed after a failed write.
    pub(crate) fn db(&self) -> Result<&Database, StoreError> {
        self.db.as_ref().ok_or_else(|| {
            StoreError::Closed(
                "a write failed (is the disk full?) and the store could not open again yet".into(),
            )
        })
    }

    fn db_mut(&mut self) -> Result<&mut Database, StoreError> {
        self.db.as_mut().ok_or_else(|| {
            StoreError::Closed(
                "a write failed (is the disk full?) and the store could not open again yet".into(),
            )
        })
    }

    /// What opening found unreadable in the journal, if anything.
    pub fn journal_damage(&self) -> Option<&crate::JournalDamage> {
        self.journal_damage.as_ref()
    }

    /// Sets the free space below which writes are refused (default
    /// [`MIN_FREE_BYTES`]).
    pub fn set_min_free_bytes(&mut self, bytes: u64) {
        self.min_free_bytes = bytes;
    }

    /// Refuses a write when the store's disk has less than the minimum
    /// free space (see [`MIN_FREE_BYTES`]).
    pub(crate) fn ensure_space(&self) -> Result<(), StoreError> {
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // Should the file system not say, the write is tried.
        let Ok(stats) = rustix::fs::statvfs(dir) else {
            return Ok(());
        };
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        if free < self.min_free_bytes {
            return Err(StoreError::DiskFull {
                path: dir.display().to_string(),
                closed: false,
            });
        }
        Ok(())
    }

    /// Applies what the journal holds (a crash, or a reopen, left it),
    /// durably, and only then empties it. These are this device's own
    /// signed changes, checked like any other; those the store holds
    /// already are duplicates.
    fn replay(&mut self, left: Vec<SignedChange>) -> Result<(), OpenError> {
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

    /// The random suffix of this store's actor ids.
    pub fn actor_suffix(&self) -> &[u8] {
        &self.suffix
    }

    /// The automerge actor id this device writes with in this store.
    pub fn actor_for(&self, device: &DeviceId) -> automerge::ActorId {
        kith_core::actor_id(device, &self.suffix)
    }

    /// Records a verified certificate. A device already certified by another
    /// identity is refused: the first certificate stands.
    pub fn add_certificate(&mut self, cert: &DeviceCert) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write()?;
        let added = {
            let mut devices = txn.open_table(DEVICES)?;
            certify(&mut devices, cert)? == cert.identity
        };
        txn.commit()?;
        Ok(added)
    }

    /// The identity that certified `device`, if any.
    pub fn identity_of(&self, device: &DeviceId) -> Result<Option<IdentityId>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let devices = txn.open_table(DEVICES)?;
        let cert = devices.get(&device.0)?;
        Ok(cert
            .map(|v| stored_cert(v.value()))
            .transpose()?
            .map(|c| c.identity))
    }

    /// Reads a document's current state.
    pub fn read_doc<R>(
        &mut self,
        doc: &DocId,
        f: impl FnOnce(&AutoCommit) -> R,
    ) -> Result<R, StoreError> {
        let txn = self.db()?.begin_read()?;
        let nos = txn.open_table(DOC_NOS)?;
        let Some(doc_no) = nos.get(&doc.to_bytes()[..])?.map(|v| v.value()) else {
            return Ok(f(&AutoCommit::new()));
        };
        let (changes, sealed) = (txn.open_table(CHANGES)?, txn.open_table(SEALED)?);
        let rows = Rows {
            changes: &changes,
            sealed: &sealed,
        };
        Ok(f(self.docs.get(rows, doc_no)?))
    }

    /// A document's current heads (empty if unknown).
    pub fn doc_heads(&mut self, doc: &DocId) -> Result<Vec<ChangeHash>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let nos = txn.open_table(DOC_NOS)?;
        let Some(doc_no) = nos.get(&doc.to_bytes()[..])?.map(|v| v.value()) else {
            return Ok(Vec::new());
        };
        let (changes, sealed) = (txn.open_table(CHANGES)?, txn.open_table(SEALED)?);
        let rows = Rows {
            changes: &changes,
            sealed: &sealed,
        };
        Ok(self.docs.get(rows, doc_no)?.get_heads())
    }

    /// How many changes a document holds (0 if unknown): decides feed shard roll-over.
    pub fn doc_size(&self, doc: &DocId) -> Result<u32, StoreError> {
        let txn = self.db()?.begin_read()?;
        let nos = txn.open_table(DOC_NOS)?;
        let Some(doc_no) = nos.get(&doc.to_bytes()[..])?.map(|v| v.value()) else {
            return Ok(0);
        };
        let sizes = txn.open_table(DOC_SIZES)?;
        Ok(sizes.get(doc_no)?.map_or(0, |v| v.value()))
    }

    /// Starts a session in which local commits are not durable until
    /// [`Store::sync_local`] (or [`Store::flush`]), so that a node can publish
    /// a change while its disk write is still under way (and acknowledge it
    /// only after the sync).
    /// A change published and then lost in a crash must never have its
    /// sequence number reused by a different change (peers would see
    /// equivocation), so the session is recorded durably, and whoever opens
    /// the store next and finds it still open gives the store a new actor
    /// suffix: a fresh sequence of numbers.
    pub fn begin_session(&mut self) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(META)?
            .insert(META_SESSION, [1u8].as_slice())?;
        txn.commit()?;
        self.session = true;
        Ok(())
    }

    /// Whether opening found a session left open by a crash (and so chose a
    /// new actor suffix).
    pub fn recovered_from_crash(&self) -> bool {
        self.recovered
    }

    /// Makes everything durable and ends the session (a clean stop).
    pub fn end_session(&mut self) -> Result<(), StoreError> {
        if !self.session {
            return Ok(());
        }
        let txn = self.db()?.begin_write()?;
        txn.open_table(META)?.remove(META_SESSION)?;
        txn.commit()?;
        if !self.journal_owed {
            self.journal.clear()?;
        }
        self.unflushed = false;
        self.session = false;
        Ok(())
    }

    /// Makes a local change: runs `f` on the document, commits the result as
    /// one automerge change signed by this device, journals it, then stores
    /// and indexes it in one transaction: durable on return unless a session
    /// is open (then through the journal, at [`Store::sync_local`]). Returns
    /// `f`'s value and the signed change (`None` when `f` changed nothing).
    ///
    /// A node publishes the change after this returns and before it syncs
    /// the journal: peers hear only of changes this store holds. A change
    /// whose transaction fails is never returned, and its journal record is
    /// taken back, so its sequence number is free for the next change.
    pub fn commit_local<T, E: std::fmt::Display>(
        &mut self,
        doc_id: DocId,
        signer: LocalSigner<'_>,
        now_ms: u64,
        f: impl FnOnce(&mut Draft<'_>) -> Result<T, E>,
    ) -> Result<(T, Option<Verified<SignedChange>>), CommitError> {
        self.heal()?;
        let result = self.commit_local_inner(doc_id, signer, now_ms, f);
        self.note(result)
    }

    fn commit_local_inner<T, E: std::fmt::Display>(
        &mut self,
        doc_id: DocId,
        signer: LocalSigner<'_>,
        now_ms: u64,
        f: impl FnOnce(&mut Draft<'_>) -> Result<T, E>,
    ) -> Result<(T, Option<Verified<SignedChange>>), CommitError> {
        self.ensure_space()?;
        let actor = self.actor_for(&signer.key.id());
        self.sealing_due = true;
        // Durable through the journal, not through this commit.
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| CommitError::Store(StoreError::Corrupt(e.to_string())))?;
        self.unflushed = true;
        // Set when a change was made but the group's rules refuse it: the
        // cached document holds it and must be dropped.
        let mut tainted = false;
        let mut changed = Vec::new();
        // Where the journal stood before this change's record, once it has one.
        let mut journalled_from = None;
        let result = (|| {
            let mut w = Writer::open(&txn)?;
            if doc_id.kind == kith_core::DocKind::Feed && !doc_id.space.is_public() {
                let member = self
                    .group_in(&mut w, &doc_id.space)?
                    .is_some_and(|g| g.is_member(&signer.author));
                if !member {
                    return Err(CommitError::NotMember(doc_id.space));
                }
            }
            let doc_no = w.intern_doc(&doc_id)?;
            let doc = self.docs.get(w.rows()?, doc_no)?;
            doc.set_actor(actor.clone());
            let mut draft = Draft::new(doc);
            let made = f(&mut draft);
            let bodies = draft.into_bodies();
            let value = match made {
                Ok(v) => v,
                Err(e) => {
                    doc.rollback();
                    return Err(CommitError::Invalid(e.to_string()));
                }
            };
            if doc
                .commit_with(CommitOptions::default().with_time(now_ms as i64))
                .is_none()
            {
                return Ok((value, None));
            }
            let change = doc
                .get_last_local_change()
                .expect("a change was just committed");
            if doc_id.kind == kith_core::DocKind::GroupControl {
                let earlier: Vec<automerge::Change> = doc
                    .get_changes(&[])
                    .into_iter()
                    .filter(|c| c.hash() != change.hash())
                    .collect();
                let author_of = crate::groups::author_of(w.devices()?);
                if let Err(why) = kith_core::group::may_write_control(
                    doc_id.space,
                    &earlier,
                    &change,
                    &signer.author,
                    author_of,
                ) {
                    tainted = true;
                    return Err(CommitError::Invalid(format!(
                        "the group refuses this: {why}"
                    )));
                }
                self.groups.forget(&doc_id.space);
            }
            let mut verified = SignedChange::sign(
                doc_id,
                change.raw_bytes().to_vec(),
                signer.key,
                signer.author,
            )?;
            // The journal record carries the bodies: they are as much part
            // of an acknowledged post as its change.
            verified.attach_bodies(bodies);
            let from = self.journal.bytes();
            self.journal
                .append(verified.signed())
                .map_err(StoreError::from)?;
            journalled_from = Some(from);
            let author_no = w.intern_person(&signer.author)?;
            let actor_no = w.intern_actor(actor.to_bytes())?;
            store_rows(
                &mut w,
                doc_no,
                &[(actor_no, &change, &verified.signed().signature)],
            )?;
            index_change(
                &mut w,
                doc,
                &Applied {
                    change: &change,
                    doc_no,
                    doc: doc_id,
                    actor_no,
                    author_no,
                    bodies: &verified.signed().bodies,
                },
            )?;
            changed = std::mem::take(&mut w.changed);
            Ok((value, Some(verified)))
        })();
        match result {
            Ok(v) => match txn.commit() {
                Ok(()) => {
                    let erased = erases(&changed);
                    self.changed.extend(changed);
                    if v.1.is_some() && !self.session {
                        self.sync_local()?;
                    }
                    if erased {
                        self.checkpoint_after_erasure();
                    }
                    Ok(v)
                }
                Err(e) => {
                    self.docs.clear();
                    self.groups.clear();
                    self.take_back(journalled_from);
                    Err(e.into())
                }
            },
            Err(CommitError::Invalid(msg)) => {
                if tainted {
                    self.docs.clear();
                    self.groups.clear();
                }
                Err(CommitError::Invalid(msg))
            }
            Err(e) => {
                self.docs.clear();
                self.groups.clear();
                self.take_back(journalled_from);
                Err(e)
            }
        }
    }

    /// Takes back the journal record of a local change that was not stored:
    /// replaying it would fail the same way, and the next change takes its
    /// sequence number.
    fn take_back(&mut self, journalled_from: Option<u64>) {
        if let Some(len) = journalled_from
            && let Err(e) = self.journal.truncate(len)
        {
            tracing::warn!(error = %e, "could not take back the journal record of a failed change");
        }
    }

    /// What the indexes changed since the last call (posts, reactions,
    /// profiles, groups), and whether entries were lost because nobody read
    /// them for too long (at most [`crate::MAX_CHANGED`] are kept).
    pub fn take_changed(&mut self) -> (Vec<Changed>, bool) {
        self.changed.take()
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
    /// becomes durable. The journal is emptied only once it has grown past
    /// [`CHECKPOINT_BYTES`], as [`Store::sync_local`] does: until then its
    /// records are duplicates a replay skips, and keeping them costs no
    /// write each tick.
    pub fn group_commit(&mut self) -> Result<(), StoreError> {
        if self.journal.bytes() > CHECKPOINT_BYTES {
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
    fn heal(&mut self) -> Result<(), StoreError> {
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

    /// Counts of what is stored, for status displays and tests.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(Counts {
            documents: txn.open_table(DOCS)?.len()?,
            changes: txn
                .open_table(DOC_SIZES)?
                .iter()?
                .map(|e| e.map(|(_, n)| u64::from(n.value())))
                .sum::<Result<u64, _>>()?,
            pending: txn.open_table(PENDING)?.len()?,
            quarantined: txn.open_table(QUARANTINE)?.len()?,
            posts: txn.open_table(FEED)?.len()?,
            people: txn.open_table(PEOPLE)?.len()?,
        })
    }

    /// Lets an ingest check signatures on up to `threads` threads (the
    /// default is 1: only the calling thread). A node gives it its cores.
    pub fn set_verify_threads(&mut self, threads: usize) {
        self.verify_threads = threads.max(1);
    }

    /// Seals at most `limit` full runs of stored changes into compressed
    /// blocks (see `changelog`); returns how many. A node calls this while
    /// idle, a little at a time, so writes never wait for it.
    pub fn seal(&mut self, limit: usize) -> Result<usize, StoreError> {
        // Sealing is maintenance: it waits for the disk to have room.
        if !self.sealing_due || self.ensure_space().is_err() {
            return Ok(0);
        }
        let txn = self.db()?.begin_write()?;
        let sealed = {
            let mut w = Writer::open(&txn)?;
            changelog::seal(&mut w, limit)?
        };
        if sealed > 0 {
            txn.commit()?;
        }
        // Fewer runs than asked for: everything that can be sealed is.
        self.sealing_due = sealed >= limit;
        Ok(sealed)
    }

    /// Seals every full run of changes, then rewrites the file to give back
    /// the space of freed pages (redb does not shrink it on its own). Slow:
    /// for maintenance, not the hot path. Returns whether the file shrank.
    pub fn compact(&mut self) -> Result<bool, StoreError> {
        while self.seal(1024)? > 0 {}
        Ok(self.db_mut()?.compact()?)
    }

    /// Seals everything, then compacts if more than half of a file of at
    /// least `min_file_bytes` is free space (redb reuses freed pages but
    /// never gives them back). A node does this when it starts. Returns the
    /// file's size before and after, if it compacted.
    pub fn tidy(&mut self, min_file_bytes: u64) -> Result<Option<(u64, u64)>, StoreError> {
        while self.seal(1024)? > 0 {}
        let path = self.path.clone();
        let file_len = || std::fs::metadata(&path).map_or(0, |m| m.len());
        let before = file_len();
        let used = {
            let stats = self.db()?.begin_write()?.stats()?;
            stats.allocated_pages() * stats.page_size() as u64
        };
        if before < min_file_bytes || used * 2 > before || self.ensure_space().is_err() {
            return Ok(None);
        }
        self.db_mut()?.compact()?;
        Ok(Some((before, file_len())))
    }

    /// The path of the redb file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How much a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub documents: u64,
    pub changes: u64,
    pub pending: u64,
    pub quarantined: u64,
    pub posts: u64,
    pub people: u64,
}

/// Chooses a new random actor suffix and records it: from now on this
/// store's changes start a fresh sequence of numbers.
fn new_actor_suffix(meta: &mut redb::Table<'_, &str, &[u8]>) -> Result<Vec<u8>, StoreError> {
    let suffix = kith_core::keys::random_bytes::<ACTOR_SUFFIX_LEN>()?.to_vec();
    meta.insert(META_ACTOR_SUFFIX, suffix.as_slice())?;
    Ok(suffix)
}

/// Stores change rows of one document: signature, then the raw chunk. Not
/// compressed here: per-change DEFLATE cost a fifth of ingest time and saved
/// little on short posts; `Store::seal` compresses runs of changes together.
/// The document's size and its actors' clocks are updated once per call.
fn store_rows(
    w: &mut Writer<'_>,
    doc_no: u32,
    rows: &[(u32, &automerge::Change, &[u8; 64])],
) -> Result<(), StoreError> {
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

/// Opens (or creates) the redb file: checks its layout, creates missing
/// tables, and takes a new actor suffix if a session was left open. Returns
/// the database, the suffix and whether a session was left open.
fn open_db(path: &Path) -> Result<(Database, Vec<u8>, bool), OpenError> {
    let shown = path.display().to_string();
    // redb may panic on a file damaged outside it; that is damage to report.
    let db = std::panic::catch_unwind(|| Database::builder().create(path))
        .map_err(|panic| OpenError::Damaged {
            path: shown.clone(),
            detail: crate::repair::panic_text(&panic),
        })?
        .map_err(|e| OpenError::from_db(&shown, e))?;
    let txn = db.begin_write().map_err(StoreError::from)?;
    let (suffix, recovered) = {
        // The layout is checked before any other table is opened: a newer
        // layout may have changed their types.
        let mut meta = txn.open_table(META).map_err(StoreError::from)?;
        let schema = meta
            .get(META_SCHEMA)
            .map_err(StoreError::from)?
            .map(|v| v.value().to_vec());
        match schema {
            Some(v) => {
                let found = v
                    .as_slice()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .unwrap_or(u32::MAX);
                if found > SCHEMA_VERSION || found == 0 {
                    return Err(OpenError::Schema {
                        path: shown,
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
                if found < SCHEMA_VERSION {
                    // Layout 1 reads as it is (see `tables`); marking
                    // the upgrade keeps older kith from misreading it.
                    meta.insert(META_SCHEMA, SCHEMA_VERSION.to_be_bytes().as_slice())
                        .map_err(StoreError::from)?;
                }
            }
            None => {
                meta.insert(META_SCHEMA, SCHEMA_VERSION.to_be_bytes().as_slice())
                    .map_err(StoreError::from)?;
            }
        }
        let existing = meta
            .get(META_ACTOR_SUFFIX)
            .map_err(StoreError::from)?
            .map(|v| v.value().to_vec());
        // A session left open: the last node crashed, maybe after
        // publishing changes it had not written (see `begin_session`).
        let crashed = meta
            .remove(META_SESSION)
            .map_err(StoreError::from)?
            .is_some();
        let suffix = match existing {
            Some(s) if !crashed => s,
            _ => new_actor_suffix(&mut meta)?,
        };
        drop(meta);
        // Creates every table a fresh store lacks.
        Writer::create_tables(&txn)?;
        (suffix, crashed)
    };
    txn.commit().map_err(StoreError::from)?;
    Ok((db, suffix, recovered))
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
