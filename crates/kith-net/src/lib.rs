//! kith-net: kith's libp2p layer. One task owns the swarm (TCP + noise +
//! yamux, identify, ping, mDNS, gossipsub, the `/kith/sync/1`
//! request-response protocol and connection limits); the node talks to it
//! through a bounded command channel and hears from it through a bounded
//! event channel. A device key is also the device's libp2p identity, so the
//! peer a node talks to is the device whose certificate and signatures it
//! checks.
//!
//! ```
//! let device = kith_core::DeviceKey::generate().unwrap();
//! let keypair = kith_net::keypair(&device);
//! assert_eq!(kith_net::peer_id(&device.id()), keypair.public().to_peer_id());
//! ```

pub mod address;
mod behaviour;
mod codec;
mod dht;
mod lan;
mod observed;
mod reach;
mod task;

pub use behaviour::{
    Behaviour, BehaviourEvent, BuildError, MAX_GOSSIP_BYTES, MAX_GROUP_TOPICS, MAX_PROBE_BYTES,
    NetConfig, PROBE_TOPIC, PUBLIC_TOPIC, build_swarm,
};
pub use codec::SYNC_PROTOCOL;
pub use lan::{LAN_TARGET, MAX_LAN_DIALS};
pub use libp2p::metrics::{Metrics, Registry};
pub use libp2p::{Multiaddr, PeerId};
pub use reach::MAX_RELAYS;
pub use task::run;

use kith_core::gossip::Verdict;
use kith_core::sync::{Request, Response};
use kith_core::{DeviceId, DeviceKey};
use libp2p::identity::{Keypair, PublicKey, ed25519};

/// Capacity of the command channel into the network task.
pub const COMMAND_CAPACITY: usize = 4096;
/// Capacity of the event channel out of the network task.
pub const EVENT_CAPACITY: usize = 4096;

/// What the node asks the network task to do.
#[derive(Debug)]
pub enum Command {
    /// Dial an address once.
    Dial(Multiaddr),
    /// Dial a device at any of these addresses (one dial, tried in turn:
    /// separate dials would be refused while the first is under way).
    DialDevice {
        device: DeviceId,
        addrs: Vec<Multiaddr>,
    },
    /// Keep a connection to this address, redialling with backoff.
    Remember(Multiaddr),
    /// Stop redialling an address given by `Remember` (a connection open
    /// now stays open).
    Forget(Multiaddr),
    /// Publish bytes on a gossip topic (the public one, or a group's this
    /// node is on).
    Publish { topic: String, data: Vec<u8> },
    /// Join a group's gossip topic (at most [`MAX_GROUP_TOPICS`] at once).
    Subscribe(String),
    /// Leave a group's gossip topic.
    Unsubscribe(String),
    /// Join the probe topic (see [`PROBE_TOPIC`]).
    SubscribeProbe,
    /// Publish a probe (at most [`MAX_PROBE_BYTES`]).
    Probe(Vec<u8>),
    /// Send a sync request; the answer comes back as an event with `id`.
    Request {
        peer: DeviceId,
        id: u64,
        request: Request,
    },
    /// Answer the peer's sync request `id`.
    Respond { id: u64, response: Response },
    /// Tell gossipsub what to do with the message `message` that `relay`
    /// passed on.
    Validate {
        message: Vec<u8>,
        relay: DeviceId,
        verdict: Verdict,
    },
    /// Close every connection to a device.
    Disconnect(DeviceId),
    /// Report listen addresses and peers.
    Snapshot(tokio::sync::oneshot::Sender<NetSnapshot>),
    /// Publish this node's person record (kith-core's `person`) in the DHT.
    PutPerson { key: Vec<u8>, record: Vec<u8> },
    /// Look a person's record up in the DHT; the answer comes back as
    /// [`Event::PersonFound`] with `id`.
    FindPerson { key: Vec<u8>, id: u64 },
    /// Announce this node in the DHT under each of these keys (its groups'
    /// rendezvous keys, kith-core's `rendezvous`), with the addresses
    /// others reach it at, again whenever those change; keys not listed
    /// any more are no longer announced.
    Provide(Vec<Vec<u8>>),
    /// Find the nodes announced under a key and dial them.
    FindProviders(Vec<u8>),
}

/// How a peer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// On the LAN, by mDNS (one of the two dialled the other; see
    /// [`lan`](crate::LAN_TARGET) for which).
    Mdns,
    /// This node dialled it: an address it was given (`--peer`, a
    /// remembered peer, an invite key).
    Dialed,
    /// It dialled this node, and mDNS has not reported it.
    Inbound,
}

