//! Real nodes on loopback (127.0.0.1, mDNS off): live gossip, catch-up after
//! being offline, and the CLI going through a running node.

use kith_tests::{TestHome, converge};

const LOOPBACK: &[&str] = &["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];

fn ids_in(feed: &serde_json::Value) -> Vec<String> {
    feed.as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_post_reaches_a_connected_follower_live() {
    // alice -- bob
    let alice = TestHome::init("alice");
    let bob = TestHome::init("bob");
    let alice_node = alice.node(LOOPBACK);
    let mut args = LOOPBACK.to_vec();
    let addr = alice_node.addr();
    args.extend(["--peer", &addr]);
    let _bob_node = bob.node(&args);
    bob.run(&["follow", &alice.id()]).out();
    converge(30, "bob sees alice as a peer", || {
        let peers = bob.run(&["peers", "--json"]).json();
        peers
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["identity"] == alice.id().as_str())
            .then_some(())
    });
    // The CLI goes through the running node: the post is live on the network.
    let post = alice.run(&["post", "hello over the wire"]).out().to_owned();
    converge(30, "alice's post reaches bob", || {
        ids_in(&bob.run(&["feed", "--json"]).json())
            .contains(&post)
            .then_some(())
    });
    alice
        .run(&["edit", &post, "hello over the wire, edited"])
        .out();
    alice.run(&["react", &post, "🎉"]).out();
    converge(30, "the edit reaches bob", || {
        let shown = bob.run(&["show", &post, "--json"]).json();
        (shown["post"]["text"] == "hello over the wire, edited").then_some(())
    });
    let status = bob.run(&["status", "--json"]).json();
    assert_eq!(status["peers"], 1);
    assert!(status["api"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[test]
fn an_offline_follower_catches_up_on_reconnect() {
    // alice -- bob, bob offline while alice writes
    let alice = TestHome::init("alice");
    let bob = TestHome::init("bob");
    bob.run(&["follow", &alice.id()]).out();
    let alice_node = alice.node(LOOPBACK);
    let mut posts = Vec::new();
    for i in 0..200 {
        posts.push(
            alice
                .run(&["post", &format!("written while bob was away, {i}")])
                .out()
                .to_owned(),
        );
    }
    for p in posts.iter().take(10) {
        alice.run(&["edit", p, "edited while bob was away"]).out();
    }
    for p in posts.iter().skip(10).take(5) {
        alice.run(&["delete", p]).out();
    }
    let mut args = LOOPBACK.to_vec();
    let addr = alice_node.addr();
    args.extend(["--peer", &addr]);
    let _bob_node = bob.node(&args);
    let want = alice
        .run(&["feed", "--author", &alice.id(), "--limit", "1000", "--json"])
        .json();
    converge(60, "bob converges to alice's feed", || {
        (bob.run(&["feed", "--author", &alice.id(), "--limit", "1000", "--json"])
            .json()
            == want)
            .then_some(())
    });
    let waited = bob.run(&["sync", "--wait", "--json"]).json();
    assert_eq!(waited["syncing"], false);
}

#[test]
fn a_second_node_on_the_same_home_is_refused() {
    let alice = TestHome::init("alice");
    let _node = alice.node(LOOPBACK);
    let run = alice.run(&["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"]);
    run.fails_with("in use by another kith process");
}

#[test]
fn node_only_commands_say_a_node_is_needed() {
    let alice = TestHome::init("alice");
    alice
        .run(&["peers"])
        .fails_with("start one with `kith node`");
    alice
        .run(&["status"])
        .fails_with("start one with `kith node`");
}
