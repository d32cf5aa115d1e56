//! A replica kept in memory: what the engine and the gossip intake need of
//! a store, with the store's rules of verification, dependencies,
//! equivocation and blame, and none of its IO.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::sync::{ChangeBatch, Ingested, Refusal, Refused, Replica, ReplicaError, VersionVector};
use crate::{
    DeviceCert, DeviceId, DeviceKey, DeviceKeys, DocId, DocKind, GroupState, IdentityId,
    SignedChange, SpaceId, verify_batch_parallel,
};

use super::Person;

/// Changes per document: actor → sequence number → (automerge hash, change).
type Actors = BTreeMap<Vec<u8>, BTreeMap<u64, ([u8; 32], SignedChange)>>;

/// One node's documents, in memory.
pub struct MemoryReplica {
    key: DeviceKey,
    cert: DeviceCert,
    certificates: HashMap<DeviceId, DeviceCert>,
    follows: BTreeSet<IdentityId>,
    groups: Vec<Arc<GroupState>>,
    docs: BTreeMap<DocId, Actors>,
    device_keys: DeviceKeys,
    /// The second versions of equivocated changes, kept as evidence.
    pub quarantined: Vec<SignedChange>,
    /// How many times a signature was checked ([`Replica::check`] and
    /// [`Replica::ingest`]): what gossip costs a node.
    pub verifications: u64,
}

impl std::fmt::Debug for MemoryReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplica")
            .field("identity", &self.cert.identity)
            .field("docs", &self.docs.len())
            .finish()
    }
}

impl MemoryReplica {
    /// The replica of `person`'s device.
    pub fn of(person: &Person) -> MemoryReplica {
        let key = DeviceKey::from_secret_bytes(&person.device.secret_bytes());
        let mut certificates = HashMap::new();
        certificates.insert(person.cert.device, person.cert.clone());
        MemoryReplica {
            key,
            cert: person.cert.clone(),
            certificates,
            follows: BTreeSet::new(),
            groups: Vec::new(),
            docs: BTreeMap::new(),
            device_keys: DeviceKeys::default(),
            quarantined: Vec::new(),
            verifications: 0,
        }
    }

    pub fn follow(&mut self, who: IdentityId) {
        self.follows.insert(who);
    }

    /// The groups whose logs this replica holds.
    pub fn set_groups(&mut self, groups: Vec<Arc<GroupState>>) {
        self.groups = groups;
    }

    /// Whether the change is stored (applied or waiting).
    pub fn holds(&self, change: &SignedChange) -> bool {
        self.docs.get(&change.doc).is_some_and(|actors| {
            actors
                .values()
                .any(|seqs| seqs.values().any(|(_, c)| c == change))
        })
    }

