//! The composed libp2p behaviour of a kith node and the swarm built on it.

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    Swarm, SwarmBuilder, connection_limits, gossipsub, identify, identity::Keypair, mdns, noise,
    ping, request_response, tcp, yamux,
};
use sha2::{Digest, Sha256};

use crate::codec::{SYNC_PROTOCOL, SyncCodec};

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
/// Connection limits: in total, per peer, and pending inbound.
pub const MAX_CONNECTIONS: u32 = 256;
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
pub const MAX_PENDING_INCOMING: u32 = 64;
/// How often mDNS asks the LAN who is there (the default is five minutes).
pub const MDNS_QUERY_INTERVAL: Duration = Duration::from_secs(10);

/// Everything a kith node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub gossipsub: gossipsub::Behaviour,
    pub sync: request_response::Behaviour<SyncCodec>,
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

/// Builds the swarm of a node whose device key is `keypair`.
pub fn build_swarm(keypair: Keypair, mdns_on: bool) -> Result<Swarm<Behaviour>, BuildError> {
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
    let mdns = if mdns_on {
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
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| BuildError::Transport(e.to_string()))?
        .with_behaviour(|key| {
            let mut gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )?;
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
            })
        })
        .map_err(|e| BuildError::Gossipsub(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}
