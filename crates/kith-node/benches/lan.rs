//! LAN scale: many real `kith node` processes (release build) on one
//! namespace LAN (`scripts/lan`: one bridge, real multicast, mDNS on; needs
//! root), each following the same few authors.
//!
//! It measures how the LAN forms (time until every node has a peer, nodes
//! left alone), then, for each post of each author, the delay until the
//! post is visible in the API of every follower: the share of (post,
//! follower) pairs delivered within 1 s (target 100%), p50 and p99, and
//! pairs still missing after 5 s. Then connections per node, gossip copies
//! received per delivered post per node (from `/api/metrics`), and mean RSS.
//!
//! Run with `scripts/bench`, or `KITH_BIN=target/release/kith cargo bench
//! -p kith-node --bench lan`. Sizes: `KITH_BENCH_LAN_NODES` (100),
//! `KITH_BENCH_LAN_AUTHORS` (10), `KITH_BENCH_LAN_POSTS` (3 per author).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kith_core::{IdentityId, PostId};
use kith_node::{Call, NodeCall, Reply};

mod support;
use support::{Lan, Node, env, identity, is_root, kith, kith_bin, latest, percentile};

/// A follower that has not seen a post after this long has missed it.
const GIVE_UP: Duration = Duration::from_secs(5);

fn peers(node: &Node) -> usize {
    match node.call(&Call::Node(NodeCall::Status)) {
        Reply::Status(s) => s.peers,
        other => panic!("status: {other:?}"),
    }
}

/// One post by `nodes[author]`: the delay until each follower answers its
/// waiting call (ms), or `None` for a follower that gave up.
fn deliver(
    nodes: &[Node],
    author: usize,
    id: IdentityId,
    text: &str,
    give_up: Duration,
) -> Vec<Option<f64>> {
    let followers: Vec<&Node> = (0..nodes.len())
        .filter(|&i| i != author)
        .map(|i| &nodes[i])
        .collect();
    let seen: Vec<Vec<PostId>> = followers
        .iter()
        .map(|n| latest(n, id).into_iter().collect())
        .collect();
    std::thread::scope(|s| {
        let waiting: Vec<_> = followers
            .iter()
            .zip(seen)
            .map(|(node, seen)| {
                s.spawn(move || {
                    let reply = node.try_call(&Call::Node(NodeCall::WaitFeed {
                        author: id,
                        seen,
                        timeout_ms: give_up.as_millis() as u64,
                    }));
                    (Instant::now(), reply)
                })
            })
            .collect();
        support::wait_until(30, "every follower holds its waiting call", || {
            followers
                .iter()
                .all(|node| match node.call(&Call::Node(NodeCall::Status)) {
                    Reply::Status(s) => s.waiting > 0,
                    _ => false,
                })
        });
        let t0 = Instant::now();
        nodes[author].call(&Call::Post {
            text: text.to_owned(),
            reply_to: None,
            group: None,
        });
        waiting
            .into_iter()
            .map(|h| match h.join().expect("waiting thread") {
                (at, Ok(Reply::Post(_))) => Some((at - t0).as_secs_f64() * 1000.0),
                (_, Ok(other)) => panic!("wait: {other:?}"),
                (_, Err(e)) => {
                    if !e.contains("timed out") {
                        panic!("wait: {e}");
                    }
                    None
                }
            })
            .collect()
    })
}

/// Gossip messages a node's swarm received on the public topic: every
/// copy, and first copies only, from its metrics (gossipsub counts both);
/// `None` if it does not export them.
fn gossip_received(node: &Node) -> Option<(f64, f64)> {
    let (status, text) = node.get("/api/metrics");
    if status != 200 {
        return None;
    }
    let public = format!("hash=\"{}\"", kith_net::PUBLIC_TOPIC);
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(&public))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Some((
        sum("gossipsub_topic_msg_recv_counts_unfiltered_total{"),
        sum("gossipsub_topic_msg_recv_counts_total{"),
    ))
}

