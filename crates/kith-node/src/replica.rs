//! The local service as the sync engine's replica.

use std::collections::BTreeSet;

use kith_core::sync::{ChangeBatch, Replica, ReplicaError, VersionVector};
use kith_core::{DeviceCert, DeviceId, DocId, IdentityId, SignedChange};

use crate::service::Service;

fn err(e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError(e.to_string())
}

impl Replica for Service {
    fn certificate(&self) -> DeviceCert {
        self.keys().cert.clone()
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

    fn versions(
        &self,
        owners: &BTreeSet<IdentityId>,
        profiles: &BTreeSet<IdentityId>,
        asker: Option<IdentityId>,
    ) -> Result<Vec<(DocId, VersionVector)>, ReplicaError> {
        self.store().versions(owners, profiles, asker).map_err(err)
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
    ) -> Result<usize, ReplicaError> {
        let report = self
            .store_mut()
            .ingest_buffered(&certificates, changes)
            .map_err(err)?;
        for (i, e) in &report.rejected {
            tracing::debug!(index = i, error = %e, "refused a synced change");
        }
        // Equivocation is its signer's doing, not the relay's: an honest peer
        // may hold one of two conflicting changes (kept as evidence here).
        Ok(report
            .rejected
            .iter()
            .filter(|(_, e)| !matches!(e, kith_store::IngestError::Equivocation { .. }))
            .count())
    }
}
