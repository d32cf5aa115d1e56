//! Groups as the store sees them: each group's membership, replayed from its
//! control document and kept until the document changes, and the gate that
//! keeps non-members' changes out of a group's documents.
//!
//! A control change is stored only if its author was a member when it was
//! written (`group::may_write_control`, judged on its causal past, so every
//! replica decides alike). A change of a group feed is stored only if its
//! author is a member now, or a former member within its removal's cutoff.
//! Either refusal is a matter of timing as often as of malice (a post can
//! arrive before the record that admitted its author), so neither counts
//! against the peer that relayed it; sync brings such changes again later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use automerge::Change;
use kith_core::group::{GroupState, may_write_control};
use kith_core::{DocId, DocKind, IdentityId, SpaceId};
use redb::{ReadableDatabase, ReadableTable};

use crate::changelog::Rows;
use crate::docs;
use crate::error::{IngestError, StoreError};
use crate::store::Store;
use crate::tables::*;

/// Replayed group states by group, dropped whenever a control document changes.
#[derive(Debug, Default)]
pub(crate) struct GroupCache(Mutex<HashMap<SpaceId, Arc<GroupState>>>);

impl GroupCache {
    fn get(&self, group: &SpaceId) -> Option<Arc<GroupState>> {
        self.0.lock().expect("never poisoned").get(group).cloned()
    }

    fn put(&self, state: Arc<GroupState>) {
        self.0
            .lock()
            .expect("never poisoned")
            .insert(state.id, state);
    }

    pub fn forget(&mut self, group: &SpaceId) {
        self.0.get_mut().expect("never poisoned").remove(group);
    }

    pub fn clear(&mut self) {
        self.0.get_mut().expect("never poisoned").clear();
    }
}

/// The identity behind an actor, from the stored device certificates.
pub(crate) fn author_of<'a>(
    devices: &'a impl DevicesTable,
) -> impl Fn(&[u8]) -> Option<IdentityId> + 'a {
    move |actor: &[u8]| {
        let device: &[u8; 32] = actor.get(..32)?.try_into().ok()?;
        let cert = devices.get(device).ok()??;
        crate::tables::stored_cert(cert.value())
            .ok()
            .map(|c| c.identity)
    }
}

impl Store {
    /// A group's state, or `None` if this store holds none of its control
    /// document.
    pub fn group(&self, group: &SpaceId) -> Result<Option<Arc<GroupState>>, StoreError> {
        if let Some(state) = self.groups.get(group) {
            return Ok(Some(state));
        }
        let txn = self.db()?.begin_read()?;
        let nos = txn.open_table(DOC_NOS)?;
        let control = DocId::group_control(*group);
        let Some(doc_no) = nos.get(&control.to_bytes()[..])?.map(|v| v.value()) else {
            return Ok(None);
        };
        let (changes, sealed) = (txn.open_table(CHANGES)?, txn.open_table(SEALED)?);
        let rows = Rows {
            changes: &changes,
            sealed: &sealed,
        };
        let mut doc = docs::load(rows, doc_no)?;
        let devices = txn.open_table(DEVICES)?;
        let state = Arc::new(GroupState::replay(
            *group,
            doc.get_changes(&[]),
            author_of(&devices),
        ));
        self.groups.put(state.clone());
        Ok(Some(state))
    }

    /// Every group whose control document this store holds.
    pub fn groups(&self) -> Result<Vec<Arc<GroupState>>, StoreError> {
        let ids: Vec<SpaceId> = {
            let txn = self.db()?.begin_read()?;
            let nos = txn.open_table(DOC_NOS)?;
            let lo = [DocKind::GroupControl as u8];
            let hi = [DocKind::GroupControl as u8 + 1];
            let mut ids = Vec::new();
            for entry in nos.range::<&[u8]>(&lo[..]..&hi[..])? {
                let (k, _) = entry?;
                if let Ok(doc) = DocId::from_bytes(k.value()) {
                    ids.push(doc.space);
                }
            }
            ids
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(state) = self.group(&id)? {
                out.push(state);
            }
        }
        Ok(out)
    }

