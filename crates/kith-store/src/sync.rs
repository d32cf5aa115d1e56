//! What sync needs from the store: each document's version vector (the
//! highest gap-free sequence number per actor) and the stored changes beyond
//! a peer's vector, in an order that applies without waiting.
//!
//! Comparing version vectors needs no automerge: within one actor, change
//! `seq` depends on `seq - 1`, so "everything up to n" describes a set of
//! changes exactly.

use std::collections::BTreeSet;

use kith_core::sync::{ChangeBatch, VersionVector};
use kith_core::{DeviceCert, DeviceId, DocId, DocKind, IdentityId, SignedChange, SpaceId};
use redb::ReadableDatabase;

use crate::changelog::Rows;
use crate::docs::parse_change;
use crate::error::StoreError;
use crate::rows::{pair_key, split_pair_key};
use crate::store::Store;
use crate::tables::*;

impl Store {
    /// The version vectors of the documents owned by `owners`, of the
    /// profile documents of `profiles` and of the documents of `groups`
    /// (control and members' feeds) that `asker` may receive: public kinds
    /// to anyone, private documents only to their owner's own devices, group
    /// documents only to the group's members.
    pub fn versions(
        &self,
        owners: &BTreeSet<IdentityId>,
        profiles: &BTreeSet<IdentityId>,
        groups: &BTreeSet<SpaceId>,
        asker: Option<IdentityId>,
    ) -> Result<Vec<(DocId, VersionVector)>, StoreError> {
        let mut out = self.versions_of_owners(owners, profiles, asker)?;
        for group in groups {
            out.extend(self.versions_of_group(group, asker)?);
        }
        Ok(out)
    }

