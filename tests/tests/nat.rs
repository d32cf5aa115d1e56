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

#[test]
fn behind_a_symmetric_nat_the_connection_stays_relayed_and_still_carries_posts() {
    // relay 203.0.113.10 (public, always on)
    //   | internet 203.0.113.0/24
    // rA 203.0.113.1 (symmetric NAT)   rB 203.0.113.2 (endpoint-independent)
    //   |                                |
    // alice 10.0.1.2                   bob 10.0.2.2
    let nat = Nat::up(&["pub:relay", "lan:a:sym:alice", "lan:b:eim:bob"]);
    let relay = nat.home("relay", "relay");
    let alice = nat.home("alice", "alice");
    let bob = nat.home("bob", "bob");
    let (_relay_node, relay_addr) = always_on(&nat, &relay, "relay");
    let _alice_node = behind_nat(&alice, &relay_addr);
    let alice_id = alice.id();
    let posts: Vec<String> = (0..20)
        .map(|i| {
            alice
                .run(&["post", &format!("before bob came, {i}")])
                .out()
                .to_owned()
        })
        .collect();
    wait_for_relay(&alice);
    let _bob_node = behind_nat(&bob, &relay_addr);
    wait_for_relay(&bob);
    bob.run(&["follow", &alice_id]).out();
    converge(60, "bob catches up on alice's posts over the relay", || {
        let have = feed_ids(&bob, &alice_id);
        posts.iter().all(|p| have.contains(p)).then_some(())
    });
    let p = peer(&bob, &alice_id).expect("connected to alice");
    assert_eq!(p["connection"], "relayed", "{p}");
    let live = alice.run(&["post", "live, relayed"]).out().to_owned();
    converge(30, "a live post reaches bob over the relay", || {
        feed_ids(&bob, &alice_id).contains(&live).then_some(())
    });
}
