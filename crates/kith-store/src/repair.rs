//! Checking a store, and rebuilding a damaged one.
//!
//! Every signed change carries its own proof, so a store can always be
//! rebuilt from its changes: [`check`] reads every change of a store and
//! verifies it, and rebuilds the read indexes in a scratch store to compare
//! them with the ones on disk; [`repair`] keeps the damaged file aside
//! (renamed, never rewritten), salvages every change and certificate that
//! can still be read, one document at a time, and ingests them into a new
//! store. What could not be read comes back by sync from the peers that
//! hold it: a node's own documents are among its interests.
//!
//! A repair is restartable. It first writes a marker naming the damaged
//! file, then renames the store aside, builds the new store under a scratch
//! name and renames it into place last. While the marker exists,
//! [`crate::Store::open`] refuses to open (and so to create an empty store
//! over the missing file) and asks for `kith repair` to be run again.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use kith_core::{DeviceCert, DeviceId, DocId, IdentityId, PostId, SignedChange};
use redb::{Database, ReadableDatabase, ReadableTable};

use crate::changelog::Rows;
use crate::docs::parse_change;
use crate::error::{OpenError, StoreError};
use crate::journal::sync_dir;
use crate::tables::*;
use crate::{Counts, Store};

/// Changes ingested into a rebuilt store per transaction.
const REBUILD_BATCH: usize = 4096;

/// What a repair or a check reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Documents read of those listed.
    Reading { done: u64, total: u64 },
    /// Changes ingested into the new or scratch store.
    Rebuilding { done: u64, total: u64 },
}

/// Why a repair could not run; the damaged file stays wherever it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepairError {
    #[error("there is no store at {0} to repair")]
    NoStore(String),
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a repair did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairReport {
    /// Where the damaged file is kept.
    pub damaged_kept_at: String,
    /// Whether redb could open the damaged file at all.
    pub opened: bool,
    /// Documents listed in the damaged file, and those of them that could
    /// not be read (in whole or part).
    pub documents: u64,
    pub unreadable_documents: u64,
    /// Certificates and changes read from the damaged file.
    pub certificates: u64,
    pub changes_salvaged: u64,
    /// Salvaged changes the new store refused (damaged beyond their
    /// checksum, or their certificate lost), and what it holds after.
    pub changes_refused: u64,
    pub counts: Option<Counts>,
}

/// One thing a check found wrong.
pub type Finding = String;

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    pub changes: u64,
    pub documents: u64,
    pub posts: u64,
    /// Everything found wrong; empty for a sound store.
    pub findings: Vec<Finding>,
}

/// The file that marks a repair under way, beside the store.
fn marker(path: &Path) -> PathBuf {
    path.with_extension("repair")
}

/// The damaged file of a repair that did not finish, if one did not.
pub(crate) fn unfinished(path: &Path) -> Option<PathBuf> {
    let named = std::fs::read_to_string(marker(path)).ok()?;
    Some(path.with_file_name(named.trim()))
}

/// The message of a caught panic.
pub fn panic_text(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("the database library failed reading it: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("the database library failed reading it: {s}")
    } else {
        "the database library failed reading it".into()
    }
}

/// Runs `f`, turning a panic (redb may panic on a damaged page) into damage.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(StoreError::Corrupt(format!(
            "{what}: {}",
            panic_text(&panic)
        )))
    })
}

/// What could be read out of a (maybe damaged) redb file.
#[derive(Debug, Default)]
struct Salvage {
    certificates: Vec<DeviceCert>,
    changes: Vec<SignedChange>,
    documents: u64,
    unreadable_documents: u64,
    findings: Vec<Finding>,
}

