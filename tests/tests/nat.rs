//! Real nodes on a simulated internet (`scripts/nat`: LANs behind NAT
//! routers in network namespaces, a public segment 203.0.113.0/24 that
//! exists only inside them). Needs root, iproute2 and iptables, as CI has.

use kith_tests::nat::Nat;
use kith_tests::{NodeProc, TestHome, converge, feed_ids};

/// The connected peer of `home` whose identity is `id`, as `kith peers
/// --json` shows it.
fn peer(home: &TestHome, id: &str) -> Option<serde_json::Value> {
    home.run(&["peers", "--json"])
        .json()
        .as_array()?
        .iter()
        .find(|p| p["identity"] == id)
        .cloned()
}

/// The always-on node of `host`, public at its address on port 4001.
fn always_on(nat: &Nat, home: &TestHome, host: &str) -> (NodeProc, String) {
    let ip = nat.ip(host);
    let tcp = format!("/ip4/{ip}/tcp/4001");
    let quic = format!("/ip4/{ip}/udp/4001/quic-v1");
    let node = home.node(&[
        "--listen",
        &tcp,
        "--public-addr",
        &tcp,
        "--public-addr",
        &quic,
    ]);
    (node, tcp)
}

/// A node behind a NAT, listening on port 4001 of every interface, that
/// starts from `bootstrap`.
fn behind_nat(home: &TestHome, bootstrap: &str) -> NodeProc {
    home.node(&[
        "--listen",
        "/ip4/0.0.0.0/tcp/4001",
        "--bootstrap",
        bootstrap,
    ])
}

/// Waits until `home`'s node, behind a NAT, holds a reservation on a relay.
fn wait_for_relay(home: &TestHome) {
    converge(
        30,
        "the node behind a NAT holds a reservation on the relay",
        || {
            let status = home.run(&["status", "--json"]).json();
            status["reach"]["relays"].as_array()?.first().map(|_| ())
        },
    );
}

#[test]
fn bob_finds_alice_by_id_alone_across_two_nats_then_they_punch_a_hole_and_need_no_relay() {
    // relay 203.0.113.10 (public, always on)
    //   | internet 203.0.113.0/24
    // rA 203.0.113.1 (NAT, endpoint-independent)  rB 203.0.113.2 (same)
    //   |                                           |
    // alice 10.0.1.2                              bob 10.0.2.2
    let nat = Nat::up(&["pub:relay", "lan:a:eim:alice", "lan:b:eim:bob"]);
    let relay = nat.home("relay", "relay");
    let alice = nat.home("alice", "alice");
    let bob = nat.home("bob", "bob");
    let (relay_node, relay_addr) = always_on(&nat, &relay, "relay");
    // Bootstrap addresses work without the relay's peer id.
    let _alice_node = behind_nat(&alice, &relay_addr);
    let _bob_node = behind_nat(&bob, &relay_addr);
    wait_for_relay(&alice);
    let status = alice.run(&["status"]).out().to_owned();
    assert!(
        status.contains("behind a NAT: others reach this node through the relay"),
        "{status}"
    );
    // Written before bob follows: it arrives by catch-up.
    let alice_id = alice.id();
    let earlier = alice.run(&["post", "before you knew me"]).out().to_owned();

    // bob knows alice's id and nothing else: the DHT (served by the relay
    // node) tells him where her device is.
    bob.run(&["follow", &alice_id]).out();
    converge(60, "bob catches up on alice's earlier post", || {
        feed_ids(&bob, &alice_id).contains(&earlier).then_some(())
    });

    // The connection becomes direct: its remote address is alice's NAT,
    // not a circuit.
    let router_a = nat.ip("ra");
    let p = converge(60, "bob's connection to alice becomes hole-punched", || {
        peer(&bob, &alice_id).filter(|p| p["connection"] == "hole-punched")
    });
    let address = p["address"].as_str().unwrap();
    assert!(
        address.starts_with(&format!("/ip4/{router_a}/")) && !address.contains("p2p-circuit"),
        "the punched connection goes straight to alice's NAT: {p}"
    );
    let first = alice
        .run(&["post", "through the relay, or not"])
        .out()
        .to_owned();
    converge(30, "alice's post reaches bob", || {
        feed_ids(&bob, &alice_id).contains(&first).then_some(())
    });

    // Without the relay they keep talking on the punched connection.
    relay_node.stop();
    let second = alice.run(&["post", "no relay now"]).out().to_owned();
    converge(30, "alice's post reaches bob with the relay gone", || {
        feed_ids(&bob, &alice_id).contains(&second).then_some(())
    });
    let p = peer(&bob, &alice_id).expect("still connected");
    assert_eq!(p["connection"], "hole-punched", "{p}");
}

