//! Groups joined with invite keys, between real nodes on a simulated LAN
//! (network namespaces on a bridge, mDNS on). Needs root, as CI has.

use kith_tests::lan::Lan;
use kith_tests::{NodeProc, TestHome, converge, ids_in};

/// The post ids of `group`'s feed on `home`, newest first.
fn group_feed(home: &TestHome, group: &str) -> Vec<String> {
    ids_in(
        &home
            .run(&["feed", "--group", group, "--limit", "1000", "--json"])
            .json(),
    )
}

/// The members of `group` as `home` sees them: sorted ids with roles.
fn members(home: &TestHome, group: &str) -> Vec<(String, String)> {
    let view = home.run(&["group", "show", group, "--json"]).json();
    let mut out: Vec<(String, String)> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn create(home: &TestHome, name: &str) -> String {
    home.run(&["group", "create", name, "--json"]).json()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn invite(home: &TestHome, group: &str, extra: &[&str]) -> String {
    let mut args = vec!["group", "invite", group, "--json"];
    args.extend_from_slice(extra);
    home.run(&args).json()["key"].as_str().unwrap().to_owned()
}

fn post(home: &TestHome, group: &str, text: &str) -> String {
    home.run(&["post", "--group", group, text]).out().to_owned()
}

#[test]
fn an_invited_person_joins_over_the_lan_and_a_stranger_gets_nothing() {
    // alice -- bob -- carol, one LAN. bob gets an invite; carol does not.
    let lan = Lan::up(3);
    let h = lan.homes(&["alice", "bob", "carol"]);
    let _nodes: Vec<NodeProc> = (0..3).map(|i| lan.start(&h[i], i + 1)).collect();
    let g = create(&h[0], "tuesday climbers");
    let history: Vec<String> = (0..3)
        .map(|i| post(&h[0], &g, &format!("before bob, {i}")))
        .collect();
    let key = invite(&h[0], &g, &[]);
    assert!(
        key.len() <= kith_core::invite::MAX_INVITE_CHARS,
        "an invite key fits on a line: {key}"
    );

    let joined = h[1]
        .run(&["group", "join", &key, "--timeout", "60s", "--json"])
        .json();
    assert_eq!(joined["id"], g.as_str());
    assert_eq!(joined["role"], "member");
    let seen = group_feed(&h[1], &g);
    for p in &history {
        assert!(seen.contains(p), "bob has the history once join returns");
    }

    // bob posts; alice sees it live.
    let hello = post(&h[1], &g, "hello from bob");
    converge(30, "bob's group post reaches alice", || {
        group_feed(&h[0], &g).contains(&hello).then_some(())
    });
    // And alice's next post reaches bob live, encrypted on the group topic.
    let next = post(&h[0], &g, "welcome, bob");
    converge(30, "alice's group post reaches bob", || {
        group_feed(&h[1], &g).contains(&next).then_some(())
    });

    // carol, on the same LAN all along, holds nothing of the group …
    h[2].run(&["group", "show", &g])
        .fails_with("knows no group");
    assert!(group_feed(&h[2], &g).is_empty());
    let status = h[2].run(&["status", "--json"]).json();
    let public_posts = status["counts"]["posts"].as_u64().unwrap();
    assert_eq!(public_posts, 0, "carol stored no post at all: {status}");
    // … cannot post into it …
    h[2].run(&["post", "--group", &g, "let me in"])
        .fails_with("not a member");
    // … and the group's posts never went out on the public topic.
    assert!(
        h[2].run(&["feed", "--limit", "100", "--json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bad_invites_are_refused_with_the_reason() {
    // alice -- bob -- dave, one LAN; alice's invites go wrong in every way.
    // bob joins and leaves the LAN, so that alice alone answers dave.
    let lan = Lan::up(3);
    let h = lan.homes(&["alice", "bob", "dave"]);
    let _alice = lan.start(&h[0], 1);
    let bob = lan.start(&h[1], 2);
    let _dave = lan.start(&h[2], 3);
    let g = create(&h[0], "procurement");
    let join = |home: &TestHome, key: &str| home.run(&["group", "join", key, "--timeout", "30s"]);

    let once = invite(&h[0], &g, &["--uses", "1"]);
    join(&h[1], &once).out();
    bob.stop();
    join(&h[2], &once).fails_with("used up");

    let brief = invite(&h[0], &g, &["--expires", "1ms"]);
    join(&h[2], &brief).fails_with("expired");

    let revoked = invite(&h[0], &g, &[]);
    let invites = h[0].run(&["group", "invites", &g, "--json"]).json();
    let open: Vec<String> = invites
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["open"] == true)
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(open.len(), 1, "only the last invite is open: {invites}");
    h[0].run(&["group", "revoke", &g, &open[0]]).out();
    join(&h[2], &revoked).fails_with("revoked");

    // One character changed: the checksum catches it before any network.
    let good = invite(&h[0], &g, &[]);
    let mut chars: Vec<char> = good.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    let tampered: String = chars.into_iter().collect();
    join(&h[2], &tampered).fails_with("damaged or mistyped");
    join(&h[2], "kith-invite-").fails_with("cut short");

    assert_eq!(
        members(&h[0], &g).len(),
        2,
        "only alice and bob are members"
    );
}

#[test]
fn a_joiner_is_admitted_by_any_member_when_the_inviter_is_away() {
    // alice -- bob -- dave; alice invites, then goes offline; bob admits dave.
    let lan = Lan::up(3);
    let h = lan.homes(&["alice", "bob", "dave"]);
    let alice = lan.start(&h[0], 1);
    let _bob = lan.start(&h[1], 2);
    let g = create(&h[0], "band");
    let first = post(&h[0], &g, "rehearsal on friday");
    let key = invite(&h[0], &g, &["--uses", "2"]);
    h[1].run(&["group", "join", &key, "--timeout", "60s"]).out();
    converge(30, "bob holds alice's post", || {
        group_feed(&h[1], &g).contains(&first).then_some(())
    });
    alice.stop();

    let _dave = lan.start(&h[2], 3);
    let joined = h[2]
        .run(&["group", "join", &key, "--timeout", "60s", "--json"])
        .json();
    assert_eq!(joined["role"], "member");
    assert!(group_feed(&h[2], &g).contains(&first));
    let dave = h[2].id();
    let entry = joined["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == dave.as_str())
        .expect("dave is listed");
    assert_eq!(
        entry["admitted_by"],
        h[1].id().as_str(),
        "bob admitted dave"
    );
    assert_eq!(
        entry["invited_by"],
        h[0].id().as_str(),
        "with alice's invite"
    );
}

#[test]
fn a_removed_member_reads_nothing_after_and_its_posts_are_refused() {
    // alice -- bob -- dave; alice removes bob while bob's node is away.
    let lan = Lan::up(3);
    let h = lan.homes(&["alice", "bob", "dave"]);
    let _alice = lan.start(&h[0], 1);
    let bob = lan.start(&h[1], 2);
    let _dave = lan.start(&h[2], 3);
    let g = create(&h[0], "vendors");
    let key = invite(&h[0], &g, &["--uses", "2"]);
    for p in &h[1..] {
        p.run(&["group", "join", &key, "--timeout", "60s"]).out();
    }
    let before = post(&h[1], &g, "bob, still a member");
    for p in [&h[0], &h[2]] {
        converge(30, "bob's post reaches the others", || {
            group_feed(p, &g).contains(&before).then_some(())
        });
    }
    bob.stop();
    // alice and dave follow bob, and bob alice, in public: their public
    // posts show when they have caught up with each other.
    let ids: Vec<String> = h.iter().map(TestHome::id).collect();
    h[0].run(&["follow", &ids[1]]).out();
    h[2].run(&["follow", &ids[1]]).out();
    h[1].run(&["follow", &ids[0]]).out();
    // bob, offline and unaware, writes; meanwhile alice removes him.
    let unaware = post(&h[1], &g, "bob, written after his removal");
    let back = h[1].run(&["post", "bob is back"]).out().to_owned();
    h[0].run(&["group", "remove", &g, &ids[1]]).out();
    let after_alice = post(&h[0], &g, "alice, after bob left");
    let after_dave = post(&h[2], &g, "dave, after bob left");
    converge(30, "dave sees alice's post after the removal", || {
        group_feed(&h[2], &g).contains(&after_alice).then_some(())
    });
    converge(30, "alice sees dave's post after the removal", || {
        group_feed(&h[0], &g).contains(&after_dave).then_some(())
    });

    let alice_public = h[0].run(&["post", "alice, in public"]).out().to_owned();

    let _bob = lan.start(&h[1], 2);
    // Once alice and dave hold bob's public post and have nothing left to
    // fetch, they have compared versions with him and fetched what he
    // offered of the group: his post made after the removal is refused.
    for p in [&h[0], &h[2]] {
        converge(60, "bob's public post arrives and sync settles", || {
            let has = kith_tests::feed_ids(p, &ids[1]).contains(&back);
            let s = p.run(&["status", "--json"]).json();
            (has && s["syncing"] == false).then_some(())
        });
        let seen = group_feed(p, &g);
        assert!(seen.contains(&before), "bob's earlier post stays");
        assert!(
            !seen.contains(&unaware),
            "bob's post after his removal is refused"
        );
    }
    // bob, in turn, has caught up with alice in public, and has nothing of
    // the group from after his removal: no member serves him any more, and
    // the group's gossip is under a key he does not have.
    converge(60, "alice's public post reaches bob", || {
        let has = kith_tests::feed_ids(&h[1], &ids[0]).contains(&alice_public);
        let s = h[1].run(&["status", "--json"]).json();
        (has && s["syncing"] == false).then_some(())
    });
    let bobs = group_feed(&h[1], &g);
    assert!(bobs.contains(&before));
    assert!(!bobs.contains(&after_alice) && !bobs.contains(&after_dave));
}

#[test]
fn concurrent_invite_and_removal_while_partitioned_converge() {
    // alice -- erin -- bob -- dave. alice and erin are admins. While apart,
    // erin admits dave and alice removes bob; after healing, all agree.
    let lan = Lan::up(4);
    let h = lan.homes(&["alice", "erin", "bob", "dave"]);
    let alice = lan.start(&h[0], 1);
    let erin = lan.start(&h[1], 2);
    let bob = lan.start(&h[2], 3);
    let g = create(&h[0], "co-op");
    let admin_key = invite(&h[0], &g, &["--role", "admin"]);
    h[1].run(&["group", "join", &admin_key, "--timeout", "60s"])
        .out();
    let member_key = invite(&h[0], &g, &[]);
    h[2].run(&["group", "join", &member_key, "--timeout", "60s"])
        .out();
    converge(30, "erin sees bob as a member", || {
        (members(&h[1], &g).len() == 3).then_some(())
    });

    // Partition: alice's node goes away; erin invites and admits dave.
    alice.stop();
    let dave_key = invite(&h[1], &g, &[]);
    let _dave = lan.start(&h[3], 4);
    h[3].run(&["group", "join", &dave_key, "--timeout", "60s"])
        .out();
    erin.stop();
    bob.stop();
    // alice, alone, removes bob, not knowing of dave.
    let bob_id = h[2].id();
    h[0].run(&["group", "remove", &g, &bob_id]).out();

    // Heal.
    let _alice = lan.start(&h[0], 1);
    let _erin = lan.start(&h[1], 2);
    let _bob = lan.start(&h[2], 3);
    let want: Vec<String> = {
        let mut ids = vec![h[0].id(), h[1].id(), h[3].id()];
        ids.sort();
        ids
    };
    for p in [&h[0], &h[1], &h[3]] {
        converge(60, "every member agrees: alice, erin, dave", || {
            let got: Vec<String> = members(p, &g).into_iter().map(|(id, _)| id).collect();
            (got == want).then_some(())
        });
    }
}

/// The addresses an invite key made now on `home` offers, as text.
fn offered(home: &TestHome, group: &str) -> Vec<String> {
    let key = kith_core::InviteKey::decode(&invite(home, group, &[])).expect("a valid key");
    key.addresses
        .into_iter()
        .map(|a| {
            kith_net::Multiaddr::try_from(a)
                .expect("an address")
                .to_string()
        })
        .collect()
}

#[test]
fn an_invite_key_offers_the_addresses_the_node_has_now() {
    // alice alone on a LAN, listening on every interface. Her host gains a
    // second address and loses it again, as a laptop joins and leaves a
    // network: invite keys follow.
    let lan = Lan::up(1);
    let h = lan.homes(&["alice"]);
    let _node = h[0].node(&["--listen", "/ip4/0.0.0.0/tcp/4610"]);
    let g = create(&h[0], "travellers");
    let (home_ip, extra) = (lan.ip(1), "10.231.77.1");
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(["-n", &lan.netns(1)])
            .args(args)
            .output()
            .expect("ip runs");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    };
    let has = |addrs: &[String], ip: &str| addrs.iter().any(|a| a.contains(&format!("/{ip}/")));
    converge(30, "the key offers the LAN address", || {
        has(&offered(&h[0], &g), &home_ip).then_some(())
    });
    ip(&["addr", "add", &format!("{extra}/24"), "dev", "eth0"]);
    converge(30, "the key offers the new address too", || {
        let now = offered(&h[0], &g);
        (has(&now, extra) && has(&now, &home_ip)).then_some(())
    });
    ip(&["addr", "del", &format!("{extra}/24"), "dev", "eth0"]);
    converge(30, "the key no longer offers the lost address", || {
        let now = offered(&h[0], &g);
        (!has(&now, extra) && has(&now, &home_ip)).then_some(())
    });
    let status = h[0].run(&["status", "--json"]).json();
    let listen: Vec<String> = status["listen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert!(!has(&listen, extra), "status still lists it: {listen:?}");
}

#[test]
fn a_member_who_leaves_is_shut_out_by_a_new_key_and_the_rest_carry_on() {
    // alice -- bob -- carol, one LAN, all in alice's group; carol leaves.
    let lan = Lan::up(3);
    let h = lan.homes(&["alice", "bob", "carol"]);
    let _nodes: Vec<NodeProc> = (0..3).map(|i| lan.start(&h[i], i + 1)).collect();
    let g = create(&h[0], "allotment");
    let key = invite(&h[0], &g, &["--uses", "2"]);
    for joiner in &h[1..] {
        joiner
            .run(&["group", "join", &key, "--timeout", "60s"])
            .out();
    }
    let epoch =
        |home: &TestHome| home.run(&["group", "show", &g, "--json"]).json()["epoch"].clone();
    converge(30, "everyone holds the first key", || {
        h.iter().all(|p| epoch(p) == 0).then_some(())
    });

    h[2].run(&["group", "leave", &g]).out();
    // alice's node, the group's only admin, starts a new epoch by itself,
    // and bob gets its key.
    converge(30, "bob hears of a new epoch", || {
        (epoch(&h[1]) == 1).then_some(())
    });
    assert_eq!(epoch(&h[0]), 1);
    let after = post(&h[0], &g, "after carol left");
    converge(30, "alice's post under the new key reaches bob", || {
        group_feed(&h[1], &g).contains(&after).then_some(())
    });
    let reply = post(&h[1], &g, "bob too");
    converge(30, "bob's post under the new key reaches alice", || {
        group_feed(&h[0], &g).contains(&reply).then_some(())
    });
    assert!(!group_feed(&h[2], &g).contains(&after));
    h[2].run(&["post", "--group", &g, "still here?"])
        .fails_with("not a member");
}
