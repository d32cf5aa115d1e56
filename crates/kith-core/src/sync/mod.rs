//! Catch-up sync: the `/kith/sync/1` messages and the IO-free engine that
//! drives them (DESIGN.md decision 7).
//!
//! Peers compare per-document *version vectors* (the highest gap-free
//! sequence number per actor) and exchange only the signed changes one side
//! lacks. Within one actor, change `seq` depends on `seq - 1`, so a version
//! vector names a set of changes exactly and no automerge document has to be
//! loaded to compare two replicas. The engine takes inputs (a peer connected,
//! a message arrived, the clock ticked) and returns outputs (send, respond,
//! disconnect); `kith-net` does the sockets, and tests drive the engine with
//! simulated peers and a simulated clock.

mod engine;
mod message;
mod refusal;
mod replica;

/// Size limits of sync messages.
pub mod message_limits {
    pub use super::message::{
        MAX_CLOCK_ENTRIES, MAX_DOCS, MAX_OWNERS, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
    };
}

use std::collections::BTreeMap;

pub use engine::{
    Engine, EngineConfig, Input, JOIN_RETRY_MS, MAX_JOINING, MessageRef, Output, PeerProgress, Sent,
};
pub use message::{DecodeError, Request, Response};
pub use refusal::{MAX_REASON_CHARS, Refusal};
pub use replica::{Ingested, Refused, Replica, ReplicaError};

use crate::{DeviceCert, SignedChange};

/// A document's version vector: actor id → highest gap-free sequence number.
pub type VersionVector = BTreeMap<Vec<u8>, u32>;

/// Changes of one document for a peer, oldest first, and whether more remain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeBatch {
    pub changes: Vec<SignedChange>,
    /// The certificates of every device that signed a change in the batch.
    pub certificates: Vec<DeviceCert>,
    pub more: bool,
}

/// How many changes of `have` the holder of `theirs` could send: the sum over
/// actors of how far they are ahead.
pub fn missing(have: &VersionVector, theirs: &VersionVector) -> u64 {
    theirs
        .iter()
        .map(|(actor, seq)| u64::from(seq.saturating_sub(have.get(actor).copied().unwrap_or(0))))
        .sum()
}
