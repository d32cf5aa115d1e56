//! Delete erases, with real nodes on loopback (127.0.0.1, mDNS off): after
//! `kith delete`, no node that has heard of the deletion keeps or serves any
//! version of the post's text: not in its store files, not in its exports,
//! not to a follower who arrives later; and a node that was offline during
//! the deletion erases the text when it catches up.

use std::path::Path;

use kith_tests::{NodeProc, TestHome, converge};

const LOOPBACK: &[&str] = &["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
const FIRST: &str = "first words that have to vanish 7f3a";
const SECOND: &str = "edited words that have to vanish c91e";

/// What `home` shows of `post` (`kith show --json`), once it has it.
fn shown(home: &TestHome, post: &str) -> Option<serde_json::Value> {
    let run = home.run(&["show", post, "--json"]);
    run.ok.then(|| run.json()["post"].clone())
}

fn wait_shown(home: &TestHome, post: &str, what: &str, f: impl Fn(&serde_json::Value) -> bool) {
    converge(60, what, || shown(home, post).filter(|p| f(p)).map(|_| ()));
}

/// Every file under `dir` that holds either text.
fn files_holding_text(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                for text in [FIRST, SECOND] {
                    if bytes.windows(text.len()).any(|w| w == text.as_bytes()) {
                        found.push(format!("{} holds {text:?}", path.display()));
                    }
                }
            }
        }
    }
    found
}

/// `home`'s full export, through its node, as bytes.
fn export(home: &TestHome) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.kith");
    home.run(&["export", file.to_str().unwrap()]).out();
    std::fs::read(&file).unwrap()
}

fn holds_text(bytes: &[u8]) -> bool {
    [FIRST, SECOND]
        .iter()
        .any(|t| bytes.windows(t.len()).any(|w| w == t.as_bytes()))
}

fn follower_of(alice: &TestHome, alice_node: &NodeProc, name: &str) -> (TestHome, NodeProc) {
    let home = TestHome::init(name);
    home.run(&["follow", &alice.id()]).out();
    let node = home.node(&[LOOPBACK, &["--peer", &alice_node.addr()]].concat());
    (home, node)
}

#[test]
fn a_deleted_post_is_erased_by_every_node_that_hears_of_it() {
    // alice -- bob (online throughout)
    //       -- dave (offline during the deletion, back afterwards)
    //       -- carol (follows alice only after the deletion)
    let alice = TestHome::init("alice");
    let alice_node = alice.node(LOOPBACK);
    let (bob, bob_node) = follower_of(&alice, &alice_node, "bob");
    let (dave, dave_node) = follower_of(&alice, &alice_node, "dave");

    let post = alice.run(&["post", FIRST]).out().to_owned();
    alice.run(&["edit", &post, SECOND]).out();
    for (home, name) in [(&bob, "bob"), (&dave, "dave")] {
        wait_shown(home, &post, &format!("the edit reaches {name}"), |p| {
            p["text"] == SECOND
        });
        let history = home.run(&["show", &post, "--history", "--json"]).json();
        assert_eq!(
            history["history"].as_array().unwrap().len(),
            2,
            "{name}: {history}"
        );
    }
    assert!(
        holds_text(&export(&bob)),
        "before the deletion, bob's export has the text"
    );
    dave_node.stop();

    alice.run(&["delete", &post]).out();
    wait_shown(&bob, &post, "the deletion reaches bob", |p| {
        p["deleted"] == true
    });
    assert_eq!(shown(&bob, &post).unwrap()["text"], serde_json::Value::Null);
    let history = bob.run(&["show", &post, "--history", "--json"]).json();
    assert_eq!(history["history"], serde_json::json!([]));
    assert!(
        !holds_text(&export(&bob)),
        "bob's export holds no version of the text"
    );
    assert!(!holds_text(&export(&alice)), "nor does alice's");

    // carol arrives after the deletion: she gets the signed history, which
    // verifies, and no text.
    let (carol, carol_node) = follower_of(&alice, &alice_node, "carol");
    wait_shown(&carol, &post, "carol catches up", |p| p["deleted"] == true);
    assert!(!holds_text(&export(&carol)));

    // dave was offline: his node still has the text until it catches up.
    assert!(
        !files_holding_text(&dave.dir).is_empty(),
        "dave's store held the text"
    );
    let dave_node = dave.node(&[LOOPBACK, &["--peer", &alice_node.addr()]].concat());
    wait_shown(&dave, &post, "dave catches up on the deletion", |p| {
        p["deleted"] == true
    });
    assert!(!holds_text(&export(&dave)));

    // Stopped, every node has scrubbed its store file: no byte of either
    // text is left in any file of any home.
    for node in [alice_node, bob_node, carol_node, dave_node] {
        node.stop();
    }
    for home in [&alice, &bob, &carol, &dave] {
        assert_eq!(files_holding_text(&home.dir), Vec::<String>::new());
    }
}
