//! The local service as the sync engine's replica.

use std::collections::BTreeSet;

use std::sync::Arc;

use kith_core::sync::{
    ChangeBatch, Ingested, Refusal, Refused, Replica, ReplicaError, VersionVector,
};
use kith_core::{
    DeviceCert, DeviceId, DeviceKey, DocId, GroupState, IdentityId, SignedChange, SpaceId,
};

use crate::service::Service;

fn err(e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError(e.to_string())
}

impl Replica for Service {
    fn certificate(&self) -> DeviceCert {
        self.keys().cert.clone()
    }

    fn device_key(&self) -> &DeviceKey {
        &self.keys().device
    }

    fn group_states(&self) -> Result<Vec<Arc<GroupState>>, ReplicaError> {
        self.store().groups().map_err(err)
    }

    fn interests(&self) -> Result<BTreeSet<IdentityId>, ReplicaError> {
        let me = self.identity();
        let mut out: BTreeSet<IdentityId> = self
            .store()
            .follows(&me)
            .map_err(err)?
            .into_iter()
            .collect();
        out.insert(me);
        Ok(out)
    }

    fn identity_of(&self, device: &DeviceId) -> Result<Option<IdentityId>, ReplicaError> {
        self.store().identity_of(device).map_err(err)
    }

    fn add_certificate(&mut self, cert: &DeviceCert) -> Result<(), ReplicaError> {
        self.store_mut()
            .add_certificate(cert)
            .map(|_| ())
            .map_err(err)
    }

    fn groups(&self) -> Result<BTreeSet<SpaceId>, ReplicaError> {
        Ok(self
            .my_groups()
            .map_err(|e| ReplicaError(e.to_string()))?
            .into_keys()
            .collect())
    }

    fn versions(
        &self,
        owners: &BTreeSet<IdentityId>,
        profiles: &BTreeSet<IdentityId>,
        groups: &BTreeSet<SpaceId>,
        asker: Option<IdentityId>,
    ) -> Result<Vec<(DocId, VersionVector)>, ReplicaError> {
        self.store()
            .versions(owners, profiles, groups, asker)
            .map_err(err)
    }

    fn admit(
        &mut self,
        group: &SpaceId,
        invite: &[u8; 32],
        proof: &[u8; 64],
        joiner: IdentityId,
        device: DeviceId,
    ) -> Result<(), Refusal> {
        Service::admit(self, group, invite, proof, joiner, device).map_err(Refusal::Join)
    }

    fn version(&self, doc: &DocId) -> Result<VersionVector, ReplicaError> {
        self.store().version(doc).map_err(err)
    }

    fn changes_since(
        &self,
        doc: &DocId,
        have: &VersionVector,
        asker: Option<IdentityId>,
        max_bytes: usize,
    ) -> Result<ChangeBatch, ReplicaError> {
        self.store()
            .changes_since(doc, have, asker, max_bytes)
            .map_err(err)
    }

    fn ingest(
        &mut self,
        certificates: Vec<DeviceCert>,
        changes: Vec<SignedChange>,
    ) -> Result<Ingested, ReplicaError> {
        let report = self
            .store_mut()
            .ingest_buffered(&certificates, changes)
            .map_err(err)?;
        let refused = report
            .rejected
            .into_iter()
            .map(|(index, e)| {
                tracing::debug!(index, error = %e, "refused a change from a peer");
                Refused {
                    index,
                    blames_relay: e.blames_relay(),
                    reason: e.to_string(),
                }
            })
            .collect();
        Ok(Ingested {
            applied: report.applied,
            pending: report.pending,
            refused,
        })
    }

    fn check(&mut self, certificate: &DeviceCert, change: SignedChange) -> Result<(), String> {
        self.store_mut()
            .check(certificate, change)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use automerge::AutoCommit;
    use automerge::transaction::CommitOptions;
    use kith_core::schema::feed;
    use kith_core::{DeviceKey, IdentityKey, SpaceId};

    use super::*;
    use crate::{Home, HomeSource};

    /// One change of `author`'s feed: a post with `text`, made on `doc`.
    fn post(
        doc: &mut AutoCommit,
        key: &str,
        text: &str,
        device: &DeviceKey,
        author: IdentityId,
    ) -> SignedChange {
        let body = feed::create_post(doc, key, text, 1, None).unwrap();
        doc.commit_with(CommitOptions::default().with_time(1));
        let raw = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        let doc_id = DocId::feed(author, SpaceId::PUBLIC, 0);
        let mut signed = SignedChange::sign(doc_id, raw, device, author).unwrap();
        signed.attach_bodies(vec![body]);
        signed.into_inner()
    }

    #[test]
    fn an_equivocation_relayed_by_sync_is_not_held_against_the_relay() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home {
            dir: dir.path().join("home"),
            source: HomeSource::Flag,
        };
        let (mut service, _) = Service::open(&home).unwrap();
        let mallory = IdentityKey::from_secret_bytes(&[7; 32]);
        let device = DeviceKey::from_secret_bytes(&[8; 32]);
        let cert = DeviceCert::issue(&mallory, &device, 1);
        let actor = kith_core::actor_id(&device.id(), &[1; 8]);
        // Two conflicting first changes of one actor: what mallory tells
        // two different peers.
        let told_us = post(
            &mut AutoCommit::new().with_actor(actor.clone()),
            "a",
            "one story",
            &device,
            mallory.id(),
        );
        let told_them = post(
            &mut AutoCommit::new().with_actor(actor),
            "a",
            "another",
            &device,
            mallory.id(),
        );
        assert_eq!(
            service
                .ingest(vec![cert.clone()], vec![told_us])
                .unwrap()
                .relay_faults(),
            0
        );
        // An honest peer relays the other version: not its fault.
        assert_eq!(
            service
                .ingest(vec![cert.clone()], vec![told_them.clone()])
                .unwrap()
                .relay_faults(),
            0
        );
        assert_eq!(
            service.store().counts().unwrap().quarantined,
            1,
            "kept as evidence"
        );
        // A change that fails verification is.
        let mut forged = told_them;
        forged.signature[3] ^= 1;
        assert_eq!(
            service
                .ingest(vec![cert], vec![forged])
                .unwrap()
                .relay_faults(),
            1
        );
    }
}
