//! Real nodes on a simulated LAN (network namespaces on a bridge, made by
//! `scripts/lan`) with mDNS on: discovery, live gossip and catch-up with no
//! configuration at all. Needs root, as CI has.

use kith_tests::lan::Lan;
use kith_tests::{NodeProc, TestHome, converge, feed_ids};

fn peer_identities(home: &TestHome) -> Vec<String> {
    home.run(&["peers", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["identity"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn nodes_find_each_other_by_mdns_and_posts_reach_followers_live() {
    // alice, bob, carol on one LAN; nobody is told about anybody.
    let lan = Lan::up(3);
    let h = lan.homes(&["alice", "bob", "carol"]);
    let ids: Vec<String> = h.iter().map(TestHome::id).collect();
    let _nodes: Vec<NodeProc> = (0..3).map(|i| lan.start(&h[i], i + 1)).collect();
    for (i, home) in h.iter().enumerate() {
        converge(60, "every node sees the two others by mDNS", || {
            let seen = peer_identities(home);
            ids.iter()
                .enumerate()
                .all(|(j, id)| i == j || seen.contains(id))
                .then_some(())
        });
    }
    let nearby = h[1].run(&["people", "--nearby", "--json"]).json();
    let names: Vec<&str> = nearby
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"alice") && names.contains(&"carol"),
        "bob's nearby people: {names:?}"
    );

    h[1].run(&["follow", &ids[0]]).out();
    h[2].run(&["follow", &ids[0]]).out();
    let post = h[0].run(&["post", "hello, LAN"]).out().to_owned();
    for follower in &h[1..] {
        converge(30, "alice's post reaches each follower", || {
            feed_ids(follower, &ids[0]).contains(&post).then_some(())
        });
    }
}

#[test]
fn a_node_that_was_away_catches_up_to_exactly_the_authors_state() {
    // alice, bob, carol on one LAN; carol's node is stopped while alice writes.
    let lan = Lan::up(3);
    let h = lan.homes(&["alice", "bob", "carol"]);
    let ids: Vec<String> = h.iter().map(TestHome::id).collect();
    h[2].run(&["follow", &ids[0]]).out();
    h[1].run(&["follow", &ids[0]]).out();
    let _alice = lan.start(&h[0], 1);
    let _bob = lan.start(&h[1], 2);
    let mut posts = Vec::new();
    for i in 0..1000 {
        posts.push(
            h[0].run(&["post", &format!("written while carol was away, number {i}")])
                .out()
                .to_owned(),
        );
    }
    for p in posts.iter().step_by(50) {
        h[0].run(&["edit", p, "edited while carol was away"]).out();
    }
    for p in posts.iter().skip(7).step_by(100) {
        h[0].run(&["delete", p]).out();
    }
    let want = h[0]
        .run(&["feed", "--author", &ids[0], "--limit", "5000", "--json"])
        .json();
    let _carol = lan.start(&h[2], 3);
    converge(120, "carol converges to exactly alice's state", || {
        (h[2]
            .run(&["feed", "--author", &ids[0], "--limit", "5000", "--json"])
            .json()
            == want)
            .then_some(())
    });
    let done = h[2]
        .run(&["sync", "--wait", "--timeout", "60", "--json"])
        .json();
    assert_eq!(done["syncing"], false);
}

#[test]
fn peers_found_by_mdns_are_never_said_to_be_dialled() {
    // alice and bob on one LAN: whoever finds the other first dials.
    let lan = Lan::up(2);
    let h = lan.homes(&["alice", "bob"]);
    let ids: Vec<String> = h.iter().map(TestHome::id).collect();
    let _nodes: Vec<NodeProc> = (0..2).map(|i| lan.start(&h[i], i + 1)).collect();
    let mut found = Vec::new();
    for (home, other) in [(&h[0], &ids[1]), (&h[1], &ids[0])] {
        let via = converge(60, "each sees the other", || {
            let peers = home.run(&["peers", "--json"]).json();
            peers
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["identity"] == other.as_str())
                .map(|p| p["via"].as_str().unwrap().to_owned())
        });
        // The side that dialled did so because mDNS found the other; the
        // other side may have been dialled before its mDNS found anyone.
        assert!(via == "mdns" || via == "inbound", "via {via}");
        found.push(via);
    }
    assert!(found.contains(&"mdns".to_owned()), "{found:?}");
    let shown = |home: &TestHome| home.run(&["peers"]).out().to_owned();
    let text = shown(&h[0]) + &shown(&h[1]);
    assert!(text.contains("found on the LAN (mDNS)"), "{text}");
}