/// Reads every certificate and every change it can from `db`, one document
/// at a time, so that a damaged page costs only what it holds.
fn salvage(db: &Database, progress: &mut dyn FnMut(Progress)) -> Salvage {
    let mut out = Salvage::default();
    let txn = match guarded("opening a read", || Ok(db.begin_read()?)) {
        Ok(t) => t,
        Err(e) => {
            out.findings.push(e.to_string());
            return out;
        }
    };
    let certs = guarded("the device certificates", || {
        let mut certs = Vec::new();
        for entry in txn.open_table(DEVICES)?.iter()? {
            let (_, v) = entry?;
            certs.push(stored_cert(v.value())?);
        }
        Ok(certs)
    });
    match certs {
        Ok(c) => out.certificates = c,
        Err(e) => out.findings.push(e.to_string()),
    }
    let mut bad_ids = Vec::new();
    let docs = guarded("the list of documents", || {
        let mut docs = Vec::new();
        for entry in txn.open_table(DOCS)?.iter()? {
            let (no, id) = entry?;
            match DocId::from_bytes(id.value()) {
                Ok(id) => docs.push((no.value(), id)),
                Err(_) => bad_ids.push(no.value()),
            }
        }
        Ok(docs)
    });
    for no in bad_ids {
        out.findings
            .push(format!("document number {no} has an unreadable id"));
    }
    let docs = match docs {
        Ok(d) => d,
        Err(e) => {
            out.findings.push(e.to_string());
            return out;
        }
    };
    let actors: HashMap<u32, Vec<u8>> = guarded("the list of actors", || {
        let mut actors = HashMap::new();
        for entry in txn.open_table(ACTORS)?.iter()? {
            let (no, a) = entry?;
            actors.insert(no.value(), a.value().to_vec());
        }
        Ok(actors)
    })
    .unwrap_or_else(|e| {
        out.findings.push(e.to_string());
        HashMap::new()
    });
    out.documents = docs.len() as u64;
    let total = out.documents;
    for (done, (doc_no, doc)) in docs.into_iter().enumerate() {
        progress(Progress::Reading {
            done: done as u64,
            total,
        });
        let mut found = Vec::new();
        let read = guarded(&format!("document {doc}"), || {
            let (changes, sealed) = (txn.open_table(CHANGES)?, txn.open_table(SEALED)?);
            // A store from before bodies has no such table; a damaged one
            // costs the texts it held, not the changes.
            let bodies = txn.open_table(BODIES).ok();
            let mut body_cache = crate::changelog::BlockCache::default();
            let rows = Rows {
                changes: &changes,
                sealed: &sealed,
            };
            rows.for_each_in_doc(doc_no, |actor_no, seq, row| {
                let change = (|| {
                    let actor = actors.get(&actor_no).ok_or("its actor is unknown")?;
                    let device = DeviceId::from_slice(actor.get(..32).ok_or("short actor")?)
                        .ok_or("bad actor")?;
                    let signature = row.get(..64).ok_or("short row")?;
                    let change = parse_change(&row[64..]).map_err(|_| "unreadable")?;
                    Ok::<_, &str>(SignedChange {
                        doc,
                        change: change.raw_bytes().to_vec(),
                        device,
                        signature: signature.try_into().expect("64 bytes"),
                        bodies: bodies
                            .as_ref()
                            .and_then(|bodies| {
                                crate::bodies::BodyRows { bodies, rows }
                                    .of_change(doc_no, actor_no, seq, &mut body_cache)
                                    .ok()
                            })
                            .unwrap_or_default(),
                    })
                })();
                match change {
                    Ok(c) => found.push(c),
                    Err(why) => out.findings.push(format!(
                        "document {doc}: change {seq} of actor {actor_no}: {why}"
                    )),
                }
                Ok(())
            })
        });
        if let Err(e) = read {
            out.unreadable_documents += 1;
            out.findings.push(e.to_string());
        }
        out.changes.append(&mut found);
    }
    out
}

/// Ingests `salvage` into `store` in batches; returns how many were refused.
fn rebuild(
    store: &mut Store,
    salvage: Salvage,
    progress: &mut dyn FnMut(Progress),
) -> Result<(u64, Vec<Finding>), StoreError> {
    let total = salvage.changes.len() as u64;
    let mut refused = 0;
    let mut findings = Vec::new();
    let mut done = 0;
    let mut changes = salvage.changes.into_iter().peekable();
    let certs = salvage.certificates;
    while changes.peek().is_some() {
        let batch: Vec<SignedChange> = changes.by_ref().take(REBUILD_BATCH).collect();
        done += batch.len() as u64;
        let docs: Vec<DocId> = batch.iter().map(|c| c.doc).collect();
        let report = store.ingest_buffered(&certs, batch)?;
        refused += report.rejected.len() as u64;
        for (i, why) in report.rejected {
            findings.push(format!("a change of {} does not verify: {why}", docs[i]));
        }
        progress(Progress::Rebuilding { done, total });
    }
    store.flush()?;
    Ok((refused, findings))
}

