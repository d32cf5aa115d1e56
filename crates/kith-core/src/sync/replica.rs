//! What the engine needs from the local store.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{ChangeBatch, VersionVector};
use crate::{
    DeviceCert, DeviceId, DeviceKey, DocId, GroupState, IdentityId, SignedChange, SpaceId,
};

/// A failure inside the replica; the engine logs it and goes on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ReplicaError(pub String);

/// What the engine needs from the local store.
pub trait Replica {
    /// This device's certificate, handed to peers that say hello and sent
    /// with every change this device gossips.
    fn certificate(&self) -> DeviceCert;
    /// This device's key: it opens the group keys sealed to the device.
    fn device_key(&self) -> &DeviceKey;
    /// The states of the groups this replica holds the logs of.
    fn group_states(&self) -> Result<Vec<Arc<GroupState>>, ReplicaError>;
    /// Identities whose documents this node wants: itself and whom it follows.
    fn interests(&self) -> Result<BTreeSet<IdentityId>, ReplicaError>;
    /// Groups this node's identity is a member of.
    fn groups(&self) -> Result<BTreeSet<SpaceId>, ReplicaError>;
    /// The identity that certified `device`, if known.
    fn identity_of(&self, device: &DeviceId) -> Result<Option<IdentityId>, ReplicaError>;
    /// Records a verified certificate.
    fn add_certificate(&mut self, cert: &DeviceCert) -> Result<(), ReplicaError>;
    /// Version vectors of the documents of `owners` (and the profiles of
    /// `profiles`) that `asker` may receive.
    fn versions(
        &self,
        owners: &BTreeSet<IdentityId>,
        profiles: &BTreeSet<IdentityId>,
        groups: &BTreeSet<SpaceId>,
        asker: Option<IdentityId>,
    ) -> Result<Vec<(DocId, VersionVector)>, ReplicaError>;
    /// Admits `joiner`, asking from `device`, to `group` if `proof` shows
    /// it holds the secret of an open invite: records the join; or says why
    /// not.
    fn admit(
        &mut self,
        group: &SpaceId,
        invite: &[u8; 32],
        proof: &[u8; 64],
        joiner: IdentityId,
        device: DeviceId,
    ) -> Result<(), super::Refusal>;
    /// This replica's version vector of `doc`.
    fn version(&self, doc: &DocId) -> Result<VersionVector, ReplicaError>;
    /// The changes of `doc` beyond `have` that `asker` may receive.
    fn changes_since(
        &self,
        doc: &DocId,
        have: &VersionVector,
        asker: Option<IdentityId>,
        max_bytes: usize,
    ) -> Result<ChangeBatch, ReplicaError>;
    /// Verifies and applies changes, keeping the certificates of devices
    /// whose changes pass (`certificates` are already verified).
    fn ingest(
        &mut self,
        certificates: Vec<DeviceCert>,
        changes: Vec<SignedChange>,
    ) -> Result<Ingested, ReplicaError>;
    /// Verifies a change without keeping anything of it, with the same
    /// checks (and the same key cache) as [`Replica::ingest`]. The device's
    /// certificate already held wins over `certificate` (verified).
    fn check(&mut self, certificate: &DeviceCert, change: SignedChange) -> Result<(), String>;
}

/// What became of a batch of changes given to [`Replica::ingest`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Changes applied (earlier waiting ones included).
    pub applied: usize,
    /// Changes stored but waiting for others they depend on.
    pub pending: usize,
    /// Changes refused, in batch order.
    pub refused: Vec<Refused>,
}

impl Ingested {
    /// Refusals that are the fault of the peer that passed the changes on.
    pub fn relay_faults(&self) -> usize {
        self.refused.iter().filter(|r| r.blames_relay).count()
    }
}

/// One refused change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its index in the batch.
    pub index: usize,
    /// Whether a peer that passed it on is at fault: not for an
    /// equivocation (its signer's doing: an honest peer may hold one of two
    /// conflicting versions) nor for a group's refusal (a change can arrive
    /// before the record that admitted its author).
    pub blames_relay: bool,
    pub reason: String,
}