    fn versions_of_owners(
        &self,
        owners: &BTreeSet<IdentityId>,
        profiles: &BTreeSet<IdentityId>,
        asker: Option<IdentityId>,
    ) -> Result<Vec<(DocId, VersionVector)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let nos = txn.open_table(DOC_NOS)?;
        let clocks = txn.open_table(CLOCKS)?;
        let actors = txn.open_table(ACTORS)?;
        // Document ids start with kind and owner, so each wanted (kind,
        // owner) is one range of `DOC_NOS`: the cost follows the interests,
        // not the number of documents stored.
        const KINDS: [DocKind; 3] = [DocKind::Feed, DocKind::Profile, DocKind::Private];
        let wanted: BTreeSet<(DocKind, IdentityId)> = owners
            .iter()
            .flat_map(|o| KINDS.iter().map(move |k| (*k, *o)))
            .chain(profiles.iter().map(|o| (DocKind::Profile, *o)))
            .collect();
        let mut out = Vec::new();
        for (kind, owner) in wanted {
            let (lo, hi) = DocId::bounds_of(kind, &owner);
            for entry in nos.range::<&[u8]>(&lo[..]..=&hi[..])? {
                let (k, doc_no) = entry?;
                let Ok(doc) = DocId::from_bytes(k.value()) else {
                    continue;
                };
                if !self.may_receive(&doc, asker)? {
                    continue;
                }
                let vv: VersionVector = clock_entries(&clocks, &actors, doc_no.value())?
                    .into_iter()
                    .map(|(_, actor, seq)| (actor, seq))
                    .collect();
                if !vv.is_empty() {
                    out.push((doc, vv));
                }
            }
        }
        Ok(out)
    }

    /// The stored changes of `doc` that a peer with version vector `have`
    /// lacks, oldest first (sorted by `start_op`, which automerge makes
    /// larger than that of every dependency, so each batch applies in
    /// order), up to about `max_bytes`.
    pub fn changes_since(
        &self,
        doc: &DocId,
        have: &VersionVector,
        asker: Option<IdentityId>,
        max_bytes: usize,
    ) -> Result<ChangeBatch, StoreError> {
        if !self.may_receive(doc, asker)? {
            return Ok(ChangeBatch::default());
        }
        let txn = self.db()?.begin_read()?;
        let nos = txn.open_table(DOC_NOS)?;
        let Some(doc_no) = nos.get(&doc.to_bytes()[..])?.map(|v| v.value()) else {
            return Ok(ChangeBatch::default());
        };
        let clocks = txn.open_table(CLOCKS)?;
        let actors = txn.open_table(ACTORS)?;
        let (changes, sealed) = (txn.open_table(CHANGES)?, txn.open_table(SEALED)?);
        let rows = Rows {
            changes: &changes,
            sealed: &sealed,
        };
        let devices = txn.open_table(DEVICES)?;
        let bodies = txn.open_table(BODIES)?;
        let bodies = crate::bodies::BodyRows {
            bodies: &bodies,
            rows,
        };
        let mut body_cache = crate::changelog::BlockCache::default();
        let mut found = Vec::new();
        for (actor_no, actor, top) in clock_entries(&clocks, &actors, doc_no)? {
            let from = have.get(&actor).copied().unwrap_or(0) + 1;
            if from > top {
                continue;
            }
            let device = DeviceId::from_slice(&actor[..32])
                .ok_or_else(|| StoreError::Corrupt("short actor".into()))?;
            rows.for_each_of_actor(doc_no, actor_no, from, top, |seq, row| {
                let chunk = &row[64..];
                // kith's own header reader is enough to order the batch;
                // rows stored compressed by older versions need automerge.
                let (start_op, raw) = match kith_core::chunk::parse_header(chunk) {
                    Ok(h) => (h.start_op, chunk.to_vec()),
                    Err(_) => {
                        let c = parse_change(chunk).map_err(StoreError::Corrupt)?;
                        (c.start_op().get(), c.raw_bytes().to_vec())
                    }
                };
                found.push((
                    start_op,
                    device,
                    row[..64].try_into().expect("64-byte signature"),
                    raw,
                    bodies.of_change(doc_no, actor_no, seq, &mut body_cache)?,
                ));
                Ok(())
            })?;
        }
        found.sort_by_key(|(start_op, ..)| *start_op);
        let mut batch = ChangeBatch::default();
        let mut bytes = 0;
        let mut signers = BTreeSet::new();
        for (_, device, signature, raw, bodies) in found {
            let size = raw.len() + bodies.iter().map(Vec::len).sum::<usize>();
            if bytes > 0 && bytes + size > max_bytes {
                batch.more = true;
                break;
            }
            bytes += size;
            signers.insert(device);
            batch.changes.push(SignedChange {
                doc: *doc,
                change: raw,
                device,
                signature,
                bodies,
            });
        }
        for device in signers {
            if let Some(v) = devices.get(&device.0)? {
                batch.certificates.push(stored_cert(v.value())?);
            }
        }
        Ok(batch)
    }

    /// This store's version vector of one document (empty if unknown).
    pub fn version(&self, doc: &DocId) -> Result<VersionVector, StoreError> {
        let txn = self.db()?.begin_read()?;
        let nos = txn.open_table(DOC_NOS)?;
        let Some(doc_no) = nos.get(&doc.to_bytes()[..])?.map(|v| v.value()) else {
            return Ok(VersionVector::new());
        };
        let clocks = txn.open_table(CLOCKS)?;
        let actors = txn.open_table(ACTORS)?;
        let vv = clock_entries(&clocks, &actors, doc_no)?
            .into_iter()
            .map(|(_, actor, seq)| (actor, seq))
            .collect();
        Ok(vv)
    }

    /// Whom `who` follows, according to their profile.
    pub fn follows(&self, who: &IdentityId) -> Result<Vec<IdentityId>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let nos = txn.open_table(PERSON_NOS)?;
        let Some(no) = nos.get(&who.0)?.map(|v| v.value()) else {
            return Ok(Vec::new());
        };
        let follows = txn.open_table(FOLLOWS)?;
        let people = txn.open_table(PEOPLE)?;
        let mut out = Vec::new();
        for e in follows.range::<&[u8; 8]>(&pair_key(no, 0)..=&pair_key(no, u32::MAX))? {
            let (k, _) = e?;
            let (_, other) = split_pair_key(k.value());
            if let Some(row) = people
                .get(other)?
                .and_then(|v| crate::rows::PersonRow::decode(v.value()))
            {
                out.push(row.identity);
            }
        }
        Ok(out)
    }

    /// This store's certificate for `device`, if it has one.
    pub fn certificate(&self, device: &DeviceId) -> Result<Option<DeviceCert>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let devices = txn.open_table(DEVICES)?;
        let stored = devices.get(&device.0)?;
        stored.map(|v| stored_cert(v.value())).transpose()
    }
}

