//! Real nodes on loopback (127.0.0.1, mDNS off): live gossip, catch-up after
//! being offline, and the CLI going through a running node.

use kith_tests::{NodeProc, TestHome, converge, ids_in, wait_for_post};

const LOOPBACK: &[&str] = &["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];

/// alice's node, and bob's connected to it; bob follows alice.
fn bob_follows_alice() -> (TestHome, TestHome, [NodeProc; 2]) {
    let alice = TestHome::init("alice");
    let bob = TestHome::init("bob");
    let alice_node = alice.node(LOOPBACK);
    let bob_node = bob.node(&[LOOPBACK, &["--peer", &alice_node.addr()]].concat());
    bob.run(&["follow", &alice.id()]).out();
    (alice, bob, [alice_node, bob_node])
}

#[test]
fn a_post_reaches_a_connected_follower_live() {
    // alice -- bob
    let (alice, bob, _nodes) = bob_follows_alice();
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
    wait_for_post(&bob, &post, "alice's post reaches bob");
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

#[test]
fn changes_relay_through_a_node_in_the_middle_with_signatures_intact() {
    // alice -- bob -- carol   (alice and carol never connect)
    let alice = TestHome::init("alice");
    let bob = TestHome::init("bob");
    let carol = TestHome::init("carol");
    for follower in [&bob, &carol] {
        follower.run(&["follow", &alice.id()]).out();
    }
    let early = alice
        .run(&["post", "before anyone was online"])
        .out()
        .to_owned();
    let a = alice.node(LOOPBACK);
    let a_addr = a.addr();
    let b = bob.node(&[LOOPBACK, &["--peer", &a_addr]].concat());
    let b_addr = b.addr();
    let _c = carol.node(&[LOOPBACK, &["--peer", &b_addr]].concat());
    wait_for_post(
        &carol,
        &early,
        "carol catches up alice's early post through bob",
    );
    let live = alice.run(&["post", "relayed live"]).out().to_owned();
    wait_for_post(&carol, &live, "carol gets alice's live post through bob");
    let carol_peers = carol.run(&["peers", "--json"]).json();
    assert!(
        carol_peers
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["identity"] != alice.id().as_str()),
        "carol never connected to alice"
    );
    // What carol holds still carries alice's signatures: a fresh home verifies it all.
    let file = carol.path("../relayed.kith");
    carol.run(&["export", file.to_str().unwrap()]).out();
    let dave = TestHome::init("dave");
    dave.run(&["import", file.to_str().unwrap()]).out();
    assert_eq!(
        dave.run(&["show", &live, "--json"]).json()["post"]["text"],
        "relayed live"
    );
}

#[test]
fn partitioned_sides_write_concurrently_and_converge_after_healing() {
    // alice -- bob      carol -- dave   then   bob -- carol
    let h: Vec<TestHome> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| TestHome::init(n))
        .collect();
    let ids: Vec<String> = h.iter().map(TestHome::id).collect();
    for (i, home) in h.iter().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if i != j {
                home.run(&["follow", id]).out();
            }
        }
    }
    let alice = h[0].node(LOOPBACK);
    let bob = h[1].node(&[LOOPBACK, &["--peer", &alice.addr()]].concat());
    let carol = h[2].node(LOOPBACK);
    let _dave = h[3].node(&[LOOPBACK, &["--peer", &carol.addr()]].concat());
    for round in 0..10 {
        for home in &h {
            home.run(&["post", &format!("round {round} while partitioned")])
                .out();
        }
    }
    let first_of_alice = h[0]
        .run(&["feed", "--author", &ids[0], "--limit", "1", "--json"])
        .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Concurrent reactions to the same post from both sides of the partition.
    wait_for_post(&h[1], &first_of_alice, "alice's newest post reaches bob");
    h[1].run(&["react", &first_of_alice, "👍"]).out();
    assert!(
        !ids_in(&h[2].run(&["feed", "--limit", "1000", "--json"]).json()).contains(&first_of_alice),
        "no path joins the two sides yet"
    );
    h[1].run(&["peer", "add", &carol.addr()]).out();
    let everything = |home: &TestHome| {
        let feed = home.run(&["feed", "--limit", "1000", "--json"]).json();
        let mut v: Vec<String> = feed
            .as_array()
            .unwrap()
            .iter()
            .map(|p| format!("{} {} {}", p["id"], p["text"], p["reactions"]))
            .collect();
        v.sort();
        v
    };
    converge(60, "all four converge after healing", || {
        let first = everything(&h[0]);
        (first.len() == 40 && h[1..].iter().all(|home| everything(home) == first)).then_some(())
    });
    drop(bob);
}

#[test]
fn private_labels_never_travel_by_gossip() {
    // alice -- bob (bob follows alice; alice labels bob privately)
    let (alice, bob, _nodes) = bob_follows_alice();
    let first = alice.run(&["post", "before the label"]).out().to_owned();
    wait_for_post(&bob, &first, "alice's first post reaches bob");
    let documents =
        |home: &TestHome| home.run(&["status", "--json"]).json()["counts"]["documents"].clone();
    let before = documents(&bob);
    alice.run(&["label", &bob.id(), "customer"]).out();
    // Published after the label: once it arrives, the label would have too.
    let second = alice.run(&["post", "after the label"]).out().to_owned();
    wait_for_post(&bob, &second, "alice's second post reaches bob");
    assert_eq!(
        documents(&bob),
        before,
        "bob received a document of alice's beyond her feed and profile"
    );
    let labelled = alice
        .run(&["people", "--label", "customer", "--json"])
        .json();
    assert!(
        labelled.to_string().contains(&bob.id()),
        "alice's own label is there: {labelled}"
    );
}