/// Rebuilds the damaged store at `path` (see the module documentation).
/// No node may have the store open.
pub fn repair(
    path: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<RepairReport, RepairError> {
    let file_err = |p: &Path| {
        let p = p.display().to_string();
        move |source| RepairError::File { path: p, source }
    };
    let damaged = match unfinished(path) {
        // A repair stopped between writing its marker and renaming the
        // store aside: the store is still in place, and is what to repair.
        Some(d) if !d.exists() && path.exists() => {
            std::fs::rename(path, &d).map_err(file_err(path))?;
            sync_dir(path).map_err(file_err(path))?;
            d
        }
        Some(d) => d,
        None => {
            if !path.exists() {
                return Err(RepairError::NoStore(path.display().to_string()));
            }
            // Refuses while a node holds the store. A read-only open
            // changes nothing in the file, whatever state it is in.
            if let Err(redb::DatabaseError::DatabaseAlreadyOpen) =
                catch_unwind(|| Database::builder().open_read_only(path).map(drop))
                    .unwrap_or(Ok(()))
            {
                return Err(OpenError::InUse {
                    path: path.display().to_string(),
                }
                .into());
            }
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let name = path
                .file_name()
                .map_or_else(|| "kith.redb".into(), |n| n.to_string_lossy().into_owned());
            let damaged = path.with_file_name(format!("{name}.damaged-{secs}"));
            let m = marker(path);
            let named = damaged
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            std::fs::write(&m, named)
                .and_then(|()| std::fs::File::open(&m)?.sync_all())
                .map_err(file_err(&m))?;
            std::fs::rename(path, &damaged).map_err(file_err(path))?;
            sync_dir(path).map_err(file_err(path))?;
            damaged
        }
    };
    // Read from a copy, so the kept file stays as it was found: opening a
    // file redb did not close cleanly rewrites parts of it.
    let scratch = path.with_file_name("kith-repair-copy.redb");
    let building = path.with_file_name("kith-repairing.redb");
    for stale in [&scratch, &building, &building.with_extension("journal")] {
        match std::fs::remove_file(stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_err(stale)(e)),
        }
    }
    let mut report = RepairReport {
        damaged_kept_at: damaged.display().to_string(),
        ..RepairReport::default()
    };
    let salvaged = if damaged.exists() {
        std::fs::copy(&damaged, &scratch).map_err(file_err(&scratch))?;
        let opened = catch_unwind(|| Database::builder().create(&scratch));
        let salvaged = match opened {
            Ok(Ok(db)) => {
                report.opened = true;
                salvage(&db, &mut progress)
            }
            Ok(Err(e)) => Salvage {
                findings: vec![format!("the damaged file does not open: {e}")],
                ..Salvage::default()
            },
            Err(panic) => Salvage {
                findings: vec![format!(
                    "the damaged file does not open: {}",
                    panic_text(&panic)
                )],
                ..Salvage::default()
            },
        };
        let _ = std::fs::remove_file(&scratch);
        salvaged
    } else {
        Salvage::default()
    };
    report.documents = salvaged.documents;
    report.unreadable_documents = salvaged.unreadable_documents;
    report.certificates = salvaged.certificates.len() as u64;
    report.changes_salvaged = salvaged.changes.len() as u64;
    for f in &salvaged.findings {
        tracing::warn!("repair: {f}");
    }
    {
        let mut store = Store::open(&building)?;
        let (refused, _) = rebuild(&mut store, salvaged, &mut progress)?;
        report.changes_refused = refused;
        report.counts = Some(store.counts()?);
    }
    std::fs::rename(&building, path).map_err(file_err(path))?;
    sync_dir(path).map_err(file_err(path))?;
    let _ = std::fs::remove_file(building.with_extension("journal"));
    std::fs::remove_file(marker(path)).map_err(file_err(&marker(path)))?;
    sync_dir(path).map_err(file_err(path))?;
    Ok(report)
}

