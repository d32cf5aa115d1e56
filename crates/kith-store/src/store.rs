//! The store: one redb file holding signed changes, certificates and the
//! read indexes, and the only code that writes them.

use std::path::{Path, PathBuf};

use automerge::{AutoCommit, ChangeHash};
use kith_core::{DeviceCert, DeviceId, DeviceKey, DocId, IdentityId};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::changed::{Changed, ChangedLog};
use crate::changelog::Rows;
use crate::docs::DocCache;
use crate::error::{IngestError, OpenError, StoreError};
use crate::groups::GroupCache;
use crate::journal::Journal;

use crate::tables::*;
use crate::tx::Writer;

mod durability;
mod export;
mod ingest;
mod local;
mod scrub;
mod session;
mod upkeep;
mod write;

use session::new_actor_suffix;

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
        // Dropped while a panic unwinds (redb panics on a page damaged
        // outside it): touching the file again could panic a second time
        // and abort. Nothing is lost: the journal replays at the next open.
        if std::thread::panicking() {
            return;
        }
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

    /// What the indexes changed since the last call (posts, reactions,
    /// profiles, groups), and whether entries were lost because nobody read
    /// them for too long (at most [`crate::MAX_CHANGED`] are kept).
    pub fn take_changed(&mut self) -> (Vec<Changed>, bool) {
        self.changed.take()
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
