//! Changes from elsewhere (the network, an archive, a relay): checked,
//! applied and indexed in one transaction, each refused change reported
//! with its reason.

use std::collections::{BTreeMap, HashMap};

use automerge::ChangeHash;
use kith_core::{
    DeviceCert, DeviceId, DocId, IdentityId, SignedChange, Verified, VerifyError,
    verify_batch_parallel,
};
use redb::{ReadableDatabase, ReadableTable};

use super::write::{self, Target};
use super::{IngestReport, MAX_PENDING_PER_DOC, NO_PERSON, Store};
use crate::docs::{self, parse_change};
use crate::error::{ImportError, IngestError, StoreError};
use crate::rows::{change_key, split_change_key};
use crate::tables::*;
use crate::tx::Writer;

impl Store {
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

    /// Verifies a change as [`Store::ingest_with`] would, and keeps nothing
    /// of it: for gossip this node only passes on. The stored certificate of
    /// the change's device wins over `cert` (already verified), and device
    /// keys come from the same cache as ingest's.
    pub fn check(&mut self, cert: &DeviceCert, change: SignedChange) -> Result<(), VerifyError> {
        let identity = self
            .identity_of(&change.device)
            .ok()
            .flatten()
            .unwrap_or(cert.identity);
        let signer = change.device;
        let certs = move |d: &DeviceId| (*d == signer).then_some(identity);
        verify_batch_parallel(vec![change], &certs, 1, &mut self.device_keys)
            .pop()
            .expect("one result per change")
            .map(|_| ())
    }

    /// Checks and applies changes: `atomic`, all or nothing (an import);
    /// otherwise each on its own merits. `durable` commits to disk at once.
    pub(crate) fn ingest_inner(
        &mut self,
        certs: &[DeviceCert],
        changes: Vec<SignedChange>,
        atomic: bool,
        durable: bool,
    ) -> Result<IngestReport, ImportError> {
        self.heal()?;
        let result = self.ingest_unhealed(certs, changes, atomic, durable);
        self.note(result)
    }

