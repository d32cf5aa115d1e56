//! The store: one redb file holding signed changes, certificates and the
//! read indexes, and the only code that writes them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ChangeHash};
use kith_core::archive::Archive;
use kith_core::{
    DeviceCert, DeviceId, DeviceKey, DocId, IdentityId, SignedChange, Verified,
    verify_batch_parallel,
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::changed::{Changed, ChangedLog};
use crate::changelog::{self, Rows};
use crate::docs::{self, DocCache, parse_change};
use crate::error::{CommitError, ImportError, IngestError, OpenError, StoreError};
use crate::groups::GroupCache;
use crate::index::{Applied, index_change};
use crate::journal::{CHECKPOINT_BYTES, Journal};
use crate::rows::{change_key, split_change_key};
use crate::tables::*;
use crate::tx::Writer;

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

/// The redb-backed store.
pub struct Store {
    pub(crate) db: Database,
    pub(crate) docs: DocCache,
    suffix: Vec<u8>,
    path: PathBuf,
    /// A non-durable commit happened since the last durable one.
    unflushed: bool,
    /// Local changes since the last durable commit (see `journal`).
    journal: Journal,
    /// Threads that check signatures during an ingest (1: the caller's only).
    verify_threads: usize,
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
        let shown = path.display().to_string();
        let db = Database::builder().create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse {
                path: shown.clone(),
            },
            source => OpenError::Db {
                path: shown.clone(),
                source,
            },
        })?;
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
                _ => {
                    let s = kith_core::keys::random_bytes::<ACTOR_SUFFIX_LEN>()?.to_vec();
                    meta.insert(META_ACTOR_SUFFIX, s.as_slice())
                        .map_err(StoreError::from)?;
                    s
                }
            };
            drop(meta);
            // Creates every table a fresh store lacks.
            Writer::open(&txn)?;
            (suffix, crashed)
        };
        txn.commit().map_err(StoreError::from)?;
        let (journal, left) = Journal::open(&path.with_extension("journal"))?;
        let mut store = Store {
            db,
            docs: DocCache::default(),
            suffix,
            path: path.to_owned(),
            unflushed: false,
            journal,
            verify_threads: 1,
            session: false,
            recovered,
            sealing_due: true,
            groups: GroupCache::default(),
            changed: ChangedLog::default(),
        };
        store.replay(left)?;
        Ok(store)
    }

    /// Applies what a crash left in the journal, durably, and empties it.
    /// These are this device's own signed changes, checked like any other;
    /// those the store holds already are duplicates.
    fn replay(&mut self, left: Vec<SignedChange>) -> Result<(), OpenError> {
        if left.is_empty() {
            return Ok(());
        }
        let count = left.len();
        let report = self.ingest_with(&[], left)?;
        if let Some((_, why)) = report.rejected.first() {
            return Err(OpenError::Replay {
                path: self.path.with_extension("journal").display().to_string(),
                reason: why.to_string(),
            });
        }
        tracing::info!(
            changes = count,
            new = report.applied + report.pending,
            "replayed the journal of local changes"
        );
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
        let txn = self.db.begin_write()?;
        let added = {
            let mut devices = txn.open_table(DEVICES)?;
            certify(&mut devices, cert)? == cert.identity
        };
        txn.commit()?;
        Ok(added)
    }

    /// The identity that certified `device`, if any.
    pub fn identity_of(&self, device: &DeviceId) -> Result<Option<IdentityId>, StoreError> {
        let txn = self.db.begin_read()?;
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
        let txn = self.db.begin_read()?;
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
        let txn = self.db.begin_read()?;
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
        let txn = self.db.begin_read()?;
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
        let txn = self.db.begin_write()?;
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
        let txn = self.db.begin_write()?;
        txn.open_table(META)?.remove(META_SESSION)?;
        txn.commit()?;
        self.journal.clear()?;
        self.unflushed = false;
        self.session = false;
        Ok(())
    }

    /// Makes a local change: runs `f` on the document, commits the result as
    /// one automerge change signed by this device, stores and indexes it in one
    /// transaction, and journals it: durable on return unless a session is
    /// open. Returns `f`'s value and the signed change (`None`
    /// when `f` changed nothing).
    pub fn commit_local<T, E: std::fmt::Display>(
        &mut self,
        doc_id: DocId,
        signer: LocalSigner<'_>,
        now_ms: u64,
        f: impl FnOnce(&mut AutoCommit) -> Result<T, E>,
    ) -> Result<(T, Option<Verified<SignedChange>>), CommitError> {
        let actor = self.actor_for(&signer.key.id());
        self.sealing_due = true;
        // Durable through the journal, not through this commit.
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| CommitError::Store(StoreError::Corrupt(e.to_string())))?;
        self.unflushed = true;
        // Set when a change was made but the group's rules refuse it: the
        // cached document holds it and must be dropped.
        let mut tainted = false;
        let mut changed = Vec::new();
        let result = (|| {
            let mut w = Writer::open(&txn)?;
            if doc_id.kind == kith_core::DocKind::Feed && !doc_id.space.is_public() {
                let member = self
                    .group_in(&mut w, &doc_id.space)?
                    .is_some_and(|g| g.is_member(&signer.author));
                if !member {
                    return Err(CommitError::Invalid(
                        "you are not a member of this group".into(),
                    ));
                }
            }
            let doc_no = w.intern_doc(&doc_id)?;
            let doc = self.docs.get(w.rows(), doc_no)?;
            doc.set_actor(actor.clone());
            let value = match f(doc) {
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
                let author_of = crate::groups::author_of(&w.devices);
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
            let verified = SignedChange::sign(
                doc_id,
                change.raw_bytes().to_vec(),
                signer.key,
                signer.author,
            )?;
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
                },
            )?;
            changed = std::mem::take(&mut w.changed);
            Ok((value, Some(verified)))
        })();
        match result {
            Ok(v) => match txn.commit() {
                Ok(()) => {
                    self.changed.extend(changed);
                    if let (_, Some(change)) = &v {
                        self.journal
                            .append(change.signed())
                            .map_err(StoreError::from)?;
                        if !self.session {
                            self.sync_local()?;
                        }
                    }
                    Ok(v)
                }
                Err(e) => {
                    self.docs.clear();
                    self.groups.clear();
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
                Err(e)
            }
        }
    }

    /// What the indexes changed since the last call (posts, reactions,
    /// profiles, groups), and whether entries were lost because nobody read
    /// them for too long (at most [`crate::MAX_CHANGED`] are kept).
    pub fn take_changed(&mut self) -> (Vec<Changed>, bool) {
        self.changed.take()
    }

    /// Ingests changes from elsewhere (network, relay), each on its own
    /// merits: refused ones are reported and the rest applied, in one
    /// group-committed transaction.
    pub fn ingest(&mut self, changes: Vec<SignedChange>) -> Result<IngestReport, StoreError> {
        self.ingest_with(&[], changes)
    }

    /// Like [`Store::ingest`], with verified certificates that came along
    /// (from a peer). A certificate is kept only if a change its device
    /// signed passes verification, so no peer can fill the store with
    /// certificates of throwaway identities.
    pub fn ingest_with(
        &mut self,
        certs: &[DeviceCert],
        changes: Vec<SignedChange>,
    ) -> Result<IngestReport, StoreError> {
        unatomic(self.ingest_inner(certs, changes, false, true))
    }

    /// Imports an archive all-or-nothing: if any certificate or change fails
    /// its checks, nothing is applied and the first failure is returned.
    pub fn import(&mut self, archive: Archive) -> Result<IngestReport, ImportError> {
        self.ingest_inner(&archive.certificates, archive.changes, true, true)
    }

    /// Like [`Store::ingest_with`] but group-committed: the transaction is
    /// not flushed to disk until the next [`Store::flush`] (or durable
    /// commit). For network ingest, which nobody was promised: a crash can
    /// lose only changes that sync fetches again (DESIGN.md decision 6).
    pub fn ingest_buffered(
        &mut self,
        certs: &[DeviceCert],
        changes: Vec<SignedChange>,
    ) -> Result<IngestReport, StoreError> {
        unatomic(self.ingest_inner(certs, changes, false, false))
    }

    /// Makes every buffered ingest and every local change durable in redb
    /// (a checkpoint), and empties the journal. Cheap when there is none.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.unflushed {
            // An empty durable commit persists every earlier non-durable one.
            self.db.begin_write()?.commit()?;
            self.unflushed = false;
        }
        self.journal.clear()?;
        Ok(())
    }

    /// Makes every local change durable: syncs the journal, and checkpoints
    /// once it has grown past [`CHECKPOINT_BYTES`]. What a node calls before
    /// it acknowledges an action of a session (see `begin_session`).
    pub fn sync_local(&mut self) -> Result<(), StoreError> {
        self.journal.sync()?;
        if self.journal.bytes() > CHECKPOINT_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn ingest_inner(
        &mut self,
        certs: &[DeviceCert],
        changes: Vec<SignedChange>,
        atomic: bool,
        durable: bool,
    ) -> Result<IngestReport, ImportError> {
        let mut known: HashMap<DeviceId, IdentityId> = HashMap::new();
        {
            let txn = self.db.begin_read().map_err(StoreError::from)?;
            let devices = txn.open_table(DEVICES).map_err(StoreError::from)?;
            let lookup = |d: &DeviceId| -> Result<Option<IdentityId>, StoreError> {
                Ok(devices
                    .get(&d.0)?
                    .map(|v| stored_cert(v.value()))
                    .transpose()?
                    .map(|c| c.identity))
            };
            for cert in certs {
                match lookup(&cert.device)? {
                    Some(id) if id != cert.identity => {
                        if atomic {
                            return Err(ImportError::CertificateConflict {
                                device: cert.device.to_string(),
                            });
                        }
                    }
                    _ => {
                        known.entry(cert.device).or_insert(cert.identity);
                    }
                }
            }
            for change in &changes {
                if !known.contains_key(&change.device)
                    && let Some(id) = lookup(&change.device)?
                {
                    known.insert(change.device, id);
                }
            }
        }
        let docs_of: Vec<DocId> = changes.iter().map(|c| c.doc).collect();
        let results = verify_batch_parallel(
            changes,
            &|d: &DeviceId| known.get(d).copied(),
            self.verify_threads,
        );
        let mut report = IngestReport::default();
        let mut by_doc: BTreeMap<DocId, Vec<(usize, Verified<SignedChange>)>> = BTreeMap::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(v) => by_doc.entry(v.doc()).or_default().push((i, v)),
                Err(e) if atomic => {
                    return Err(ImportError::Change {
                        index: i,
                        doc: docs_of[i].to_string(),
                        error: e.into(),
                    });
                }
                Err(e) => report.rejected.push((i, e.into())),
            }
        }

        self.sealing_due = true;
        let mut txn = self.db.begin_write().map_err(StoreError::from)?;
        if !durable {
            txn.set_durability(redb::Durability::None)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.unflushed = true;
        }
        let mut changed = Vec::new();
        let outcome = (|| -> Result<(), ImportError> {
            let mut w = Writer::open(&txn)?;
            let signers: std::collections::BTreeSet<DeviceId> = by_doc
                .values()
                .flat_map(|g| g.iter().map(|(_, v)| v.signed().device))
                .collect();
            for cert in certs.iter().filter(|c| signers.contains(&c.device)) {
                certify(&mut w.devices, cert)?;
            }
            // Control documents first: a batch can hold the record that
            // admits a member together with that member's first posts.
            let (control, rest): (Vec<_>, Vec<_>) = by_doc
                .into_iter()
                .partition(|(d, _)| d.kind == kith_core::DocKind::GroupControl);
            for (doc_id, group) in control.into_iter().chain(rest) {
                let rejected_before = report.rejected.len();
                self.ingest_doc(&mut w, doc_id, group, &mut report)?;
                if atomic && report.rejected.len() > rejected_before {
                    let (index, error) = report.rejected.swap_remove(rejected_before);
                    return Err(ImportError::Change {
                        index,
                        doc: doc_id.to_string(),
                        error,
                    });
                }
            }
            changed = std::mem::take(&mut w.changed);
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                if let Err(e) = txn.commit() {
                    self.docs.clear();
                    self.groups.clear();
                    return Err(StoreError::from(e).into());
                }
                self.changed.extend(changed);
                report.rejected.sort_by_key(|(i, _)| *i);
                Ok(report)
            }
            Err(e) => {
                drop(txn);
                self.docs.clear();
                self.groups.clear();
                Err(e)
            }
        }
    }

    fn ingest_doc(
        &mut self,
        w: &mut Writer<'_>,
        doc_id: DocId,
        group: Vec<(usize, Verified<SignedChange>)>,
        report: &mut IngestReport,
    ) -> Result<(), StoreError> {
        let doc_no = w.intern_doc(&doc_id)?;
        // A control document has many authors and no row in the people
        // index, which is all `author_no` serves.
        let author_no = if doc_id.kind == kith_core::DocKind::GroupControl {
            NO_PERSON
        } else {
            w.intern_person(&doc_id.owner)?
        };
        // Checks against what is stored: duplicates and equivocation.
        let mut fresh = Vec::new();
        let mut seen: HashMap<[u8; 12], [u8; 32]> = HashMap::new();
        // Per batch, each actor's number and clock are looked up once. With
        // no change waiting in this document, nothing above an actor's clock
        // is stored, so the common case (new changes) needs no row lookup.
        let mut actors: HashMap<Vec<u8>, (u32, u32)> = HashMap::new();
        let lo = change_key(doc_no, 0, 0);
        let hi = change_key(doc_no, u32::MAX, u32::MAX);
        let any_waiting = w.pending.range::<&[u8; 12]>(&lo..=&hi)?.next().is_some();
        for (i, v) in group {
            let h = v.header();
            let Ok(seq) = u32::try_from(h.seq) else {
                report.rejected.push((i, IngestError::SeqTooLarge(h.seq)));
                continue;
            };
            let (actor_no, clock) = match actors.get(&h.actor) {
                Some(known) => *known,
                None => {
                    let no = w.intern_actor(&h.actor)?;
                    let clock = w
                        .clocks
                        .get(&crate::rows::pair_key(doc_no, no))?
                        .map_or(0, |c| c.value());
                    actors.insert(h.actor.clone(), (no, clock));
                    (no, clock)
                }
            };
            let key = change_key(doc_no, actor_no, seq);
            let surely_new = !any_waiting && seq > clock;
            let stored_hash = match seen.get(&key) {
                Some(hash) => Some(*hash),
                None if surely_new => None,
                None => match w.rows().get(&key)? {
                    Some(row) => {
                        let c = row
                            .get(64..)
                            .map(parse_change)
                            .transpose()
                            .map_err(StoreError::Corrupt)?;
                        c.map(|c| c.hash().0)
                    }
                    None => None,
                },
            };
            match stored_hash {
                Some(hash) if hash == h.hash => report.duplicates += 1,
                Some(_) => {
                    w.quarantine
                        .insert(&h.hash, v.signed().encode().as_slice())?;
                    report.rejected.push((
                        i,
                        IngestError::Equivocation {
                            actor: hex_short(&h.actor),
                            seq: h.seq,
                        },
                    ));
                }
                None => match parse_change(&v.signed().change) {
                    Ok(c) if c.hash().0 == h.hash => {
                        seen.insert(key, h.hash);
                        fresh.push((i, key, actor_no, c, v.signed().signature, v.author()));
                    }
                    Ok(_) => report
                        .rejected
                        .push((i, IngestError::Malformed("hash mismatch".into()))),
                    Err(e) => report.rejected.push((i, IngestError::Malformed(e))),
                },
            }
        }
        let in_group = doc_id.kind == kith_core::DocKind::GroupControl || !doc_id.space.is_public();
        if in_group && !fresh.is_empty() {
            let tagged = fresh
                .into_iter()
                .map(|(i, key, actor_no, c, sig, author)| (i, author, (key, actor_no, sig), c))
                .collect();
            fresh = self
                .admit_group_changes(w, &doc_id, doc_no, tagged, &mut report.rejected)?
                .into_iter()
                .map(|(i, author, (key, actor_no, sig), c)| (i, key, actor_no, c, sig, author))
                .collect();
        }
        if fresh.is_empty() {
            return Ok(());
        }
        if doc_id.kind == kith_core::DocKind::GroupControl {
            self.groups.forget(&doc_id.space);
        }
        let doc = self.docs.get(w.rows(), doc_no)?;
        if docs::apply(doc, fresh.iter().map(|f| f.3.clone()).collect()).is_err() {
            // Find the culprit(s) one change at a time, from a clean reload.
            self.docs.evict(doc_no);
            let mut kept = Vec::new();
            for f in fresh {
                let doc = self.docs.get(w.rows(), doc_no)?;
                match docs::apply(doc, vec![f.3.clone()]) {
                    Ok(()) => {
                        store_rows(w, doc_no, &[(f.2, &f.3, &f.4)])?;
                        kept.push(f);
                    }
                    Err(e) => {
                        self.docs.evict(doc_no);
                        report.rejected.push((f.0, IngestError::Malformed(e)));
                    }
                }
            }
            fresh = kept;
        } else {
            let rows: Vec<_> = fresh.iter().map(|f| (f.2, &f.3, &f.4)).collect();
            store_rows(w, doc_no, &rows)?;
        }
        let doc = self.docs.get(w.rows(), doc_no)?;
        // Which of the new changes, and of those waiting from before, are now applied?
        let mut candidates: Vec<(Option<usize>, [u8; 12], u32, automerge::Change)> = fresh
            .into_iter()
            .map(|(i, key, actor_no, c, ..)| (Some(i), key, actor_no, c))
            .collect();
        let waiting: Vec<[u8; 12]> = w
            .pending
            .range::<&[u8; 12]>(
                &change_key(doc_no, 0, 0)..=&change_key(doc_no, u32::MAX, u32::MAX),
            )?
            .map(|e| e.map(|(k, _)| *k.value()))
            .collect::<Result<_, _>>()?;
        let mut waiting_count = waiting.len();
        // A waiting change can only have become applicable if a new one was
        // applied: otherwise skip re-reading them (this runs on every batch).
        let progressed = candidates
            .iter()
            .any(|(_, _, _, c)| doc.get_change_meta_by_hash(&c.hash()).is_some());
        for key in waiting.into_iter().filter(|_| progressed) {
            let row = w.rows().get(&key)?;
            let Some(row) = row else { continue };
            let c = parse_change(&row[64..]).map_err(StoreError::Corrupt)?;
            candidates.push((None, key, split_change_key(&key).1, c));
        }
        let mut refused_some = false;
        for (index, key, actor_no, change) in candidates {
            let hash: ChangeHash = change.hash();
            if doc.get_change_meta_by_hash(&hash).is_some() {
                // A fresh change was never waiting: skip the lookup.
                if index.is_none() && w.pending.remove(&key)?.is_some() {
                    waiting_count -= 1;
                }
                index_change(
                    w,
                    doc,
                    &Applied {
                        change: &change,
                        doc_no,
                        doc: doc_id,
                        actor_no,
                        author_no,
                    },
                )?;
                report.applied += 1;
            } else if let Some(i) = index {
                if waiting_count >= MAX_PENDING_PER_DOC {
                    // Refuse rather than grow: the sender should sync the
                    // missing history first.
                    w.changes.remove(&key)?;
                    let size = w.doc_sizes.get(doc_no)?.map_or(0, |v| v.value());
                    w.doc_sizes.insert(doc_no, size.saturating_sub(1))?;
                    let (_, _, seq) = split_change_key(&key);
                    let clock_key = crate::rows::pair_key(doc_no, actor_no);
                    if w.clocks.get(&clock_key)?.is_some_and(|c| c.value() >= seq) {
                        w.clocks.insert(&clock_key, seq - 1)?;
                    }
                    report
                        .rejected
                        .push((i, IngestError::TooManyPending(MAX_PENDING_PER_DOC)));
                    refused_some = true;
                } else {
                    w.pending.insert(&key, ())?;
                    waiting_count += 1;
                    report.pending += 1;
                }
            }
        }
        if refused_some {
            // automerge queued the refused changes in memory: reload from the store.
            self.docs.evict(doc_no);
        }
        Ok(())
    }

    /// Everything this store holds, as a portable archive.
    pub fn export(&self) -> Result<Archive, StoreError> {
        let txn = self.db.begin_read()?;
        let mut archive = Archive::default();
        for entry in txn.open_table(DEVICES)?.iter()? {
            let (_, v) = entry?;
            archive.certificates.push(stored_cert(v.value())?);
        }
        let actors = txn.open_table(ACTORS)?;
        let (changes, sealed) = (txn.open_table(CHANGES)?, txn.open_table(SEALED)?);
        let rows = Rows {
            changes: &changes,
            sealed: &sealed,
        };
        for entry in txn.open_table(DOCS)?.iter()? {
            let (doc_no, doc) = entry?;
            let doc_no = doc_no.value();
            let doc = DocId::from_bytes(doc.value())
                .map_err(|_| StoreError::Corrupt(format!("doc {doc_no} has a bad id")))?;
            rows.for_each_in_doc(doc_no, |actor_no, _, row| {
                let actor = actors
                    .get(actor_no)?
                    .map(|a| a.value().to_vec())
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown actor {actor_no}")))?;
                let change = parse_change(&row[64..]).map_err(StoreError::Corrupt)?;
                archive.changes.push(SignedChange {
                    doc,
                    change: change.raw_bytes().to_vec(),
                    device: DeviceId::from_slice(&actor[..32])
                        .ok_or_else(|| StoreError::Corrupt("short actor".into()))?,
                    signature: row[..64].try_into().expect("row has 64 signature bytes"),
                });
                Ok(())
            })?;
        }
        Ok(archive)
    }

    /// Counts of what is stored, for status displays and tests.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let txn = self.db.begin_read()?;
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
        if !self.sealing_due {
            return Ok(0);
        }
        let txn = self.db.begin_write()?;
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
        Ok(self.db.compact()?)
    }

    /// Seals everything, then compacts if more than half of a file of at
    /// least `min_file_bytes` is free space (redb reuses freed pages but
    /// never gives them back). A node does this when it starts. Returns the
    /// file's size before and after, if it compacted.
    pub fn tidy(&mut self, min_file_bytes: u64) -> Result<Option<(u64, u64)>, StoreError> {
        while self.seal(1024)? > 0 {}
        let file_len = || std::fs::metadata(&self.path).map_or(0, |m| m.len());
        let before = file_len();
        let used = {
            let stats = self.db.begin_write()?.stats()?;
            stats.allocated_pages() * stats.page_size() as u64
        };
        if before < min_file_bytes || used * 2 > before {
            return Ok(None);
        }
        self.db.compact()?;
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

/// A non-atomic ingest refuses changes one by one and never fails with an
/// import error; only storage failures remain.
fn unatomic(r: Result<IngestReport, ImportError>) -> Result<IngestReport, StoreError> {
    match r {
        Ok(r) => Ok(r),
        Err(ImportError::Store(e)) => Err(e),
        Err(other) => Err(StoreError::Corrupt(format!(
            "unexpected ingest failure: {other}"
        ))),
    }
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
        w.changes
            .insert(&change_key(doc_no, *actor_no, seq), row.as_slice())?;
        added.entry(*actor_no).or_default().insert(seq);
    }
    let size = w.doc_sizes.get(doc_no)?.map_or(0, |v| v.value());
    w.doc_sizes.insert(doc_no, size + rows.len() as u32)?;
    // Advance each actor's clock over every sequence number now stored
    // without a gap (rows stored earlier, waiting, may close the gap too).
    for (actor_no, seqs) in added {
        let clock_key = crate::rows::pair_key(doc_no, actor_no);
        let clock = w.clocks.get(&clock_key)?.map_or(0, |v| v.value());
        let mut top = clock;
        while seqs.contains(&(top + 1))
            || w.changes
                .get(&change_key(doc_no, actor_no, top + 1))?
                .is_some()
        {
            top += 1;
        }
        if top != clock {
            w.clocks.insert(&clock_key, top)?;
        }
    }
    Ok(())
}

fn hex_short(actor: &[u8]) -> String {
    actor
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        + "…"
}
