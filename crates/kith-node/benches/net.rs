//! Multi-node benchmark: real `kith node` processes (release build) on
//! 127.0.0.1 with mDNS off, driven through their local APIs.
//!
//! - propagation: a post on one node until it is visible in the API of each
//!   of the other nodes (p50, p99), and as a floor, a bare gossipsub probe
//!   between the same node processes, observed through the same API;
//! - catch-up: a fresh node syncing 100,000 posts from 10 authors from one
//!   peer (time, peak RSS of the fresh node);
//! - bytes of one gossiped post versus the post's text.
//!
//! Run with `scripts/bench` (it builds the release binary first), or
//! `KITH_BIN=target/release/kith cargo bench -p kith-node --bench net`.
//! Sizes: `KITH_BENCH_NODES` (10), `KITH_BENCH_POSTS` (200),
//! `KITH_BENCH_AUTHORS` (10), `KITH_BENCH_PER_AUTHOR` (10000); parts:
//! `KITH_BENCH_ONLY` (`wire`, `propagation`, `catch-up`, comma-separated).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use automerge::AutoCommit;
use automerge::transaction::CommitOptions;
use kith_core::schema::feed;
use kith_core::{DeviceCert, DeviceKey, DocId, IdentityKey, SignedChange, SpaceId};
use kith_node::{BenchCall, Call, NodeCall, Reply};

mod support;
use support::*;

fn propagation(bin: &Path, dir: &Path) {
    let n = env("KITH_BENCH_NODES", 10);
    let posts = env("KITH_BENCH_POSTS", 200);
    let homes: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("p{i}"))).collect();
    for (i, h) in homes.iter().enumerate() {
        kith(bin, h, &["init", "--name", &format!("node{i}")]);
    }
    let author = identity(bin, &homes[0]);
    for h in &homes[1..] {
        kith(bin, h, &["follow", &author]);
    }
    let mut nodes = vec![Node::start(bin, &homes[0], &[])];
    for h in &homes[1..] {
        let mut peers = vec![nodes[0].addr.clone()];
        peers.push(nodes.last().unwrap().addr.clone());
        nodes.push(Node::start(bin, h, &peers));
    }
    let author_id: kith_core::IdentityId = author.parse().unwrap();
    // Warm up until gossip meshes have formed: a post reaches everyone.
    let warm = match nodes[0].call(&Call::Post {
        text: "warm-up".into(),
        reply_to: None,
        group: None,
    }) {
        Reply::Post(id) => id,
        other => panic!("{other:?}"),
    };
    wait_until(60, "warm-up post reaches every node", || {
        nodes[1..]
            .iter()
            .all(|f| latest(f, author_id) == Some(warm))
    });
    // One sample: each other node's API holds a waiting call, then node 0
    // acts, and each delay is the time until that node's call answers. Posts
    // and bare gossipsub probes alternate, so both travel between the same
    // processes, through the same API, under the same load.
    let (mut post_delays, mut probe_delays) = (Vec::new(), Vec::new());
    // CPU time per node summed over the samples of each kind: what a post
    // costs the nodes beyond what a probe does.
    let (mut post_cpu, mut probe_cpu) = (vec![0u64; n], vec![0u64; n]);
    let add = |total: &mut Vec<u64>, cpu: Vec<u64>| {
        for (t, c) in total.iter_mut().zip(cpu) {
            *t += c;
        }
    };
    // The author's latest few posts: posts made in one millisecond sort in
    // any order, so "new" means "not among these".
    let mut recent = std::collections::VecDeque::from([warm]);
    for i in 0..posts as u64 {
        let wait = Call::Node(NodeCall::WaitFeed {
            author: author_id,
            seen: recent.iter().copied().collect(),
            timeout_ms: 30_000,
        });
        let mut posted = None;
        let (delays, cpu) = sample(&nodes, &wait, || {
            posted = Some(nodes[0].call(&Call::Post {
                text: format!("propagation {i}"),
                reply_to: None,
                group: None,
            }));
        });
        post_delays.extend(delays);
        add(&mut post_cpu, cpu);
        match posted {
            Some(Reply::Post(id)) => recent.push_front(id),
            other => panic!("{other:?}"),
        }
        recent.truncate(8);
        let nonce = 1_000_000 + i;
        let wait = Call::Node(NodeCall::Bench(BenchCall::WaitProbe {
            nonce,
            timeout_ms: 30_000,
        }));
        let (delays, cpu) = sample(&nodes, &wait, || {
            assert_eq!(
                nodes[0].call(&Call::Node(NodeCall::Bench(BenchCall::Probe { nonce }))),
                Reply::Done
            );
        });
        probe_delays.extend(delays);
        add(&mut probe_cpu, cpu);
    }
    post_delays.sort_by(f64::total_cmp);
    probe_delays.sort_by(f64::total_cmp);
    let (p50, p99) = (
        percentile(&post_delays, 0.5),
        percentile(&post_delays, 0.99),
    );
    println!(
        "propagation: {n} nodes, {posts} posts, {} deliveries: p50 {p50:.2} ms, p99 {p99:.2} ms",
        post_delays.len()
    );
    let (f50, f99) = (
        percentile(&probe_delays, 0.5),
        percentile(&probe_delays, 0.99),
    );
    println!(
        "gossip floor: bare gossipsub probe between the same node processes, through the same API: p50 {f50:.2} ms, p99 {f99:.2} ms"
    );
    println!(
        "propagation / floor: {:.2}× at p50, {:.2}× at p99 (target <= 1.5)",
        p50 / f50,
        p99 / f99
    );
    // Per sample, in µs: the author's, and the mean of the other nodes'.
    let per_sample = |total: &[u64]| {
        let others = total[1..].iter().sum::<u64>() as f64 / (n - 1) as f64;
        (
            total[0] as f64 / posts as f64 / 1000.0,
            others / posts as f64 / 1000.0,
        )
    };
    let ((post_a, post_o), (probe_a, probe_o)) = (per_sample(&post_cpu), per_sample(&probe_cpu));
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "CPU per sample, post vs probe: author {post_a:.0} vs {probe_a:.0} µs, each other node {post_o:.0} vs {probe_o:.0} µs; a post costs {:.2} ms more CPU in all, on {cores} cores",
        ((post_a - probe_a) + (post_o - probe_o) * (n - 1) as f64) / 1000.0
    );
    drop(nodes);
}