    /// `who`'s feeds in `group` as this store holds them: per actor, the
    /// highest gap-free sequence number (what a removal's cutoff records).
    pub fn group_feed_clock(
        &self,
        group: &SpaceId,
        who: &IdentityId,
    ) -> Result<Vec<(Vec<u8>, u32)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let nos = txn.open_table(DOC_NOS)?;
        let clocks = txn.open_table(CLOCKS)?;
        let actors = txn.open_table(ACTORS)?;
        let mut out: std::collections::BTreeMap<Vec<u8>, u32> = Default::default();
        let (lo, hi) = DocId::bounds_of(DocKind::Feed, who);
        for entry in nos.range::<&[u8]>(&lo[..]..=&hi[..])? {
            let (k, doc_no) = entry?;
            if DocId::from_bytes(k.value()).is_ok_and(|d| d.space == *group) {
                for (_, actor, seq) in crate::sync::clock_entries(&clocks, &actors, doc_no.value())?
                {
                    let e = out.entry(actor).or_default();
                    *e = (*e).max(seq);
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The devices this store holds certificates of, for each of `who`.
    pub fn devices_of(
        &self,
        who: &std::collections::BTreeSet<IdentityId>,
    ) -> Result<Vec<(IdentityId, kith_core::DeviceId)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let devices = txn.open_table(DEVICES)?;
        let mut out = Vec::new();
        for entry in devices.iter()? {
            let (_, cert) = entry?;
            if let Ok(cert) = crate::tables::stored_cert(cert.value())
                && who.contains(&cert.identity)
            {
                out.push((cert.identity, cert.device));
            }
        }
        Ok(out)
    }

    /// Whether `asker` may receive the group document `doc`: members only.
    pub(crate) fn is_group_member(
        &self,
        doc: &DocId,
        asker: Option<IdentityId>,
    ) -> Result<bool, StoreError> {
        let Some(asker) = asker else { return Ok(false) };
        Ok(self
            .group(&doc.space)?
            .is_some_and(|state| state.is_member(&asker)))
    }

    /// The group state inside a write transaction (the cache, or a replay
    /// of the loaded control document).
    pub(crate) fn group_in(
        &mut self,
        w: &mut crate::tx::Writer<'_>,
        group: &SpaceId,
    ) -> Result<Option<Arc<GroupState>>, StoreError> {
        if let Some(state) = self.groups.get(group) {
            return Ok(Some(state));
        }
        let control = DocId::group_control(*group);
        let Some(doc_no) = w
            .doc_nos()?
            .get(&control.to_bytes()[..])?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let changes = self.docs.get(w.rows()?, doc_no)?.get_changes(&[]);
        let state = Arc::new(GroupState::replay(*group, changes, author_of(w.devices()?)));
        self.groups.put(state.clone());
        Ok(Some(state))
    }

    /// The group gate, for changes made here and changes from elsewhere
    /// alike: keeps, of `fresh` changes to the group document `doc_id`,
    /// those the group's rules let in, and returns the rest with why.
    /// `fresh` holds, per change: its batch index, author, what the caller
    /// carries along, and the change. The document may already hold the
    /// changes (a local commit) or not yet (ingest): each control change
    /// is judged on the log without the fresh ones not yet admitted.
    pub(crate) fn admit<T>(
        &mut self,
        w: &mut crate::tx::Writer<'_>,
        doc_id: &DocId,
        doc_no: u32,
        fresh: Vec<(usize, IdentityId, T, Change)>,
    ) -> Result<Admitted<T>, StoreError> {
        let group = doc_id.space;
        let mut admitted = Admitted {
            kept: Vec::with_capacity(fresh.len()),
            refused: Vec::new(),
        };
        match doc_id.kind {
            DocKind::GroupControl => {
                let candidates: std::collections::HashSet<_> =
                    fresh.iter().map(|f| f.3.hash()).collect();
                let mut known: Vec<Change> = self
                    .docs
                    .get(w.rows()?, doc_no)?
                    .get_changes(&[])
                    .into_iter()
                    .filter(|c| !candidates.contains(&c.hash()))
                    .collect();
                for f in fresh {
                    match may_write_control(group, &known, &f.3, &f.1, author_of(w.devices()?)) {
                        Ok(()) => {
                            known.push(f.3.clone());
                            admitted.kept.push(f);
                        }
                        Err(why) => admitted
                            .refused
                            .push((f.0, GroupRefusal::Control(why.to_string()))),
                    }
                }
            }
            _ => {
                let state = self.group_in(w, &group)?;
                for f in fresh {
                    let seq = u32::try_from(f.3.seq()).unwrap_or(u32::MAX);
                    let actor = f.3.actor_id().to_bytes().to_vec();
                    if state
                        .as_ref()
                        .is_some_and(|s| s.accepts_post(&f.1, &actor, seq))
                    {
                        admitted.kept.push(f);
                    } else {
                        admitted.refused.push((f.0, GroupRefusal::NotMember));
                    }
                }
            }
        }
        Ok(admitted)
    }
}

/// What the group gate let in, and what it refused (by batch index).
pub(crate) struct Admitted<T> {
    pub kept: Vec<(usize, IdentityId, T, Change)>,
    pub refused: Vec<(usize, GroupRefusal)>,
}

/// Why the group gate refused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupRefusal {
    /// A change of a group's feed whose author is not (or no longer) a member.
    NotMember,
    /// A control change its author may not write (`may_write_control`).
    Control(String),
}

impl GroupRefusal {
    /// As ingest reports it.
    pub(crate) fn into_ingest_error(self, group: &SpaceId) -> IngestError {
        let why = match self {
            GroupRefusal::NotMember => "its author is not a member of the group".to_string(),
            GroupRefusal::Control(why) => why,
        };
        IngestError::Group {
            group: group.to_string(),
            why,
        }
    }
}
