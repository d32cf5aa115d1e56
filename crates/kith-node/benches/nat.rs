//! Beyond the LAN, measured: real `kith node` processes (release build) on
//! the simulated internet of `scripts/nat` (NAT routers in network
//! namespaces, a public segment 203.0.113.0/24 with an always-on relay;
//! needs root, iptables and conntrack).
//!
//! - **Follow → first post**: a fresh bob behind NAT B follows alice, behind
//!   NAT A, by her id alone; the time until her earlier post is in bob's
//!   API (DHT lookup, dial through the relay, catch-up). Both NATs
//!   endpoint-independent, so the first post comes over the relay and hole
//!   punching follows.
//! - **Hole punching**: for alice's NAT of each type (`eim`
//!   endpoint-independent, `remap` endpoint-independent with ports remapped,
//!   `sym` symmetric; bob's is always `eim`) and each transport (TCP, QUIC:
//!   the nodes listen on that one only), the share of trials in which the
//!   relayed connection becomes hole-punched within [`PUNCH_WAIT`], and the
//!   time from the relayed connection to the punched one. Every trial uses
//!   fresh identities and fresh ports, so no NAT mapping carries over.
//! - **Propagation**: after each trial, the delay from a post of alice's to
//!   its arrival at bob, over the punched connection or over the relay.
//!
//! Run with `KITH_BIN=target/release/kith cargo bench -p kith-node --bench
//! nat` as root. Sizes: `KITH_BENCH_NAT_TRIALS` (20, follow → first post),
//! `KITH_BENCH_PUNCH_TRIALS` (50 per NAT type and transport),
//! `KITH_BENCH_NAT_POSTS` (3 a trial); `KITH_BENCH_NAT_ONLY` (`follow`,
//! `punch`, comma-separated).

use std::path::Path;
use std::time::{Duration, Instant};

use kith_core::IdentityId;
use kith_node::{Call, NodeCall, Reply};
use kith_tests::nat::Nat;

mod support;
use support::{Node, env, is_root, kith_bin, kith_in, percentile};

/// A relayed connection not punched by then counts as a failed punch
/// (DCUtR makes its three attempts within a few seconds on these links).
const PUNCH_WAIT: Duration = Duration::from_secs(8);

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Tcp,
    Quic,
}

impl Transport {
    fn listen(self, port: u16) -> String {
        match self {
            Transport::Tcp => format!("/ip4/0.0.0.0/tcp/{port}"),
            Transport::Quic => format!("/ip4/0.0.0.0/udp/{port}/quic-v1"),
        }
    }

    fn at(self, ip: &str, port: u16) -> String {
        match self {
            Transport::Tcp => format!("/ip4/{ip}/tcp/{port}"),
            Transport::Quic => format!("/ip4/{ip}/udp/{port}/quic-v1"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "quic",
        }
    }
}

/// The simulated internet with its relay, public on TCP and QUIC port 4001.
struct World {
    nat: Nat,
    /// Kept running while the world is.
    _relay: Node,
    dir: tempfile::TempDir,
    next: u16,
}

impl World {
    fn up(bin: &Path, alice_nat: &str) -> World {
        let nat = Nat::up(&[
            "pub:relay",
            &format!("lan:a:{alice_nat}:alice"),
            "lan:b:eim:bob",
        ]);
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("relay");
        let ns = nat.netns("relay");
        kith_in(bin, Some(&ns), &home, &["init", "--name", "relay"]);
        let ip = nat.ip("relay");
        let (tcp, quic) = (Transport::Tcp.at(&ip, 4001), Transport::Quic.at(&ip, 4001));
        let relay = Node::start_in(
            bin,
            Some(&ns),
            &home,
            // Listening on TCP, a node listens on QUIC at the same port.
            &[
                "--listen",
                &tcp,
                "--public-addr",
                &tcp,
                "--public-addr",
                &quic,
            ],
        );
        World {
            nat,
            _relay: relay,
            dir,
            next: 4100,
        }
    }

