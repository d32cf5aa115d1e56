//! Group benchmarks (release):
//!
//! - re-key: an admin removes a member of a group of 100, which starts a new
//!   epoch whose key is sealed to every remaining member's device: the time
//!   of the whole action (checks, sealing, the durable commit) and the bytes
//!   of the signed change that carries it;
//! - join: on a namespace LAN (`scripts/lan`, mDNS on; needs root), from
//!   `kith group join` until the group's history of 10,000 posts is complete
//!   on the joiner's node (the command returns only then), for several
//!   joiners in turn.
//!
//! Run with `scripts/bench`, or `KITH_BIN=target/release/kith cargo bench -p
//! kith-node --bench groups`. Sizes: `KITH_BENCH_GROUP_MEMBERS` (100),
//! `KITH_BENCH_GROUP_POSTS` (10000), `KITH_BENCH_JOINERS` (5).

use std::path::Path;
use std::time::Instant;

use kith_core::archive::Archive;
use kith_core::{DeviceCert, DeviceKey, IdentityKey, InviteKey, Role, SpaceId};
use kith_node::home::{Home, HomeSource};
use kith_node::service::Service;

mod support;
use support::{Lan, Node, env, is_root, kith_bin, kith_in, percentile};

fn home(dir: &Path) -> Home {
    Home {
        dir: dir.to_owned(),
        source: HomeSource::Flag,
    }
}

/// A deterministic 32-byte secret for member `i`'s key of kind `tag`.
fn seed(i: usize, tag: u8) -> [u8; 32] {
    let mut s = [tag; 32];
    s[..8].copy_from_slice(&(i as u64).to_le_bytes());
    s
}

fn rekey() {
    let members = env("KITH_BENCH_GROUP_MEMBERS", 100);
    let removals = 20.min(members - 1);
    let tmp = tempfile::tempdir().unwrap();
    let (mut alice, _) = Service::open(&home(&tmp.path().join("alice"))).unwrap();
    let g = alice.group_create("bench", "").unwrap().id;
    let made = alice
        .group_invite(&g, 3_600_000, members as u32, Role::Member)
        .unwrap();
    let key = InviteKey::decode(&made.key).unwrap();
    let mut ids = Vec::new();
    for i in 1..members {
        let identity = IdentityKey::from_secret_bytes(&seed(i, 1));
        let device = DeviceKey::from_secret_bytes(&seed(i, 2));
        let cert = DeviceCert::issue(&identity, &device, 1);
        alice.store_mut().add_certificate(&cert).unwrap();
        alice
            .admit(
                &g,
                &key.public_key(),
                &key.prove(&identity.id()),
                identity.id(),
                device.id(),
            )
            .unwrap();
        ids.push(identity.id());
    }
    alice.take_outbox();
    let mut times = Vec::new();
    let mut bytes = Vec::new();
    for who in ids.iter().take(removals) {
        let t = Instant::now();
        alice.group_remove(&g, &who.to_string()).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let out = alice.take_outbox();
        bytes.push(out.iter().map(|c| c.signed().encode().len()).sum::<usize>());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "re-key: removing a member of a group of {members} ({removals} removals, down to {} members): p50 {:.1} ms, max {:.1} ms; the first signed change is {} bytes ({} per each of {} remaining members' devices)",
        members - removals,
        percentile(&times, 0.5),
        times[times.len() - 1],
        bytes[0],
        bytes[0] / (members - 1),
        members - 1
    );
}

/// `posts` signed posts by the owner of `keys` in group `g`.
fn group_corpus(keys: &kith_node::Keys, g: SpaceId, posts: usize) -> Archive {
    let mut archive = Archive::default();
    archive.certificates.push(keys.cert.clone());
    archive.changes = support::posts(&keys.identity, &keys.device, g, "g", posts);
    archive
}

fn join() {
    if !is_root() {
        println!("join: skipped (the namespace LAN needs root)");
        return;
    }
    let bin = kith_bin();
    let posts = env("KITH_BENCH_GROUP_POSTS", 10_000);
    let joiners = env("KITH_BENCH_JOINERS", 5);
    let tmp = tempfile::tempdir().unwrap();
    let alice = tmp.path().join("alice");
    kith_in(&bin, None, &alice, &["init", "--name", "alice"]);
    let created: serde_json::Value = serde_json::from_str(&kith_in(
        &bin,
        None,
        &alice,
        &["group", "create", "bench", "--json"],
    ))
    .unwrap();
    let g: SpaceId = created["id"].as_str().unwrap().parse().unwrap();
    let keys = home(&alice).load().unwrap();
    let file = tmp.path().join("group.kith");
    std::fs::write(&file, group_corpus(&keys, g, posts).encode()).unwrap();
    kith_in(&bin, None, &alice, &["import", file.to_str().unwrap()]);

    let lan = Lan::up(2);
    let (ns1, ns2) = (lan.netns(1), lan.netns(2));
    let listen = |i| format!("/ip4/{}/tcp/4610", lan.ip(i));
    let _alice_node = Node::start_in(&bin, Some(&ns1), &alice, &["--listen", &listen(1)]);
    let g_str = g.to_string();
    let invite: serde_json::Value = serde_json::from_str(&kith_in(
        &bin,
        Some(&ns1),
        &alice,
        &[
            "group",
            "invite",
            &g_str,
            "--json",
            "--uses",
            &joiners.to_string(),
        ],
    ))
    .unwrap();
    let key = invite["key"].as_str().unwrap().to_owned();
    let mut times = Vec::new();
    for j in 0..joiners {
        let joiner = tmp.path().join(format!("joiner{j}"));
        kith_in(&bin, None, &joiner, &["init", "--name", "joiner"]);
        let node = Node::start_in(&bin, Some(&ns2), &joiner, &["--listen", &listen(2)]);
        let t = Instant::now();
        kith_in(
            &bin,
            Some(&ns2),
            &joiner,
            &["group", "join", &key, "--timeout", "60s"],
        );
        let secs = t.elapsed().as_secs_f64();
        let feed: serde_json::Value = serde_json::from_str(&kith_in(
            &bin,
            Some(&ns2),
            &joiner,
            &[
                "feed",
                "--group",
                &g_str,
                "--limit",
                &posts.max(1).to_string(),
                "--json",
            ],
        ))
        .unwrap();
        let got = feed.as_array().unwrap().len();
        assert_eq!(
            got, posts,
            "the joiner holds the whole history when join returns"
        );
        times.push(secs);
        drop(node);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "join: from `kith group join` to a history of {posts} posts complete, {joiners} joiners on a namespace LAN: p50 {:.2} s, max {:.2} s (target <= 2 s)",
        percentile(&times, 0.5),
        times[times.len() - 1]
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    rekey();
    join();
}