/// One sample: each node but the first holds `wait`, then `act` runs. The
/// delays until each answer (ms), and the CPU time each node used from just
/// before `act` until the last answer (ns).
fn sample(nodes: &[Node], wait: &Call, act: impl FnOnce()) -> (Vec<f64>, Vec<u64>) {
    std::thread::scope(|s| {
        let waiting: Vec<_> = nodes[1..]
            .iter()
            .map(|node| {
                s.spawn(move || {
                    let reply = node.call(wait);
                    (Instant::now(), reply)
                })
            })
            .collect();
        wait_until(10, "every node holds the waiting call", || {
            nodes[1..]
                .iter()
                .all(|node| match node.call(&Call::Node(NodeCall::Status)) {
                    Reply::Status(s) => s.waiting > 0,
                    _ => false,
                })
        });
        let cpu_before: Vec<u64> = nodes.iter().map(Node::cpu_ns).collect();
        let t0 = Instant::now();
        act();
        let delays = waiting
            .into_iter()
            .map(|h| {
                let (at, reply) = h.join().expect("waiting thread");
                assert!(matches!(reply, Reply::Post(_) | Reply::Done), "{reply:?}");
                (at - t0).as_secs_f64() * 1000.0
            })
            .collect();
        let cpu = nodes
            .iter()
            .zip(cpu_before)
            .map(|(n, before)| n.cpu_ns().saturating_sub(before))
            .collect();
        (delays, cpu)
    })
}

fn catch_up(bin: &Path, dir: &Path) {
    let authors = env("KITH_BENCH_AUTHORS", 10);
    let per_author = env("KITH_BENCH_PER_AUTHOR", 10_000);
    let total = authors * per_author;
    let t = Instant::now();
    let archive = corpus(authors, per_author);
    let authors_ids: Vec<String> = archive
        .certificates
        .iter()
        .map(|c| c.identity.to_string())
        .collect();
    let file = dir.join("corpus.kith");
    std::fs::write(&file, archive.encode()).unwrap();
    let source = dir.join("source");
    kith(bin, &source, &["init", "--name", "source"]);
    for a in &authors_ids {
        kith(bin, &source, &["follow", a]);
    }
    kith(bin, &source, &["import", file.to_str().unwrap()]);
    println!(
        "catch-up setup: {total} posts from {authors} authors prepared in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let fresh = dir.join("fresh");
    kith(bin, &fresh, &["init", "--name", "fresh"]);
    for a in &authors_ids {
        kith(bin, &fresh, &["follow", a]);
    }
    let source_node = Node::start(bin, &source, &[]);
    let t0 = Instant::now();
    let fresh_node = Node::start(bin, &fresh, std::slice::from_ref(&source_node.addr));
    wait_until(600, "the fresh node holds every post", || match fresh_node
        .call(&Call::Node(NodeCall::Status))
    {
        Reply::Status(s) => s.counts.posts as usize >= total,
        _ => false,
    });
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "catch-up: fresh node synced {total} posts from {authors} authors from one peer in {secs:.2} s ({:.0} posts/s), peak RSS {} MiB",
        total as f64 / secs,
        fresh_node.peak_rss_kib() / 1024
    );
    let _ = &fresh_node.home;
}

