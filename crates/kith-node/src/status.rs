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
    /// How it is connected, by its best connection: `lan`, `direct`,
    /// `hole-punched` or `relayed`.
    pub connection: String,
    /// The remote address of that connection.
    pub address: Option<String>,
}

/// How others reach this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachView {
    /// Others on the internet can dial it directly.
    pub public: bool,
    /// Addresses others can reach it at.
    pub external: Vec<String>,
    /// Circuits through relays that hold a reservation for it.
    pub relays: Vec<String>,
    /// The above in words.
    pub summary: String,
}

impl ReachView {
    fn of(net: &NetSnapshot) -> ReachView {
        use kith_net::Kind;
        let direct: Vec<String> = net
            .external
            .iter()
            .filter(|a| !kith_net::address::is_relayed(a))
            .map(ToString::to_string)
            .collect();
        let relays: Vec<String> = net.relays.iter().map(ToString::to_string).collect();
        let relay_peers: Vec<String> = net
            .relays
            .iter()
            .filter_map(relay_of)
            .map(|p| kith_net::device_of_peer(&p).map_or(p.to_string(), |d| d.short()))
            .collect();
        let internet = net.peers.iter().any(|p| p.kind != Kind::Lan);
        let summary = if net.public {
            format!(
                "public: others on the internet can dial this node at {}",
                if direct.is_empty() {
                    "its declared address".into()
                } else {
                    direct.join(", ")
                }
            )
        } else if !relay_peers.is_empty() {
            format!(
                "behind a NAT: others reach this node through the relay {}",
                relay_peers.join(" and ")
            )
        } else if internet {
            "behind a NAT, and no relay holds a place for it yet: it can dial out, but others cannot reach it".into()
        } else {
            "local network only: no peer on the internet (start with --bootstrap ADDRESS to reach beyond the LAN)".into()
        };
        ReachView {
            public: net.public,
            external: net.external.iter().map(ToString::to_string).collect(),
            relays,
            summary,
        }
    }
}

/// Listen addresses as text, TCP before QUIC (programs that take the first
/// one get the one every kith node speaks).
fn tcp_first(listen: &[Multiaddr]) -> Vec<String> {
    let mut out: Vec<String> = listen.iter().map(ToString::to_string).collect();
    out.sort_by_key(|a| a.contains("/quic"));
    out
}

/// The relay of a circuit address (`…/p2p/<relay>/p2p-circuit`).
fn relay_of(circuit: &Multiaddr) -> Option<kith_net::PeerId> {
    let mut relay = None;
    for p in circuit.iter() {
        match p {
            libp2p::multiaddr::Protocol::P2p(peer) => relay = Some(peer),
            libp2p::multiaddr::Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
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
    /// How others reach this node.
    pub reach: ReachView,
    /// Size of the store file, in bytes.
    pub store_bytes: u64,
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

/// The node at a glance; peers and reach as the network task sees them.
pub(crate) fn status(
    service: &mut Service,
    node: &NodeParts<'_>,
    net: &NetSnapshot,
) -> Result<Status, ActionError> {
    let me = service.whoami()?;
    Ok(Status {
        identity: me.identity,
        device: me.device,
        name: me.name,
        listen: tcp_first(node.listen),
        api: node.api.to_owned(),
        peers: net.peers.len(),
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
        reach: ReachView::of(net),
        store_bytes: std::fs::metadata(service.store().path()).map_or(0, |m| m.len()),
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
                connection: p.kind.as_str().to_owned(),
                address: p.address.as_ref().map(ToString::to_string),
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