    /// A fresh node of `host` (`alice` or `bob`) on a port not used before,
    /// over `transport`, starting from the relay.
    fn node(&mut self, bin: &Path, host: &str, transport: Transport) -> Node {
        self.next += 1;
        let port = self.next;
        let home = self.dir.path().join(format!("{host}{port}"));
        let ns = self.nat.netns(host);
        kith_in(bin, Some(&ns), &home, &["init", "--name", host]);
        let bootstrap = transport.at(&self.nat.ip("relay"), 4001);
        Node::start_in(
            bin,
            Some(&ns),
            &home,
            &[
                "--listen",
                &transport.listen(port),
                "--bootstrap",
                &bootstrap,
            ],
        )
    }
}

fn status(node: &Node) -> kith_node::Status {
    match node.call(&Call::Node(NodeCall::Status)) {
        Reply::Status(s) => s,
        other => panic!("status: {other:?}"),
    }
}

/// Waits until `node` holds a relay reservation; its circuit address.
fn circuit(node: &Node) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(node);
        if let Some(relay) = s.reach.relays.first() {
            let peer = kith_net::peer_id(&s.device);
            return format!("{relay}/p2p/{peer}");
        }
        assert!(Instant::now() < deadline, "no relay reservation in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How `node` is connected to `who`, if it is.
fn connection(node: &Node, who: &IdentityId) -> Option<String> {
    match node.call(&Call::Node(NodeCall::Peers)) {
        Reply::Peers(peers) => peers
            .into_iter()
            .find(|p| p.identity.as_ref() == Some(who))
            .map(|p| p.connection),
        other => panic!("peers: {other:?}"),
    }
}

/// Posts by `author` until each is in `follower`'s API: the delays in ms.
fn propagation(author: &Node, follower: &Node, id: IdentityId, posts: usize) -> Vec<f64> {
    (0..posts)
        .filter_map(|i| {
            let seen: Vec<_> = support::latest(follower, id).into_iter().collect();
            std::thread::scope(|s| {
                let waiting = s.spawn(|| {
                    let reply = follower.try_call(&Call::Node(NodeCall::WaitFeed {
                        author: id,
                        seen,
                        timeout_ms: 10_000,
                    }));
                    (Instant::now(), reply)
                });
                support::wait_until(30, "bob holds his waiting call", || {
                    status(follower).waiting > 0
                });
                let t0 = Instant::now();
                author.call(&Call::Post {
                    text: format!("across the NATs, {i}"),
                    reply_to: None,
                    group: None,
                });
                match waiting.join().unwrap() {
                    (at, Ok(Reply::Post(_))) => Some((at - t0).as_secs_f64() * 1000.0),
                    _ => None,
                }
            })
        })
        .collect()
}

fn summary(label: &str, mut ms: Vec<f64>) {
    if ms.is_empty() {
        println!("{label}: no sample");
        return;
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "{label}: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms (n = {})",
        percentile(&ms, 0.5),
        percentile(&ms, 0.9),
        percentile(&ms, 0.99),
        ms.len()
    );
}

fn follow_to_first_post(bin: &Path) {
    let trials = env("KITH_BENCH_NAT_TRIALS", 20);
    let mut world = World::up(bin, "eim");
    let alice = world.node(bin, "alice", Transport::Tcp);
    circuit(&alice);
    let alice_id = status(&alice).identity;
    alice.call(&Call::Post {
        text: "written before anyone followed".into(),
        reply_to: None,
        group: None,
    });
    let mut times = Vec::new();
    let mut missed = 0;
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for _ in 0..trials {
        let bob = world.node(bin, "bob", Transport::Tcp);
        circuit(&bob);
        let t0 = Instant::now();
        bob.call(&Call::Follow {
            id: alice_id,
            labels: vec![],
        });
        match bob.try_call(&Call::Node(NodeCall::WaitFeed {
            author: alice_id,
            seen: vec![],
            timeout_ms: 60_000,
        })) {
            Ok(Reply::Post(_)) => {
                times.push(t0.elapsed().as_secs_f64() * 1000.0);
                let kind = connection(&bob, &alice_id).unwrap_or_else(|| "gone".into());
                *kinds.entry(kind).or_default() += 1;
            }
            _ => missed += 1,
        }
    }
    println!("connection to alice when her post arrived: {kinds:?}");
    summary(
        &format!("follow -> first post, two EIM NATs, via the relay ({missed} missed in 60 s)"),
        times,
    );
}

fn punching(bin: &Path) {
    let trials = env("KITH_BENCH_PUNCH_TRIALS", 50);
    let posts = env("KITH_BENCH_NAT_POSTS", 3);
    for alice_nat in ["eim", "remap", "sym"] {
        for transport in [Transport::Tcp, Transport::Quic] {
            // A relay of its own: the relay allows 60 reservations from one
            // address in a burst, and each router is one address.
            let mut world = World::up(bin, alice_nat);
            let mut punched = 0;
            let mut to_direct = Vec::new();
            let mut direct_ms = Vec::new();
            let mut relayed_ms = Vec::new();
            for _ in 0..trials {
                let alice = world.node(bin, "alice", transport);
                let bob = world.node(bin, "bob", transport);
                let address = circuit(&alice);
                let alice_id = status(&alice).identity;
                bob.call(&Call::Follow {
                    id: alice_id,
                    labels: vec![],
                });
                bob.call(&Call::AddPeer { address });
                let deadline = Instant::now() + Duration::from_secs(60);
                while connection(&bob, &alice_id).is_none() {
                    assert!(Instant::now() < deadline, "bob never reached alice");
                    std::thread::sleep(Duration::from_millis(10));
                }
                let relayed_at = Instant::now();
                let is_punched = loop {
                    if connection(&bob, &alice_id).as_deref() == Some("hole-punched") {
                        break true;
                    }
                    if relayed_at.elapsed() > PUNCH_WAIT {
                        break false;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                };
                if is_punched {
                    punched += 1;
                    to_direct.push(relayed_at.elapsed().as_secs_f64() * 1000.0);
                    direct_ms.extend(propagation(&alice, &bob, alice_id, posts));
                } else {
                    relayed_ms.extend(propagation(&alice, &bob, alice_id, posts));
                }
            }
            let label = format!("alice behind {alice_nat}, {}", transport.name());
            println!(
                "hole punching, {label}: {punched} of {trials} punched ({:.0}%)",
                100.0 * punched as f64 / trials as f64
            );
            summary(
                &format!("  time from relayed to punched, {label}"),
                to_direct,
            );
            summary(
                &format!("  propagation over the punched connection, {label}"),
                direct_ms,
            );
            summary(
                &format!("  propagation over the relay, {label}"),
                relayed_ms,
            );
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !is_root() {
        println!("nat bench: needs root (network namespaces); skipped");
        return;
    }
    let bin = kith_bin();
    let only = std::env::var("KITH_BENCH_NAT_ONLY").unwrap_or_default();
    let wants = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    if wants("follow") {
        follow_to_first_post(&bin);
    }
    if wants("punch") {
        punching(&bin);
    }
}
