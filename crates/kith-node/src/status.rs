//! What `kith status` and `kith peers` show of a running node.

use kith_core::{DeviceId, IdentityId};
use serde::{Deserialize, Serialize};

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    pub device: DeviceId,
    /// The identity the peer proved with its device certificate.
    pub identity: Option<IdentityId>,
    pub name: Option<String>,
    pub addresses: Vec<String>,
    /// How it was found: `mdns`, `dialed` or `inbound`.
    pub via: String,
}

/// Catch-up progress with one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncView {
    pub peer: DeviceId,
    pub expected: u64,
    pub received: u64,
    pub docs_left: usize,
}

/// The node at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub identity: IdentityId,
    pub device: DeviceId,
    pub name: Option<String>,
    /// Addresses the node listens on.
    pub listen: Vec<String>,
    /// The local API address.
    pub api: String,
    pub peers: usize,
    pub counts: kith_store::Counts,
    /// Whether documents are being fetched from any peer.
    pub syncing: bool,
    /// API calls waiting for an arrival (`WaitFeed`, `WaitProbe`).
    pub waiting: usize,
    pub sync: Vec<SyncView>,
}