    /// Changes stored, over all documents.
    pub fn len(&self) -> usize {
        self.docs
            .values()
            .flat_map(|a| a.values())
            .map(BTreeMap::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores a change this replica's own device made.
    pub fn write(&mut self, change: SignedChange) {
        let ingested = self
            .ingest(vec![self.cert.clone()], vec![change])
            .expect("memory never fails");
        assert!(ingested.refused.is_empty(), "{:?}", ingested.refused);
    }

    fn member_of(&self, group: &SpaceId, who: &IdentityId) -> bool {
        self.groups
            .iter()
            .any(|g| g.id == *group && g.is_member(who))
    }

    /// Whether `asker` may receive `doc`.
    fn may_see(&self, doc: &DocId, asker: Option<IdentityId>) -> bool {
        match doc.kind {
            DocKind::Private => asker == Some(doc.owner),
            DocKind::GroupControl => asker.is_some_and(|a| self.member_of(&doc.space, &a)),
            DocKind::Feed if !doc.space.is_public() => {
                asker.is_some_and(|a| self.member_of(&doc.space, &a))
            }
            DocKind::Feed | DocKind::Profile => true,
        }
    }
}

impl Replica for MemoryReplica {
    fn certificate(&self) -> DeviceCert {
        self.cert.clone()
    }

    fn device_key(&self) -> &DeviceKey {
        &self.key
    }

    fn group_states(&self) -> Result<Vec<Arc<GroupState>>, ReplicaError> {
        Ok(self.groups.clone())
    }

    fn interests(&self) -> Result<BTreeSet<IdentityId>, ReplicaError> {
        let mut out = self.follows.clone();
        out.insert(self.cert.identity);
        Ok(out)
    }

    fn groups(&self) -> Result<BTreeSet<SpaceId>, ReplicaError> {
        Ok(self
            .groups
            .iter()
            .filter(|g| g.is_member(&self.cert.identity))
            .map(|g| g.id)
            .collect())
    }

    fn identity_of(&self, device: &DeviceId) -> Result<Option<IdentityId>, ReplicaError> {
        Ok(self.certificates.get(device).map(|c| c.identity))
    }

    fn add_certificate(&mut self, cert: &DeviceCert) -> Result<(), ReplicaError> {
        cert.verify().map_err(|e| ReplicaError(e.to_string()))?;
        self.certificates.entry(cert.device).or_insert(cert.clone());
        Ok(())
    }

    fn versions(
        &self,
        owners: &BTreeSet<IdentityId>,
        profiles: &BTreeSet<IdentityId>,
        groups: &BTreeSet<SpaceId>,
        asker: Option<IdentityId>,
    ) -> Result<Vec<(DocId, VersionVector)>, ReplicaError> {
        self.docs
            .keys()
            .filter(|d| {
                owners.contains(&d.owner)
                    || (d.kind == DocKind::Profile && profiles.contains(&d.owner))
                    || (!d.space.is_public() && groups.contains(&d.space))
            })
            .filter(|d| self.may_see(d, asker))
            .map(|d| Ok((*d, self.version(d)?)))
            .collect()
    }

    fn admit(
        &mut self,
        _group: &SpaceId,
        _invite: &[u8; 32],
        _proof: &[u8; 64],
        _joiner: IdentityId,
        _device: DeviceId,
    ) -> Result<(), Refusal> {
        Err(Refusal::Join(crate::group::JoinRefusal::UnknownGroup))
    }

    fn version(&self, doc: &DocId) -> Result<VersionVector, ReplicaError> {
        let Some(actors) = self.docs.get(doc) else {
            return Ok(VersionVector::new());
        };
        Ok(actors
            .iter()
            .filter_map(|(actor, seqs)| {
                let gap_free = (1..).take_while(|s| seqs.contains_key(s)).last()?;
                Some((actor.clone(), u32::try_from(gap_free).unwrap_or(u32::MAX)))
            })
            .collect())
    }

    fn changes_since(
        &self,
        doc: &DocId,
        have: &VersionVector,
        asker: Option<IdentityId>,
        max_bytes: usize,
    ) -> Result<ChangeBatch, ReplicaError> {
        let mut batch = ChangeBatch::default();
        if !self.may_see(doc, asker) {
            return Ok(batch);
        }
        let mine = self.version(doc)?;
        let mut bytes = 0;
        for (actor, upto) in &mine {
            let from = have.get(actor).copied().unwrap_or(0);
            for seq in u64::from(from) + 1..=u64::from(*upto) {
                let (_, change) = &self.docs[doc][actor][&seq];
                if bytes + change.change.len() > max_bytes && !batch.changes.is_empty() {
                    batch.more = true;
                    break;
                }
                bytes += change.change.len();
                if let Some(cert) = self.certificates.get(&change.device)
                    && !batch.certificates.contains(cert)
                {
                    batch.certificates.push(cert.clone());
                }
                batch.changes.push(change.clone());
            }
        }
        Ok(batch)
    }

    fn ingest(
        &mut self,
        certificates: Vec<DeviceCert>,
        changes: Vec<SignedChange>,
    ) -> Result<Ingested, ReplicaError> {
        self.verifications += changes.len() as u64;
        let offered: HashMap<DeviceId, IdentityId> = certificates
            .iter()
            .map(|c| (c.device, c.identity))
            .collect();
        let known = &self.certificates;
        let lookup = |d: &DeviceId| {
            known
                .get(d)
                .map(|c| c.identity)
                .or_else(|| offered.get(d).copied())
        };
        let results = verify_batch_parallel(changes, &lookup, 1, &mut self.device_keys);
        let mut ingested = Ingested::default();
        for (index, result) in results.into_iter().enumerate() {
            let verified = match result {
                Ok(v) => v,
                Err(e) => {
                    ingested.refused.push(Refused {
                        index,
                        blames_relay: true,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let doc = verified.doc();
            let device = verified.signed().device;
            if !doc.space.is_public() && !self.member_of(&doc.space, &verified.author()) {
                ingested.refused.push(Refused {
                    index,
                    blames_relay: false,
                    reason: format!("{} is not a member of the group", verified.author()),
                });
                continue;
            }
            let header = verified.header().clone();
            let seqs = self
                .docs
                .entry(doc)
                .or_default()
                .entry(header.actor.clone())
                .or_default();
            match seqs.get(&header.seq) {
                Some((hash, _)) if *hash == header.hash => continue,
                Some(_) => {
                    self.quarantined.push(verified.into_inner());
                    ingested.refused.push(Refused {
                        index,
                        blames_relay: false,
                        reason: "equivocation: two changes with one actor and sequence number"
                            .into(),
                    });
                    continue;
                }
                None => {}
            }
            let waits = header.seq > 1 && !seqs.contains_key(&(header.seq - 1));
            seqs.insert(header.seq, (header.hash, verified.into_inner()));
            if waits {
                ingested.pending += 1;
            } else {
                ingested.applied += 1;
            }
            if let Some(cert) = certificates.iter().find(|c| c.device == device) {
                self.certificates.entry(device).or_insert(cert.clone());
            }
        }
        Ok(ingested)
    }

    fn check(&mut self, certificate: &DeviceCert, change: SignedChange) -> Result<(), String> {
        self.verifications += 1;
        let identity = self
            .certificates
            .get(&change.device)
            .map_or(certificate.identity, |c| c.identity);
        let signer = change.device;
        let lookup = move |d: &DeviceId| (*d == signer).then_some(identity);
        verify_batch_parallel(vec![change], &lookup, 1, &mut self.device_keys)
            .pop()
            .expect("one result per change")
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
