//! The composed libp2p behaviour of a kith node and the swarm built on it.

use std::time::Duration;

use libp2p::metrics::Registry;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    Multiaddr, StreamProtocol, Swarm, SwarmBuilder, autonat, connection_limits, dcutr, gossipsub,
    identify, identity::Keypair, kad, mdns, noise, ping, relay, request_response, tcp, yamux,
};
use sha2::{Digest, Sha256};

use crate::codec::{SYNC_PROTOCOL, SyncCodec};
use crate::observed::Observed;

// The topics' names and the message limit are protocol: kith-core says them.
pub use kith_core::gossip::{MAX_GOSSIP_BYTES, MAX_GROUP_TOPICS, PUBLIC_TOPIC};

/// A topic for measuring the network itself: a node joins it only when run
/// with `--probe` (benchmarks), and its messages are tiny opaque nonces.
pub const PROBE_TOPIC: &str = "kith/probe/v1";
/// Largest probe message.
pub const MAX_PROBE_BYTES: usize = 64;
/// Messages larger than this are announced to mesh peers with IDONTWANT on
/// arrival (gossipsub v1.2), so that they do not forward a copy back while
/// this node is still checking the change. Every gossiped change (a signed
/// change and a certificate, several hundred bytes) is above it; the
/// library's default, 1000 bytes, let most posts through twice or more.
pub const IDONTWANT_ABOVE_BYTES: usize = 256;
/// How long an unused connection stays open. A social node keeps its peers.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);
/// A sync request not answered in this time fails.
pub const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most concurrent sync streams per connection.
pub const MAX_SYNC_STREAMS: usize = 16;
/// Connection limits: in total, per peer, and pending inbound. Three a
/// peer: a relayed connection, the direct one hole punching makes, and the
/// other side's simultaneous dial (with two, a QUIC punch was refused).
pub const MAX_CONNECTIONS: u32 = 256;
pub const MAX_CONNECTIONS_PER_PEER: u32 = 3;
pub const MAX_PENDING_INCOMING: u32 = 64;
/// How often mDNS asks the LAN who is there (the default is five minutes).
pub const MDNS_QUERY_INTERVAL: Duration = Duration::from_secs(10);

/// kith's own DHT: `/ipfs/kad/1.0.0` would merge it into IPFS's.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/kith/kad/1.0.0");

/// A relay's limits. libp2p's defaults end a circuit after 2 minutes or
/// 128 KiB, which cuts kith's catch-up and gossip; a kith relay keeps a
/// circuit for an hour and 1 GiB. Fairness is per peer: 4 reservations
/// and 4 circuits a peer at once, and libp2p's per-peer and per-IP rate
/// limits on new ones.
pub const RELAY_MAX_RESERVATIONS: usize = 1024;
pub const RELAY_MAX_CIRCUITS: usize = 256;
pub const RELAY_MAX_PER_PEER: usize = 4;
pub const RELAY_CIRCUIT_DURATION: Duration = Duration::from_secs(3600);
pub const RELAY_CIRCUIT_BYTES: u64 = 1 << 30;

/// How a node takes part in the network beyond its LAN.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// Discover and announce peers on the LAN with mDNS.
    pub mdns: bool,
    /// Addresses others on the internet reach this node at (`--public-addr`).
    /// A node with one serves the DHT, answers AutoNAT probes and, with
    /// `relay`, relays for nodes behind NATs.
    pub public: Vec<Multiaddr>,
    /// Relay for others when public.
    pub relay: bool,
}

impl NetConfig {
    pub fn is_public(&self) -> bool {
        !self.public.is_empty()
    }
}

/// Everything a kith node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub gossipsub: gossipsub::Behaviour,
    pub sync: request_response::Behaviour<SyncCodec>,
    pub relay_client: relay::client::Behaviour,
    pub relay: Toggle<relay::Behaviour>,
    pub dcutr: dcutr::Behaviour,
    pub autonat: autonat::v2::client::Behaviour,
    pub autonat_server: Toggle<autonat::v2::server::Behaviour>,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub observed: Observed,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour").finish_non_exhaustive()
    }
}

/// Why the swarm could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("transport: {0}")]
    Transport(String),
    #[error("gossipsub: {0}")]
    Gossipsub(String),
    #[error("mdns: {0}")]
    Mdns(String),
}