/// Verifies the store at `path`: redb's checksums (on a copy, since redb's
/// check repairs what it can), every change's signature, hash and
/// certificate, and every index row, by rebuilding the indexes in a
/// scratch store and comparing what they answer. No node may have the
/// store open.
pub fn check(path: &Path, mut progress: impl FnMut(Progress)) -> Result<CheckReport, OpenError> {
    let store = Store::open(path)?;
    let mut report = CheckReport::default();
    let scratch = Scratch::beside(path)?;
    let dir = scratch.0.clone();
    let copy = dir.join("check-copy.redb");
    let copied = std::fs::copy(path, &copy);
    match copied {
        Ok(_) => match catch_unwind(|| {
            let mut db = Database::builder().create(&copy)?;
            db.check_integrity()
        }) {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => report
                .findings
                .push("redb found damaged pages (it could repair them in a copy)".into()),
            Ok(Err(e)) => report.findings.push(format!("redb's check failed: {e}")),
            Err(panic) => report.findings.push(panic_text(&panic)),
        },
        Err(e) => report
            .findings
            .push(format!("could not copy the store to check it: {e}")),
    }
    let _ = std::fs::remove_file(&copy);

    let db = store.db().map_err(OpenError::Store)?;
    let salvaged = salvage(db, &mut progress);
    report.findings.extend(salvaged.findings.iter().cloned());
    report.documents = salvaged.documents;
    report.changes = salvaged.changes.len() as u64;
    let mut certs: HashMap<DeviceId, IdentityId> = HashMap::new();
    for cert in &salvaged.certificates {
        match cert.verify() {
            Ok(()) => {
                certs.insert(cert.device, cert.identity);
            }
            Err(e) => report
                .findings
                .push(format!("the certificate of device {}: {e}", cert.device)),
        }
    }
    for change in &salvaged.changes {
        if let Err(e) = change.clone().verify(&|d: &DeviceId| certs.get(d).copied()) {
            report
                .findings
                .push(format!("a change of {}: {e}", change.doc));
        }
        // Every body kept must be the one whose hash its change holds.
        if !change.bodies.is_empty() {
            let matched = parse_change(&change.change)
                .map(|c| kith_core::schema::match_bodies(&c.decode(), &change.bodies).len());
            if matched.map_or(true, |n| n < change.bodies.len()) {
                report.findings.push(format!(
                    "a post body kept beside a change of {} does not match the hash the change holds",
                    change.doc
                ));
            }
        }
    }

    // The indexes: what a store rebuilt from these changes answers must be
    // what this one answers.
    let rebuilt_path = dir.join("check-rebuilt.redb");
    let mut rebuilt = Store::open(&rebuilt_path)?;
    rebuild(&mut rebuilt, salvaged, &mut progress).map_err(OpenError::Store)?;
    let (mine, theirs) = (store.counts()?, rebuilt.counts()?);
    report.posts = mine.posts;
    for (what, a, b) in [
        ("documents", mine.documents, theirs.documents),
        ("changes", mine.changes, theirs.changes),
        ("posts", mine.posts, theirs.posts),
        ("people", mine.people, theirs.people),
    ] {
        if a != b {
            report.findings.push(format!(
                "the index counts {a} {what} where the changes make {b}"
            ));
        }
    }
    let ids = |s: &Store| -> Result<Vec<PostId>, StoreError> {
        let txn = s.db()?.begin_read()?;
        let mut ids = Vec::new();
        for entry in txn.open_table(POSTS)?.iter()? {
            ids.push(PostId(*entry?.0.value()));
        }
        Ok(ids)
    };
    let mut differing = BTreeMap::new();
    for id in ids(&rebuilt)? {
        let (a, b) = (store.post(&id), rebuilt.post(&id)?);
        match a {
            Ok(a) if a == b => {}
            Ok(_) => {
                differing.insert(id, "differs from what its changes say");
            }
            Err(_) => {
                differing.insert(id, "cannot be read");
            }
        }
    }
    for (id, why) in differing.iter().take(20) {
        report.findings.push(format!("post {id} {why}"));
    }
    if differing.len() > 20 {
        report
            .findings
            .push(format!("… and {} more posts", differing.len() - 20));
    }
    drop(rebuilt);
    Ok(report)
}

/// A scratch directory beside the store (on its disk, not in a small
/// /tmp), removed with everything in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn beside(path: &Path) -> Result<Scratch, OpenError> {
        let dir = path.with_file_name(format!("kith-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| OpenError::Store(StoreError::Io(format!("{}: {e}", dir.display()))))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