fn wire_bytes() {
    let identity = IdentityKey::from_secret_bytes(&[1; 32]);
    let device = DeviceKey::from_secret_bytes(&[2; 32]);
    let cert = DeviceCert::issue(&identity, &device, 1);
    let mut doc = AutoCommit::new().with_actor(kith_core::actor_id(&device.id(), &[3; 8]));
    for (i, len) in [20usize, 280, 1000].into_iter().enumerate() {
        let text: String = "kith is one identity for every relationship "
            .chars()
            .cycle()
            .take(len)
            .collect();
        let body = feed::create_post(&mut doc, &format!("w{i}"), &text, 1, None).unwrap();
        doc.commit_with(CommitOptions::default().with_time(1));
        let change = doc.get_last_local_change().unwrap();
        let doc_id = DocId::feed(identity.id(), SpaceId::PUBLIC, 0);
        let mut signed =
            SignedChange::sign(doc_id, change.raw_bytes().to_vec(), &device, identity.id())
                .unwrap();
        signed.attach_bodies(vec![body]);
        let payload = kith_core::gossip::GossipChange {
            change: signed.signed().clone(),
            certificate: cert.clone(),
        }
        .encode()
        .len();
        println!(
            "wire: a {len}-character post is a {payload}-byte gossip payload ({} bytes of change, {} of certificate); gossipsub adds its own envelope (topic, sequence number, publisher key and signature)",
            signed.signed().change.len(),
            cert.encode().len()
        );
    }
}

/// Bytes sent and received over the TCP connections whose local port is
/// `port`, from the kernel's counters (`ss -ti`): what really crossed the
/// wire, noise, yamux and gossipsub framing included (TCP/IP headers not).
fn tcp_bytes(port: u16) -> (u64, u64) {
    let out = Command::new("ss")
        .args([
            "-tinH",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .expect("ss (iproute2) is needed for the wire measurement");
    assert!(out.status.success(), "ss failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> u64 {
        let values: Vec<u64> = text
            .split_whitespace()
            .filter_map(|t| t.strip_prefix(name))
            .filter_map(|v| v.parse::<u64>().ok())
            .collect();
        assert!(
            !values.is_empty(),
            "no connection on port {port} reports {name}: {text}"
        );
        values.iter().sum()
    };
    (field("bytes_acked:"), field("bytes_received:"))
}

/// Live posts between two nodes on loopback: the bytes on the author's
/// connection per post, less what the same connection carries while idle
/// for as long.
fn wire_on_loopback(bin: &Path, dir: &Path) {
    const POSTS: usize = 100;
    let (a_home, b_home) = (dir.join("wire-a"), dir.join("wire-b"));
    kith(bin, &a_home, &["init", "--name", "author"]);
    kith(bin, &b_home, &["init", "--name", "follower"]);
    let author = identity(bin, &a_home);
    kith(bin, &b_home, &["follow", &author]);
    let a = Node::start(bin, &a_home, &[]);
    let b = Node::start(bin, &b_home, std::slice::from_ref(&a.addr));
    let author: kith_core::IdentityId = author.parse().unwrap();
    let port: u16 = a.addr.rsplit('/').next().unwrap().parse().unwrap();
    let text: String = "kith is one identity for every relationship, with no owner. "
        .chars()
        .cycle()
        .take(280)
        .collect();
    let mut recent = std::collections::VecDeque::new();
    let post_and_wait = |recent: &mut std::collections::VecDeque<kith_core::PostId>| {
        let Reply::Post(id) = a.call(&Call::Post {
            text: text.clone(),
            reply_to: None,
            group: None,
        }) else {
            panic!("post refused")
        };
        let seen = b.call(&Call::Node(NodeCall::WaitFeed {
            author,
            seen: recent.iter().copied().collect(),
            timeout_ms: 30_000,
        }));
        assert_eq!(seen, Reply::Post(id));
        recent.push_front(id);
        recent.truncate(8);
    };
    post_and_wait(&mut recent); // The mesh has formed once one post got through.
    let before = tcp_bytes(port);
    let started = Instant::now();
    for _ in 0..POSTS {
        post_and_wait(&mut recent);
    }
    let took = started.elapsed();
    let after = tcp_bytes(port);
    // Not a wait for anything: the idle stretch whose traffic (pings, the
    // versions exchange every 10 s) is subtracted, long enough to hold a
    // few of each, and scaled to the time the posts took.
    let quiet_for = took.max(Duration::from_secs(25));
    std::thread::sleep(quiet_for);
    let idle = tcp_bytes(port);
    let per_post = |pick: fn((u64, u64)) -> u64| {
        let busy = pick(after).saturating_sub(pick(before)) as f64;
        let quiet = pick(idle).saturating_sub(pick(after)) as f64 * took.as_secs_f64()
            / quiet_for.as_secs_f64();
        (busy - quiet).max(0.0) / POSTS as f64
    };
    println!(
        "wire: live on loopback, {POSTS} posts of 280 characters to one follower: {:.0} bytes sent and {:.0} received by the author's node per post (noise, yamux and gossipsub framing included; idle traffic subtracted)",
        per_post(|c| c.0),
        per_post(|c| c.1),
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bin = kith_bin();
    let dir = tempfile::tempdir().unwrap();
    // `KITH_BENCH_ONLY=propagation,catch-up` runs some parts (all by default).
    let only = std::env::var("KITH_BENCH_ONLY").unwrap_or_default();
    let runs = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    if runs("wire") {
        wire_bytes();
        wire_on_loopback(&bin, dir.path());
    }
    if runs("propagation") {
        propagation(&bin, dir.path());
    }
    if runs("catch-up") {
        catch_up(&bin, dir.path());
    }
}