/// What the network task tells the node.
#[derive(Debug)]
pub enum Event {
    Listening(Multiaddr),
    /// An address this node listened on is gone: its interface lost it (a
    /// laptop left a network) or its listener closed.
    NotListening(Multiaddr),
    /// A first connection to a peer; how it was reached is in the task's
    /// table of connections ([`Command::Snapshot`]).
    Connected {
        peer: DeviceId,
    },
    Disconnected {
        peer: DeviceId,
    },
    Request {
        peer: DeviceId,
        id: u64,
        request: Request,
    },
    Response {
        peer: DeviceId,
        id: u64,
        response: Response,
    },
    RequestFailed {
        peer: DeviceId,
        id: u64,
    },
    /// A peer sent bytes that are not a sync message.
    BadMessage {
        peer: DeviceId,
        reason: String,
    },
    /// A probe arrived (already validated and forwarded).
    Probe(Vec<u8>),
    /// The addresses others can reach this node at changed: circuits
    /// through relays, and public addresses.
    Reach(Vec<Multiaddr>),
    /// A lookup ([`Command::FindPerson`]) is over: the newest valid record
    /// the DHT gave, if any, and whether any DHT server answered at all.
    PersonFound {
        id: u64,
        records: Vec<Vec<u8>>,
        answered: bool,
    },
    /// A gossip message to validate (answer with `Validate` carrying
    /// `message`): `relay` passed it on, on the topic called `topic`.
    Gossip {
        message: Vec<u8>,
        relay: DeviceId,
        topic: String,
        data: Vec<u8>,
    },
}

/// The path a connection takes, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// On a private network (a LAN, this machine).
    Lan,
    /// Direct, after hole punching through NATs.
    HolePunched,
    /// Direct across the internet (one side is public).
    Direct,
    /// Through a relay's circuit.
    Relayed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Lan => "lan",
            Kind::HolePunched => "hole-punched",
            Kind::Direct => "direct",
            Kind::Relayed => "relayed",
        }
    }
}

/// A connected peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub device: DeviceId,
    /// Remote addresses of its open connections, the best path first.
    pub addresses: Vec<Multiaddr>,
    pub via: Via,
    /// The best path of its open connections, and that one's address.
    pub kind: Kind,
    pub address: Option<Multiaddr>,
}

/// The network's state, for status displays.
#[derive(Debug, Clone, Default)]
pub struct NetSnapshot {
    pub listen: Vec<Multiaddr>,
    pub peers: Vec<PeerInfo>,
    /// Addresses others can reach this node at: declared, or confirmed by
    /// AutoNAT, or circuits through relays.
    pub external: Vec<Multiaddr>,
    /// Circuit addresses through relays that hold a reservation for it.
    pub relays: Vec<Multiaddr>,
    /// Reachable from the internet without a relay.
    pub public: bool,
}

/// The libp2p keypair of a device.
pub fn keypair(device: &DeviceKey) -> Keypair {
    // `ed25519_from_bytes` zeroes the buffer it is given: hand it a copy.
    let mut secret = device.secret_bytes();
    Keypair::ed25519_from_bytes(&mut secret).expect("a 32-byte ed25519 secret is always valid")
}

/// The libp2p peer id of a device.
pub fn peer_id(device: &DeviceId) -> PeerId {
    let key = ed25519::PublicKey::try_from_bytes(device.as_bytes())
        .expect("device ids are valid ed25519 keys");
    PublicKey::from(key).to_peer_id()
}

/// The device behind a libp2p public key, if it is an ed25519 key.
pub fn device_of(key: &PublicKey) -> Option<DeviceId> {
    key.clone()
        .try_into_ed25519()
        .ok()
        .map(|k| DeviceId(k.to_bytes()))
}

/// The device behind a peer id: ed25519 peer ids embed the public key.
pub fn device_of_peer(peer: &PeerId) -> Option<DeviceId> {
    let mh = peer.as_ref();
    if mh.code() != 0 {
        return None; // not an identity multihash: not an inline ed25519 key
    }
    PublicKey::try_decode_protobuf(mh.digest())
        .ok()
        .as_ref()
        .and_then(device_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_key_is_its_libp2p_identity() {
        let device = DeviceKey::from_secret_bytes(&[9; 32]);
        let kp = keypair(&device);
        assert_eq!(peer_id(&device.id()), kp.public().to_peer_id());
        assert_eq!(device_of(&kp.public()), Some(device.id()));
        assert_eq!(device_of_peer(&peer_id(&device.id())), Some(device.id()));
        // The caller's key is untouched by libp2p zeroing its copy.
        assert_eq!(device.secret_bytes(), [9; 32]);
    }
}