/// carol's history: `count` public posts by fixed keys, as an archive file
/// in `dir` (carol has no node; alice holds her posts).
fn carols_history(dir: &std::path::Path, count: usize) -> (std::path::PathBuf, String) {
    use kith_core::archive::Archive;
    use kith_core::{DeviceCert, DeviceKey, IdentityKey, SpaceId};
    let identity = IdentityKey::from_secret_bytes(&[31; 32]);
    let device = DeviceKey::from_secret_bytes(&[32; 32]);
    let per_shard = kith_node::service::SHARD_MAX_CHANGES as usize;
    let archive = Archive {
        certificates: vec![DeviceCert::issue(&identity, &device, 1)],
        changes: kith_core::testing::posts(
            &identity,
            &device,
            SpaceId::PUBLIC,
            "carol",
            count,
            per_shard,
        ),
    };
    let file = dir.join("carol.kith");
    std::fs::write(&file, archive.encode()).unwrap();
    (file, identity.id().to_string())
}

fn posts_held(home: &TestHome) -> u64 {
    home.run(&["status", "--json"]).json()["counts"]["posts"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn behind_a_symmetric_nat_the_connection_stays_relayed_and_catches_up_10000_posts() {
    // relay 203.0.113.10 (public, always on)
    //   | internet 203.0.113.0/24
    // rA 203.0.113.1 (symmetric NAT)   rB 203.0.113.2 (endpoint-independent)
    //   |                                |
    // alice 10.0.1.2                   bob 10.0.2.2
    //
    // alice holds 10,000 posts of carol's (who has no node) and one of her
    // own; bob follows both, finds alice by id, and catches everything up
    // through the relay, since no hole can be punched through alice's NAT.
    const HISTORY: usize = 10_000;
    let nat = Nat::up(&["pub:relay", "lan:a:sym:alice", "lan:b:eim:bob"]);
    let relay = nat.home("relay", "relay");
    let alice = nat.home("alice", "alice");
    let bob = nat.home("bob", "bob");
    let (history, carol) = carols_history(&alice.path(".."), HISTORY);
    alice.run(&["follow", &carol]).out();
    alice.run(&["import", history.to_str().unwrap()]).out();
    let (_relay_node, relay_addr) = always_on(&nat, &relay, "relay");
    let _alice_node = behind_nat(&alice, &relay_addr);
    let alice_id = alice.id();
    let own = alice.run(&["post", "before bob came"]).out().to_owned();
    wait_for_relay(&alice);
    let _bob_node = behind_nat(&bob, &relay_addr);
    wait_for_relay(&bob);
    bob.run(&["follow", &carol]).out();
    let started = std::time::Instant::now();
    bob.run(&["follow", &alice_id]).out();
    let held = converge(
        600,
        "bob catches up carol's 10,000 posts from alice",
        || {
            let n = posts_held(&bob);
            (n as usize > HISTORY).then_some(n)
        },
    );
    println!(
        "catch-up over the relay: {held} posts in {:.1} s from bob's follow of alice",
        started.elapsed().as_secs_f64()
    );
    assert!(
        feed_ids(&bob, &alice_id).contains(&own),
        "alice's own post came with them"
    );
    // Still through the relay: alice's NAT gives every peer its own port.
    let p = peer(&bob, &alice_id).expect("connected to alice");
    assert_eq!(p["connection"], "relayed", "{p}");
    let live = alice.run(&["post", "live, relayed"]).out().to_owned();
    converge(30, "a live post reaches bob over the relay", || {
        feed_ids(&bob, &alice_id).contains(&live).then_some(())
    });
}

fn group_feed(home: &TestHome, group: &str) -> Vec<String> {
    kith_tests::ids_in(
        &home
            .run(&["feed", "--group", group, "--limit", "100", "--json"])
            .json(),
    )
}

#[test]
fn an_invite_made_on_one_lan_is_used_from_another_while_the_inviter_is_offline() {
    // relay 203.0.113.10 (public, the DHT)
    //   | internet 203.0.113.0/24
    // rA 203.0.113.1      rB 203.0.113.2      rC 203.0.113.3   (NATs,
    //   |                   |                   |         endpoint-independent)
    // alice 10.0.1.2      bob 10.0.2.2        dave 10.0.3.2
    // (the inviter)       (invited)           (a member)
    //
    // dave joins with a key that reaches alice only through her relay
    // circuit. alice then invites bob and goes offline; bob's key reaches
    // nobody, and dave, behind his own NAT, is no DHT server bob would meet
    // anyway: only the group's rendezvous in the DHT leads bob to him, and
    // dave admits him.
    let nat = Nat::up(&[
        "pub:relay",
        "lan:a:eim:alice",
        "lan:b:eim:bob",
        "lan:c:eim:dave",
    ]);
    let relay = nat.home("relay", "relay");
    let dave = nat.home("dave", "dave");
    let alice = nat.home("alice", "alice");
    let bob = nat.home("bob", "bob");
    let (_relay_node, relay_addr) = always_on(&nat, &relay, "relay");
    let _dave_node = behind_nat(&dave, &relay_addr);
    wait_for_relay(&dave);
    let alice_node = behind_nat(&alice, &relay_addr);
    wait_for_relay(&alice);

    let group = alice
        .run(&["group", "create", "vendors and us", "--json"])
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let invite = |uses: &str| {
        alice
            .run(&["group", "invite", &group, "--uses", uses, "--json"])
            .json()["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The key carries alice's relay circuit: the only way to her from dave.
    let key = invite("1");
    let decoded = kith_core::InviteKey::decode(&key).unwrap();
    let circuits = decoded
        .addresses
        .iter()
        .filter_map(|a| kith_net::Multiaddr::try_from(a.clone()).ok())
        .filter(kith_net::address::is_relayed)
        .count();
    assert!(
        circuits >= 1,
        "a relay circuit in the invite key: {decoded:?}"
    );
    let joined = dave
        .run(&["group", "join", &key, "--timeout", "60s", "--json"])
        .json();
    assert_eq!(joined["role"], "member", "{joined}");
    let history = alice
        .run(&["post", "--group", &group, "before bob"])
        .out()
        .to_owned();
    converge(30, "alice's group post reaches dave", || {
        group_feed(&dave, &group).contains(&history).then_some(())
    });

    // alice invites bob, then goes offline.
    let key = invite("1");
    alice_node.stop();
    let _bob_node = behind_nat(&bob, &relay_addr);
    let joined = bob
        .run(&["group", "join", &key, "--timeout", "90s", "--json"])
        .json();
    assert_eq!(joined["role"], "member", "{joined}");
    assert!(
        group_feed(&bob, &group).contains(&history),
        "bob has the group's history once join returns"
    );
    let live = dave
        .run(&["post", "--group", &group, "welcome, bob"])
        .out()
        .to_owned();
    converge(30, "dave's group post reaches bob", || {
        group_feed(&bob, &group).contains(&live).then_some(())
    });
}
