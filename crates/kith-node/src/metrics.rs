//! What `GET /api/metrics` serves, in the OpenMetrics text format that
//! Prometheus scrapes. libp2p's own metrics (connections, identify, ping,
//! gossipsub per topic including duplicates, Kademlia, relay service,
//! hole punching) share one registry with kith's: gossip checked by verdict
//! and published, peers by connection kind, reservations held on relays,
//! catch-up progress and the store's size. The gauges are set when scraped,
//! from the node's status, so they cost nothing between scrapes.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::status::{PeerView, Status};

/// The content type of [`NodeMetrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// kith's metrics; clones share them.
#[derive(Debug, Clone, Default)]
pub struct NodeMetrics {
    gossip_checked: Family<Labels, Counter>,
    gossip_published: Counter,
    peers: Family<Labels, Gauge>,
    relays: Gauge,
    public: Gauge,
    sync_expected: Gauge,
    sync_received: Gauge,
    sync_documents_left: Gauge,
    documents: Gauge,
    changes: Gauge,
    posts: Gauge,
    store_bytes: Gauge,
}

impl NodeMetrics {
    /// Registers kith's metrics (prefixed `kith_`) in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("kith");
        r.register(
            "gossip_checked",
            "Gossip messages checked, by verdict (accept, reject, ignore)",
            self.gossip_checked.clone(),
        );
        r.register(
            "gossip_published",
            "Changes this node published by gossip",
            self.gossip_published.clone(),
        );
        r.register(
            "peers",
            "Connected peers, by connection (lan, direct, hole-punched, relayed)",
            self.peers.clone(),
        );
        r.register(
            "relay_reservations",
            "Relays holding a reservation for this node",
            self.relays.clone(),
        );
        r.register(
            "public",
            "1 if others on the internet can dial this node directly",
            self.public.clone(),
        );
        r.register(
            "sync_expected_changes",
            "Changes peers said they would send in the catch-up under way",
            self.sync_expected.clone(),
        );
        r.register(
            "sync_received_changes",
            "Changes received in the catch-up under way",
            self.sync_received.clone(),
        );
        r.register(
            "sync_documents_left",
            "Documents still to fetch from peers",
            self.sync_documents_left.clone(),
        );
        r.register("documents", "Documents stored", self.documents.clone());
        r.register("changes", "Changes stored", self.changes.clone());
        r.register("posts", "Posts stored", self.posts.clone());
        r.register(
            "store_bytes",
            "Size of the store file",
            self.store_bytes.clone(),
        );
    }

    /// A gossip message was checked.
    pub fn checked(&self, verdict: kith_core::gossip::Verdict) {
        let v = match verdict {
            kith_core::gossip::Verdict::Accept => "accept",
            kith_core::gossip::Verdict::Reject => "reject",
            kith_core::gossip::Verdict::Ignore => "ignore",
        };
        self.gossip_checked
            .get_or_create(&vec![("verdict", v.to_owned())])
            .inc();
    }

    /// A change went out by gossip.
    pub fn published(&self) {
        self.gossip_published.inc();
    }

    /// Sets the gauges from the node's status and peers.
    pub fn observe(&self, status: &Status, peers: &[PeerView]) {
        for kind in ["lan", "direct", "hole-punched", "relayed"] {
            let n = peers.iter().filter(|p| p.connection == kind).count();
            self.peers
                .get_or_create(&vec![("connection", kind.to_owned())])
                .set(n as i64);
        }
        self.relays.set(status.reach.relays.len() as i64);
        self.public.set(i64::from(status.reach.public));
        let sum = |f: fn(&crate::status::SyncView) -> u64| -> i64 {
            status.sync.iter().map(f).sum::<u64>() as i64
        };
        self.sync_expected.set(sum(|s| s.expected));
        self.sync_received.set(sum(|s| s.received));
        self.sync_documents_left.set(sum(|s| s.docs_left as u64));
        self.documents.set(status.counts.documents as i64);
        self.changes.set(status.counts.changes as i64);
        self.posts.set(status.counts.posts as i64);
        self.store_bytes.set(status.store_bytes as i64);
    }
}

/// The registry, shared by the network task (which records into its
/// metrics) and the API (which encodes it).
pub type SharedRegistry = Arc<Registry>;

/// The registry's text.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}