/// Builds the swarm of a node whose device key is `keypair`, registering
/// libp2p's metrics in `registry`.
pub fn build_swarm(
    keypair: Keypair,
    config: &NetConfig,
    registry: &mut Registry,
) -> Result<Swarm<Behaviour>, BuildError> {
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .idontwant_message_size_threshold(IDONTWANT_ABOVE_BYTES)
        .heartbeat_interval(Duration::from_millis(700))
        // Content-addressed ids: the same change relayed twice is one message.
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(Sha256::digest(&m.data).to_vec())
        })
        .build()
        .map_err(|e| BuildError::Gossipsub(e.to_string()))?;
    let peer_id = keypair.public().to_peer_id();
    let mdns = if config.mdns {
        let cfg = mdns::Config {
            query_interval: MDNS_QUERY_INTERVAL,
            ..Default::default()
        };
        Some(
            mdns::tokio::Behaviour::new(cfg, peer_id)
                .map_err(|e| BuildError::Mdns(e.to_string()))?,
        )
    } else {
        None
    };
    let dns_config = hickory_resolver::system_conf::read_system_conf().unwrap_or_else(|e| {
        // An offline laptop may have no resolver configured: it still
        // works, with addresses by number.
        tracing::warn!(error = %e, "no DNS configuration (/etc/resolv.conf); addresses naming a host cannot be dialled");
        (
            hickory_resolver::config::ResolverConfig::from_parts(None, vec![], vec![]),
            hickory_resolver::config::ResolverOpts::default(),
        )
    });
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| BuildError::Transport(e.to_string()))?
        .with_quic()
        // `/dns4/…` and `/dns/…` addresses (a bootstrap node by name),
        // resolved with the system's configuration when dialled.
        .with_dns_config(dns_config.0, dns_config.1)
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| BuildError::Transport(e.to_string()))?
        .with_behaviour(|key, relay_client| {
            let mut gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )?
            .with_metrics(
                registry.sub_registry_with_prefix("gossipsub"),
                gossipsub::MetricsConfig::default(),
            );
            let mut score = gossipsub::PeerScoreParams::default();
            score.topics.insert(
                gossipsub::IdentTopic::new(PUBLIC_TOPIC).hash(),
                gossipsub::TopicScoreParams::default(),
            );
            gossipsub.with_peer_score(score, gossipsub::PeerScoreThresholds::default())?;
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established(Some(MAX_CONNECTIONS))
                        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING)),
                ),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/kith/1".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::default(),
                mdns: Toggle::from(mdns),
                gossipsub,
                sync: request_response::Behaviour::new(
                    [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(SYNC_REQUEST_TIMEOUT)
                        .with_max_concurrent_streams(MAX_SYNC_STREAMS),
                ),
                relay_client,
                relay: Toggle::from(
                    (config.is_public() && config.relay)
                        .then(|| relay::Behaviour::new(peer_id, relay_config())),
                ),
                dcutr: dcutr::Behaviour::new(peer_id),
                autonat: autonat::v2::client::Behaviour::default(),
                autonat_server: Toggle::from(
                    config
                        .is_public()
                        .then(autonat::v2::server::Behaviour::default),
                ),
                kad: kademlia(peer_id, config.is_public()),
                observed: Observed::default(),
            })
        })
        .map_err(|e| BuildError::Gossipsub(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

fn relay_config() -> relay::Config {
    relay::Config {
        max_reservations: RELAY_MAX_RESERVATIONS,
        max_reservations_per_peer: RELAY_MAX_PER_PEER,
        max_circuits: RELAY_MAX_CIRCUITS,
        max_circuits_per_peer: RELAY_MAX_PER_PEER,
        max_circuit_duration: RELAY_CIRCUIT_DURATION,
        max_circuit_bytes: RELAY_CIRCUIT_BYTES,
        ..relay::Config::default()
    }
}

/// The DHT. A node behind a NAT stays a client: libp2p would make it a
/// server as soon as a relay confirms its circuit address, and a server
/// others reach only through a relay's circuits slows every lookup.
fn kademlia(peer_id: libp2p::PeerId, public: bool) -> kad::Behaviour<kad::store::MemoryStore> {
    let mut config = kad::Config::new(KAD_PROTOCOL);
    // Records others put are checked before they are kept (see `dht`).
    config.set_record_filtering(kad::StoreInserts::FilterBoth);
    let store = kad::store::MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            max_records: crate::dht::MAX_RECORDS,
            max_value_bytes: kith_core::person::MAX_RECORD_BYTES,
            ..Default::default()
        },
    );
    let mut kad = kad::Behaviour::with_config(peer_id, store, config);
    kad.set_mode(Some(if public {
        kad::Mode::Server
    } else {
        kad::Mode::Client
    }));
    kad
}