    fn ingest_unhealed(
        &mut self,
        certs: &[DeviceCert],
        changes: Vec<SignedChange>,
        atomic: bool,
        durable: bool,
    ) -> Result<IngestReport, ImportError> {
        self.ensure_space()?;
        let mut known: HashMap<DeviceId, IdentityId> = HashMap::new();
        {
            let txn = self.db()?.begin_read().map_err(StoreError::from)?;
            let devices = txn.open_table(DEVICES).map_err(StoreError::from)?;
            let lookup = |d: &DeviceId| -> Result<Option<IdentityId>, StoreError> {
                Ok(devices
                    .get(&d.0)?
                    .map(|v| stored_cert(v.value()))
                    .transpose()?
                    .map(|c| c.identity))
            };
            for cert in certs {
                // A certificate conflicts with a stored one or with an
                // earlier one of the batch: an import refuses either, a
                // network ingest keeps the first.
                let earlier = match lookup(&cert.device)? {
                    Some(id) => Some(id),
                    None => known.get(&cert.device).copied(),
                };
                match earlier {
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
            &mut self.device_keys,
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
        let mut txn = self.db()?.begin_write().map_err(StoreError::from)?;
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
                certify(w.devices()?, cert)?;
            }
            // Control documents first: a batch can hold the record that
            // admits a member together with that member's first posts.
            let (control, rest): (Vec<_>, Vec<_>) = by_doc
                .into_iter()
                .partition(|(d, _)| d.kind == kith_core::DocKind::GroupControl);
            for (doc_id, group) in control.into_iter().chain(rest) {
                let rejected_before = report.rejected.len();
                self.ingest_doc(&mut w, doc_id, group, atomic, &mut report)?;
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
                let erased = super::erases(&changed);
                self.changed.extend(changed);
                if erased {
                    // This node's own posts' bodies may be in the journal.
                    self.checkpoint_after_erasure();
                }
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
        atomic: bool,
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
        let any_waiting = w.pending()?.range::<&[u8; 12]>(&lo..=&hi)?.next().is_some();
        // Duplicates that came with bodies: one may bring a body this store
        // lacks (it first had the change from someone without it).
        let mut refills = Vec::new();
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
                        .clocks()?
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
                None => match w.rows()?.get(&key)? {
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
                Some(hash) if hash == h.hash => {
                    report.duplicates += 1;
                    // Most duplicates find their change's body here already:
                    // one lookup, no decoding.
                    if !v.signed().bodies.is_empty()
                        && !crate::bodies::any_of_change(w, doc_no, actor_no, seq)?
                    {
                        refills.push((actor_no, v.into_inner()));
                    }
                }
                Some(_) => {
                    w.quarantine()?
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
                        let author = v.author();
                        let signed = v.into_inner();
                        fresh.push((
                            i,
                            key,
                            (actor_no, signed.bodies),
                            c,
                            signed.signature,
                            author,
                        ));
                    }
                    Ok(_) => report
                        .rejected
                        .push((i, IngestError::Malformed("hash mismatch".into()))),
                    Err(e) => report.rejected.push((i, IngestError::Malformed(e))),
                },
            }
        }
        let target = Target {
            doc: doc_id,
            doc_no,
            author_no,
        };
        let in_group = doc_id.kind == kith_core::DocKind::GroupControl || !doc_id.space.is_public();
        if in_group && !fresh.is_empty() {
            let tagged = fresh
                .into_iter()
                .map(|(i, key, actor_no, c, sig, author)| (i, author, (key, actor_no, sig), c))
                .collect();
            let admitted = self.admit(w, &doc_id, doc_no, tagged)?;
            report.rejected.extend(
                admitted
                    .refused
                    .into_iter()
                    .map(|(i, why)| (i, why.into_ingest_error(&doc_id.space))),
            );
            fresh = admitted
                .kept
                .into_iter()
                .map(|(i, author, (key, actor_no, sig), c)| (i, key, actor_no, c, sig, author))
                .collect();
        }
        if !refills.is_empty() {
            self.refill_bodies(w, doc_no, refills)?;
        }
        if fresh.is_empty() {
            return Ok(());
        }
        if doc_id.kind == kith_core::DocKind::GroupControl {
            self.groups.forget(&doc_id.space);
        }
        let doc = self.docs.get(w.rows()?, doc_no)?;
        if docs::apply(doc, fresh.iter().map(|f| f.3.clone()).collect()).is_err() {
            // Find the culprit(s) one change at a time, from a clean reload.
            self.docs.evict(doc_no);
            let mut kept = Vec::new();
            for f in fresh {
                let doc = self.docs.get(w.rows()?, doc_no)?;
                match docs::apply(doc, vec![f.3.clone()]) {
                    Ok(()) => {
                        write::keep(w, doc_no, &[(f.2.0, &f.3, &f.4)])?;
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
            let rows: Vec<_> = fresh.iter().map(|f| (f.2.0, &f.3, &f.4)).collect();
            write::keep(w, doc_no, &rows)?;
        }
        let doc = self.docs.get(w.rows()?, doc_no)?;
        // Which of the new changes, and of those waiting from before, are now applied?
        type Candidate = (
            Option<usize>,
            [u8; 12],
            u32,
            automerge::Change,
            Vec<Vec<u8>>,
        );
        let mut candidates: Vec<Candidate> = fresh
            .into_iter()
            .map(|(i, key, (actor_no, bodies), c, ..)| (Some(i), key, actor_no, c, bodies))
            .collect();
        let waiting: Vec<[u8; 12]> = w
            .pending()?
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
            .any(|(_, _, _, c, _)| doc.get_change_meta_by_hash(&c.hash()).is_some());
        for key in waiting.into_iter().filter(|_| progressed) {
            let row = w.rows()?.get(&key)?;
            let Some(row) = row else { continue };
            let c = parse_change(&row[64..]).map_err(StoreError::Corrupt)?;
            // Its bodies were kept when it arrived.
            candidates.push((None, key, split_change_key(&key).1, c, Vec::new()));
        }
        let mut refused_some = false;
        // An archive with a body its change does not name has been
        // altered: an import refuses it whole.
        let unbound = |matched: usize, bodies: &[Vec<u8>]| atomic && matched < bodies.len();
        for (index, key, actor_no, change, bodies) in candidates {
            let hash: ChangeHash = change.hash();
            if doc.get_change_meta_by_hash(&hash).is_some() {
                // A fresh change was never waiting: skip the lookup.
                if index.is_none() && w.pending()?.remove(&key)?.is_some() {
                    waiting_count -= 1;
                }
                // The index keeps its bodies: those of live posts.
                let matched = write::index(w, doc, target, actor_no, &change, &bodies)?;
                if let Some(i) = index.filter(|_| unbound(matched, &bodies)) {
                    let extra = bodies.len() - matched;
                    report.rejected.push((i, IngestError::UnboundBodies(extra)));
                    return Ok(());
                }
                report.applied += 1;
            } else if let Some(i) = index {
                if waiting_count >= MAX_PENDING_PER_DOC {
                    // Refuse rather than grow: the sender should sync the
                    // missing history first.
                    w.changes()?.remove(&key)?;
                    let (_, _, seq) = split_change_key(&key);
                    crate::bodies::erase_change(w, doc_no, actor_no, seq)?;
                    let size = w.doc_sizes()?.get(doc_no)?.map_or(0, |v| v.value());
                    w.doc_sizes()?.insert(doc_no, size.saturating_sub(1))?;
                    let clock_key = crate::rows::pair_key(doc_no, actor_no);
                    if w.clocks()?
                        .get(&clock_key)?
                        .is_some_and(|c| c.value() >= seq)
                    {
                        w.clocks()?.insert(&clock_key, seq - 1)?;
                    }
                    report
                        .rejected
                        .push((i, IngestError::TooManyPending(MAX_PENDING_PER_DOC)));
                    refused_some = true;
                } else {
                    w.pending()?.insert(&key, ())?;
                    waiting_count += 1;
                    report.pending += 1;
                    // Kept now, while they are at hand; the index drops
                    // them when the change applies, should the post be
                    // deleted by then.
                    let kept = crate::bodies::keep(w, doc_no, actor_no, &change, &bodies)?;
                    if unbound(kept, &bodies) {
                        let extra = bodies.len() - kept;
                        report.rejected.push((i, IngestError::UnboundBodies(extra)));
                        return Ok(());
                    }
                }
            }
        }
        if refused_some {
            // automerge queued the refused changes in memory: reload from the store.
            self.docs.evict(doc_no);
        }
        Ok(())
    }

    /// Keeps the bodies that came with changes already stored, where this
    /// store lacks them and the post is not deleted. Changes still waiting
    /// for their dependencies are skipped: they bring their bodies again.
    fn refill_bodies(
        &mut self,
        w: &mut Writer<'_>,
        doc_no: u32,
        refills: Vec<(u32, SignedChange)>,
    ) -> Result<(), StoreError> {
        let doc = self.docs.get(w.rows()?, doc_no)?;
        for (actor_no, signed) in refills {
            let change = parse_change(&signed.change).map_err(StoreError::Corrupt)?;
            if doc.get_change_meta_by_hash(&change.hash()).is_none() {
                continue;
            }
            let expanded = change.decode();
            let touched = kith_core::schema::touched(doc, &expanded);
            for (counter, bytes) in kith_core::schema::match_bodies(&expanded, &signed.bodies) {
                let text = crate::rows::TextRef {
                    actor_no,
                    seq: expanded.seq as u32,
                    counter,
                };
                let live = touched
                    .text_puts
                    .iter()
                    .find(|p| p.counter == counter)
                    .and_then(|p| kith_core::schema::feed::post_state(doc, &p.post_key))
                    .is_some_and(|s| !s.deleted);
                if live && !crate::bodies::has(w, doc_no, text)? {
                    crate::bodies::put(w, doc_no, text, &bytes)?;
                }
            }
        }
        Ok(())
    }
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

fn hex_short(actor: &[u8]) -> String {
    actor
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        + "…"
}