fn main() {
    if !is_root() {
        println!("lan: skipped (the namespace LAN needs root)");
        return;
    }
    let bin = kith_bin();
    let n = env("KITH_BENCH_LAN_NODES", 100);
    let authors = env("KITH_BENCH_LAN_AUTHORS", 10).min(n);
    let per_author = env("KITH_BENCH_LAN_POSTS", 3);
    let tmp = tempfile::tempdir().unwrap();
    let homes: Vec<PathBuf> = (0..n).map(|i| tmp.path().join(format!("n{i}"))).collect();
    for (i, h) in homes.iter().enumerate() {
        kith(&bin, h, &["init", "--name", &format!("node{i}")]);
    }
    let ids: Vec<IdentityId> = homes[..authors]
        .iter()
        .map(|h| identity(&bin, h).parse().unwrap())
        .collect();

    let lan = Lan::up(n);
    let t_start = Instant::now();
    let nodes: Vec<Node> = (1..=n)
        .map(|i| {
            let listen = format!("/ip4/{}/tcp/4610", lan.ip(i));
            Node::start_in(
                &bin,
                Some(&lan.netns(i)),
                &homes[i - 1],
                &["--listen", &listen],
            )
        })
        .collect();
    let started = t_start.elapsed();
    // Formation: until every node has a peer, or 60 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    let alone = loop {
        let alone = nodes.iter().filter(|n| peers(n) == 0).count();
        if alone == 0 || Instant::now() > deadline {
            break alone;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let formed = t_start.elapsed();
    for (i, node) in nodes.iter().enumerate() {
        for (a, id) in ids.iter().enumerate() {
            if a != i {
                node.call(&Call::Follow {
                    id: *id,
                    labels: vec![],
                });
            }
        }
    }
    // One post per author first, not counted: every node has seen the
    // follows go out and the gossip mesh has had its first heartbeats.
    for (a, &id) in ids.iter().enumerate() {
        let got = deliver(
            &nodes,
            a,
            id,
            &format!("warm-up from node{a}"),
            Duration::from_secs(30),
        );
        let lost = got.iter().filter(|d| d.is_none()).count();
        if lost > 0 {
            println!("lan: warm-up post of node{a} missed {lost} followers in 30 s");
        }
    }
    let received_before: Vec<Option<(f64, f64)>> = nodes.iter().map(gossip_received).collect();
    let mut delays: Vec<f64> = Vec::new();
    let mut missing = 0usize;
    for k in 0..per_author {
        for (a, &id) in ids.iter().enumerate() {
            for d in deliver(&nodes, a, id, &format!("post {k} from node{a}"), GIVE_UP) {
                match d {
                    Some(ms) => delays.push(ms),
                    None => missing += 1,
                }
            }
        }
    }
    let posts = authors * per_author;
    let pairs = posts * (n - 1);
    delays.sort_by(f64::total_cmp);
    let within = delays.iter().filter(|&&d| d <= 1000.0).count();
    let conns: Vec<usize> = nodes.iter().map(peers).collect();
    let rss: Vec<u64> = nodes.iter().map(Node::rss_kib).collect();
    let copies: Vec<(f64, f64)> = nodes
        .iter()
        .zip(&received_before)
        .filter_map(|(node, before)| {
            let (all, first) = gossip_received(node)?;
            let (all0, first0) = (*before)?;
            Some((all - all0, first - first0))
        })
        .collect();
    println!(
        "lan: {n} nodes started in {:.1} s; every node had a peer after {:.1} s ({alone} alone at 60 s)",
        started.as_secs_f64(),
        formed.as_secs_f64(),
    );
    println!(
        "lan: {n} nodes, {posts} posts, {pairs} (post, follower) pairs: {:.1}% within 1 s (target 100%), p50 {:.1} ms, p99 {:.1} ms, {missing} missing after {} s",
        100.0 * within as f64 / pairs as f64,
        if delays.is_empty() {
            f64::NAN
        } else {
            percentile(&delays, 0.5)
        },
        if delays.is_empty() {
            f64::NAN
        } else {
            percentile(&delays, 0.99)
        },
        GIVE_UP.as_secs(),
    );
    println!(
        "lan: connections per node mean {:.1}, min {}, max {}; mean RSS {:.1} MB",
        conns.iter().sum::<usize>() as f64 / n as f64,
        conns.iter().min().unwrap(),
        conns.iter().max().unwrap(),
        rss.iter().sum::<u64>() as f64 / n as f64 / 1024.0,
    );
    if copies.is_empty() {
        println!("lan: gossip copies per post: not exported by this node");
    } else {
        let all: f64 = copies.iter().map(|c| c.0).sum();
        let first: f64 = copies.iter().map(|c| c.1).sum();
        let per = |x: f64| x / copies.len() as f64 / posts as f64;
        println!(
            "lan: gossip copies received per post per node: {:.2}, of which duplicates {:.2} (first copies {:.2})",
            per(all),
            per(all - first),
            per(first)
        );
    }
    drop(nodes);
    drop(lan);
}