#[test]
fn a_node_on_an_empty_home_takes_a_name() {
    let home = TestHome::new();
    let node = home.node(LOOPBACK);
    assert!(
        node.status["name"].is_string(),
        "the node started with a named identity: {}",
        node.status
    );
    assert_eq!(
        home.run(&["whoami", "--json"]).json()["name"],
        node.status["name"]
    );
}

#[test]
fn a_peer_without_a_profile_is_nearby_too() {
    // alice -- bob, bob's identity never set a name
    let alice = TestHome::init("alice");
    let bob = TestHome::new();
    kith_node::Home {
        dir: bob.dir.clone(),
        source: kith_node::HomeSource::Flag,
    }
    .init(kith_node::home::now_ms())
    .unwrap();
    let alice_node = alice.node(LOOPBACK);
    let _bob_node = bob.node(&[LOOPBACK, &["--peer", &alice_node.addr()]].concat());
    let bob_id = bob.id();
    converge(30, "alice sees bob nearby", || {
        let nearby = alice.run(&["people", "--nearby", "--json"]).json();
        nearby
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == bob_id.as_str())
            .then_some(())
    });
    let text = alice.run(&["people", "--nearby"]).out().to_owned();
    assert!(text.contains(&bob_id), "{text}");
}

#[test]
fn a_running_node_adds_lists_and_forgets_remembered_peers() {
    // alice -- bob, bob remembers alice
    let alice = TestHome::init("alice");
    let bob = TestHome::init("bob");
    let alice_node = alice.node(LOOPBACK);
    let _bob_node = bob.node(LOOPBACK);
    let addr = alice_node.addr();
    bob.run(&["peer", "add", &addr]).out();
    let nowhere = "/ip4/127.0.0.1/tcp/9";
    bob.run(&["peer", "add", nowhere]).out();
    converge(30, "bob's node connects to the remembered alice", || {
        let listed = bob.run(&["peer", "list", "--json"]).json();
        (listed
            == serde_json::json!([
                { "address": addr, "connected": true },
                { "address": nowhere, "connected": false },
            ]))
        .then_some(())
    });
    bob.run(&["peer", "remove", nowhere]).out();
    bob.run(&["peer", "remove", nowhere])
        .fails_with("is not a remembered peer");
    assert_eq!(
        bob.run(&["peer", "list", "--json"]).json(),
        serde_json::json!([{ "address": addr, "connected": true }])
    );
    assert_eq!(
        std::fs::read_to_string(bob.path("peers")).unwrap(),
        format!("{addr}\n")
    );
}

/// Whether a process holds a lock on `file` (as redb locks its file), as
/// `/proc/locks` says: seen from outside, without taking it.
fn locked(file: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let inode = format!(":{} ", std::fs::metadata(file).unwrap().ino());
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .any(|l| l.contains(&inode))
}

#[test]
fn a_command_while_the_node_starts_waits_for_it() {
    use std::io::BufRead;
    let home = TestHome::init("alice");
    let mut child = home
        .command(&[&["node", "--json"], LOOPBACK].concat())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kith node starts");
    let node_stdout = child.stdout.take().unwrap();
    // Once the node holds the store, without waiting for it to say it is
    // ready: it is most likely still starting.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !locked(&home.path("kith.redb")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the node never opened its store"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let post = home.run(&["post", "hi"]);
    let mut ready = String::new();
    std::io::BufReader::new(node_stdout)
        .read_line(&mut ready)
        .unwrap();
    let node = kith_tests::NodeProc {
        child,
        status: serde_json::from_str(&ready).expect("the node started"),
    };
    let id = post.out().to_owned();
    wait_for_post(&home, &id, "the post is in the store the node holds");
    node.stop();
}

#[test]
fn kith_open_without_a_browser_fails_and_gives_the_link() {
    let home = TestHome::init("alice");
    let _node = home.node(LOOPBACK);
    let out = home
        .command(&["open"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("BROWSER")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("could not start a browser"), "{stderr}");
    assert!(
        stdout.trim().starts_with("http://127.0.0.1:") && stdout.contains("#login="),
        "{stdout}"
    );
}

#[test]
fn a_bootstrap_node_can_be_given_by_name() {
    // alice <- bob, who knows her as /dns4/localhost/tcp/PORT (resolved from
    // the hosts file: nothing leaves the machine)
    let alice = TestHome::init("alice");
    let bob = TestHome::init("bob");
    let alice_node = alice.node(LOOPBACK);
    let port = alice_node.addr().rsplit('/').next().unwrap().to_owned();
    let by_name = format!("/dns4/localhost/tcp/{port}");
    let _bob_node = bob.node(&[LOOPBACK, &["--bootstrap", &by_name]].concat());
    converge(30, "bob reaches alice by name", || {
        let peers = bob.run(&["peers", "--json"]).json();
        peers
            .as_array()?
            .iter()
            .any(|p| p["identity"] == alice.id().as_str())
            .then_some(())
    });
    // Remembered as given, like any bootstrap address.
    let remembered = bob.run(&["peer", "list", "--json"]).json();
    assert!(remembered.to_string().contains(&by_name), "{remembered}");
}