/// One document's clock entries: `(actor_no, actor id, highest gap-free seq)`.
pub(crate) fn clock_entries(
    clocks: &impl ClocksTable,
    actors: &impl ActorsTable,
    doc_no: u32,
) -> Result<Vec<(u32, Vec<u8>, u32)>, StoreError> {
    let mut out = Vec::new();
    for c in clocks.range::<&[u8; 8]>(&pair_key(doc_no, 0)..=&pair_key(doc_no, u32::MAX))? {
        let (ck, seq) = c?;
        let (_, actor_no) = split_pair_key(ck.value());
        let actor = actors
            .get(actor_no)?
            .ok_or_else(|| StoreError::Corrupt(format!("actor {actor_no}")))?
            .value()
            .to_vec();
        out.push((actor_no, actor, seq.value()));
    }
    Ok(out)
}

impl Store {
    /// Private documents go only to their owner's devices, group documents
    /// only to members; the rest is public.
    fn may_receive(&self, doc: &DocId, asker: Option<IdentityId>) -> Result<bool, StoreError> {
        Ok(match doc.kind {
            DocKind::Private => asker == Some(doc.owner),
            DocKind::Profile => true,
            DocKind::Feed if doc.space.is_public() => true,
            DocKind::Feed | DocKind::GroupControl => self.is_group_member(doc, asker)?,
        })
    }

    /// The control document and the feeds of every member, present or
    /// former, of `group`, if `asker` is a member.
    fn versions_of_group(
        &self,
        group: &SpaceId,
        asker: Option<IdentityId>,
    ) -> Result<Vec<(DocId, VersionVector)>, StoreError> {
        let Some(state) = self.group(group)? else {
            return Ok(Vec::new());
        };
        if !asker.is_some_and(|a| state.is_member(&a)) {
            return Ok(Vec::new());
        }
        let txn = self.db()?.begin_read()?;
        let nos = txn.open_table(DOC_NOS)?;
        let clocks = txn.open_table(CLOCKS)?;
        let actors = txn.open_table(ACTORS)?;
        let vv_of = |doc_no: u32| -> Result<VersionVector, StoreError> {
            Ok(clock_entries(&clocks, &actors, doc_no)?
                .into_iter()
                .map(|(_, actor, seq)| (actor, seq))
                .collect())
        };
        let mut out = Vec::new();
        let control = DocId::group_control(*group);
        if let Some(no) = nos.get(&control.to_bytes()[..])? {
            out.push((control, vv_of(no.value())?));
        }
        for person in state.members.keys().chain(state.removed.keys()) {
            let (lo, hi) = DocId::bounds_of(DocKind::Feed, person);
            for entry in nos.range::<&[u8]>(&lo[..]..=&hi[..])? {
                let (k, doc_no) = entry?;
                let Ok(doc) = DocId::from_bytes(k.value()) else {
                    continue;
                };
                if doc.space != *group {
                    continue;
                }
                let vv = vv_of(doc_no.value())?;
                if !vv.is_empty() {
                    out.push((doc, vv));
                }
            }
        }
        Ok(out)
    }
}
