//! What `kith status`, `kith peers` and `kith people --nearby` show of a
//! running node, read from its parts.

use std::collections::{BTreeMap, BTreeSet};

use crate::views::PersonView;
use kith_core::sync::Engine;
use kith_core::{DeviceId, IdentityId};
use kith_net::{Multiaddr, NetSnapshot};
use serde::{Deserialize, Serialize};

use crate::service::{ActionError, Service};

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

/// The parts of a running node a status reads, besides its service.
#[derive(Debug)]
pub(crate) struct NodeParts<'a> {
    pub engine: &'a Engine,
    pub listen: &'a [Multiaddr],
    pub api: &'a str,
    /// Calls parked until something arrives.
    pub waiting: usize,
}

/// The node at a glance; `connected` peers by the network's count.
pub(crate) fn status(
    service: &mut Service,
    node: &NodeParts<'_>,
    connected: usize,
) -> Result<Status, ActionError> {
    let me = service.whoami()?;
    Ok(Status {
        identity: me.identity,
        device: me.device,
        name: me.name,
        listen: node.listen.iter().map(ToString::to_string).collect(),
        api: node.api.to_owned(),
        peers: connected,
        counts: service.store().counts()?,
        syncing: node.engine.is_syncing(),
        waiting: node.waiting,
        sync: node
            .engine
            .progress()
            .filter(|(_, p)| p.expected > 0 || p.docs_left > 0)
            .map(|(peer, p)| SyncView {
                peer,
                expected: p.expected,
                received: p.received,
                docs_left: p.docs_left,
            })
            .collect(),
    })
}

/// The connected peers: how the network reached each, and who the sync
/// engine found it to be.
pub(crate) fn peers(service: &Service, engine: &Engine, net: &NetSnapshot) -> Vec<PeerView> {
    let identities: BTreeMap<DeviceId, Option<IdentityId>> = engine.peers().collect();
    let me = service.identity();
    net.peers
        .iter()
        .map(|p| {
            let identity = identities.get(&p.device).copied().flatten();
            let name = identity
                .and_then(|id| service.store().person(&me, &id).ok().flatten())
                .and_then(|p| p.name);
            PeerView {
                device: p.device,
                identity,
                name,
                addresses: p.addresses.iter().map(ToString::to_string).collect(),
                via: format!("{:?}", p.via).to_lowercase(),
            }
        })
        .collect()
}

/// The people of connected peers (with `label`, those labelled so). One
/// whose profile has not arrived yet is nearby too, nameless, unless a
/// label was asked for: it has none.
pub(crate) fn nearby(
    service: &Service,
    engine: &Engine,
    label: Option<&str>,
) -> Result<Vec<PersonView>, ActionError> {
    let near: BTreeSet<IdentityId> = engine.peers().filter_map(|(_, id)| id).collect();
    let mut people = service.people(label)?;
    people.retain(|p| near.contains(&p.id));
    if label.is_none() {
        let me = service.identity();
        let known: BTreeSet<IdentityId> = people.iter().map(|p| p.id).collect();
        for id in near
            .into_iter()
            .filter(|id| *id != me && !known.contains(id))
        {
            people.push(PersonView::unknown(id));
        }
    }
    Ok(people)
}
