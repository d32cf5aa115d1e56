//! Delete erases (proto/README.md §9.1, *Bodies*): once a store has applied
//! a post's deletion it holds no body of any of the post's versions, serves
//! none (sync, export), and takes none back, whatever order changes come in;
//! the signed history it keeps still verifies.

mod support;

use kith_core::schema::feed;
use kith_core::sync::VersionVector;
use kith_core::{DocId, PostId, SignedChange, SpaceId};
use kith_store::{LocalSigner, Store};
use support::{Author, store};

const FIRST: &str = "the first text, meant to be erased";
const SECOND: &str = "the second text, erased with it";

/// alice's post, its edit and its deletion: three changes of her feed.
fn posted_edited_deleted(alice: &mut Author) -> (DocId, PostId, [SignedChange; 3]) {
    let doc = DocId::feed(alice.id(), SpaceId::PUBLIC, 0);
    let made = alice.post("k", FIRST);
    let edited = alice.change(doc, |d| d.edit_post("k", SECOND).unwrap());
    let deleted = alice.change(doc, |d| feed::delete_post(d, "k").unwrap());
    (doc, PostId::derive(&doc, "k"), [made, edited, deleted])
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// Every change of `doc` that `s` would send someone who has none.
fn served(s: &Store, doc: &DocId) -> Vec<SignedChange> {
    s.changes_since(doc, &VersionVector::new(), None, usize::MAX)
        .unwrap()
        .changes
}

#[test]
fn a_deletion_drops_the_body_of_every_version_and_the_store_serves_none() {
    let mut alice = Author::new(1);
    let (doc, post, [made, edited, deleted]) = posted_edited_deleted(&mut alice);
    assert_eq!(made.bodies.len(), 1, "a post travels with its body");
    assert!(!holds(&made.change, FIRST), "the text is not in the change");

    let (_dir, mut bob) = store();
    bob.add_certificate(&alice.cert).unwrap();
    let report = bob.ingest(vec![made, edited]).unwrap();
    assert_eq!(
        (report.applied, report.rejected.len()),
        (2, 0),
        "{report:?}"
    );
    assert_eq!(
        bob.post(&post).unwrap().unwrap().text.as_deref(),
        Some(SECOND)
    );
    let history: Vec<_> = bob
        .history(&post)
        .unwrap()
        .into_iter()
        .map(|v| v.text)
        .collect();
    assert_eq!(
        history,
        [FIRST, SECOND],
        "the edit history is kept while the post lives"
    );
    let before = served(&bob, &doc);
    assert_eq!(before.iter().map(|c| c.bodies.len()).sum::<usize>(), 2);

    bob.ingest(vec![deleted]).unwrap();
    let view = bob
        .post(&post)
        .unwrap()
        .expect("a deleted post still answers");
    assert_eq!(view.text, None);
    assert!(bob.history(&post).unwrap().is_empty());
    assert_eq!(bob.current_body(&post).unwrap(), None);
    let after = served(&bob, &doc);
    assert_eq!(
        after.len(),
        3,
        "the history stays: every change is still served"
    );
    for c in &after {
        assert!(c.bodies.is_empty(), "no body is served after the deletion");
        assert!(!holds(&c.encode(), FIRST) && !holds(&c.encode(), SECOND));
    }
    let export = bob.export().unwrap().encode();
    assert!(
        !holds(&export, FIRST) && !holds(&export, SECOND),
        "nor exported"
    );

    // Someone who follows alice later gets the history, which verifies,
    // and no text.
    let (_dir, mut carol) = store();
    carol.add_certificate(&alice.cert).unwrap();
    let report = carol.ingest(after).unwrap();
    assert_eq!(
        (report.applied, report.rejected.len()),
        (3, 0),
        "{report:?}"
    );
    let view = carol.post(&post).unwrap().unwrap();
    assert_eq!(view.text, None);
    assert!(carol.history(&post).unwrap().is_empty());
}

#[test]
fn bodies_that_arrive_after_the_deletion_are_not_kept() {
    let mut alice = Author::new(1);
    let (_, post, [made, edited, deleted]) = posted_edited_deleted(&mut alice);
    let (_dir, mut bob) = store();
    bob.add_certificate(&alice.cert).unwrap();
    // The deletion arrives before the edit it depends on: it waits. Then
    // the edit arrives with its body, and both apply in one batch.
    bob.ingest(vec![made.clone()]).unwrap();
    let report = bob.ingest(vec![deleted]).unwrap();
    assert_eq!(report.pending, 1, "{report:?}");
    bob.ingest(vec![edited]).unwrap();
    assert_eq!(bob.post(&post).unwrap().unwrap().text, None);
    assert_eq!(bob.current_body(&post).unwrap(), None);
    // A node that has not heard of the deletion sends the post again,
    // body and all: a duplicate, whose body is not taken back.
    let report = bob.ingest(vec![made]).unwrap();
    assert_eq!(report.duplicates, 1);
    assert!(bob.history(&post).unwrap().is_empty());
    let export = bob.export().unwrap().encode();
    assert!(!holds(&export, FIRST) && !holds(&export, SECOND));
}

#[test]
fn a_change_that_came_without_its_body_takes_it_from_a_later_copy() {
    let mut alice = Author::new(1);
    let made = alice.post("k", FIRST);
    let post = PostId::derive(&DocId::feed(alice.id(), SpaceId::PUBLIC, 0), "k");
    let mut stripped = made.clone();
    stripped.bodies.clear();
    let (_dir, mut bob) = store();
    bob.add_certificate(&alice.cert).unwrap();
    let report = bob.ingest(vec![stripped]).unwrap();
    assert_eq!(report.applied, 1, "a change stands without its body");
    assert_eq!(bob.post(&post).unwrap().unwrap().text, None);
    // A body the change does not name is not kept.
    let mut wrong = made.clone();
    wrong.bodies = vec![kith_core::Body::new(FIRST).unwrap().into_bytes()];
    bob.ingest(vec![wrong]).unwrap();
    assert_eq!(bob.post(&post).unwrap().unwrap().text, None);
    // The change again, with its own body.
    bob.ingest(vec![made]).unwrap();
    assert_eq!(
        bob.post(&post).unwrap().unwrap().text.as_deref(),
        Some(FIRST)
    );
}

#[test]
fn a_local_deletion_erases_what_the_journal_and_the_store_file_held() {
    local_deletion(false);
}

#[test]
fn a_deletion_erases_a_body_sealed_with_its_run_of_changes() {
    local_deletion(true);
}

/// alice's post among 300 others, edited, then deleted; with `seal`, the
/// runs of changes are sealed (their bodies compressed with them) first.
fn local_deletion(seal: bool) {
    let alice = Author::new(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.redb");
    let mut s = Store::open(&path).unwrap();
    s.add_certificate(&alice.cert).unwrap();
    let signer = LocalSigner {
        key: &alice.device,
        author: alice.id(),
    };
    let doc = DocId::feed(alice.id(), SpaceId::PUBLIC, 0);
    let post = PostId::derive(&doc, "k");
    s.begin_session().unwrap();
    // Posts around the one deleted, so that its pages sit inside the file.
    for i in 0..150 {
        s.commit_local(doc, signer, i, |d| {
            d.create_post(
                &format!("a{i}"),
                &format!("an earlier post, number {i}"),
                i,
                None,
            )
        })
        .unwrap();
    }
    s.commit_local(doc, signer, 200, |d| d.create_post("k", FIRST, 200, None))
        .unwrap();
    s.commit_local(doc, signer, 201, |d| d.edit_post("k", SECOND))
        .unwrap();
    for i in 0..150 {
        s.commit_local(doc, signer, 300 + i, |d| {
            d.create_post(
                &format!("b{i}"),
                &format!("a later post, number {i}"),
                300 + i,
                None,
            )
        })
        .unwrap();
    }
    s.sync_local().unwrap();
    s.flush().unwrap();
    if seal {
        // Runs of 64 changes are sealed with their bodies (the deleted
        // post's among them): erasing rewrites their block.
        assert!(s.seal(100).unwrap() >= 4);
    }
    s.commit_local(doc, signer, 500, |d| d.edit_post("a1", "edited once more"))
        .unwrap();
    s.sync_local().unwrap();
    assert!(
        holds(&std::fs::read(&path).unwrap(), FIRST),
        "the file holds the post"
    );
    assert!(!s.scrub_due());

    s.commit_local(doc, signer, 600, |d| feed::delete_post(d, "k"))
        .unwrap();
    s.sync_local().unwrap();
    let journal = std::fs::read(path.with_extension("journal")).unwrap();
    assert!(
        !holds(&journal, FIRST) && !holds(&journal, SECOND),
        "a deletion checkpoints, so the journal no longer holds the bodies"
    );
    assert_eq!(s.post(&post).unwrap().unwrap().text, None);
    // The bodies' rows are gone, their bytes not yet: redb leaves a freed
    // page as it was. The scrub compacts the file once it is due.
    let now = std::time::Instant::now();
    assert!(s.scrub_due());
    assert!(!s.scrub_if_due(now).unwrap(), "not before its delay");
    assert!(s.scrub_if_due(now + kith_store::SCRUB_DELAY).unwrap());
    assert!(!s.scrub_due());
    let file = std::fs::read(&path).unwrap();
    assert!(
        !holds(&file, FIRST) && !holds(&file, SECOND),
        "after the scrub, no byte of either text is left in the store file"
    );
    // The rest is still there, sealed or not.
    for (key, text) in [
        ("a0", "an earlier post, number 0"),
        ("a63", "an earlier post, number 63"),
        ("b0", "a later post, number 0"),
        ("b149", "a later post, number 149"),
        ("a1", "edited once more"),
    ] {
        let id = PostId::derive(&doc, key);
        assert_eq!(s.post(&id).unwrap().unwrap().text.as_deref(), Some(text));
    }
    let history: Vec<_> = s
        .history(&PostId::derive(&doc, "a1"))
        .unwrap()
        .into_iter()
        .map(|v| v.text)
        .collect();
    assert_eq!(history, ["an earlier post, number 1", "edited once more"]);
    s.end_session().unwrap();
    drop(s);
    // What the node serves after a restart.
    let s = Store::open(&path).unwrap();
    assert!(served(&s, &doc).iter().all(|c| c.bodies.len() <= 1));
    assert!(s.history(&post).unwrap().is_empty());
    assert_eq!(s.feed(&kith_store::FeedQuery::default()).unwrap().len(), 20);
}

/// A post as kith wrote them before bodies: its text inline in the change.
fn legacy_post(alice: &mut Author, key: &str, text: &str) -> SignedChange {
    use automerge::transaction::Transactable;
    let doc = DocId::feed(alice.id(), SpaceId::PUBLIC, 0);
    alice.change(doc, |d| {
        let obj = d
            .put_object(automerge::ROOT, format!("p/{key}"), automerge::ObjType::Map)
            .unwrap();
        d.put(&obj, "text", text).unwrap();
        d.put(&obj, "at", 5_i64).unwrap();
    })
}

#[test]
fn a_store_from_before_bodies_opens_and_reads_its_posts_inline() {
    let mut alice = Author::new(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.redb");
    let old = legacy_post(&mut alice, "old", "written before bodies");
    {
        let mut s = Store::open(&path).unwrap();
        s.add_certificate(&alice.cert).unwrap();
        s.ingest(vec![old.clone()]).unwrap();
    }
    // Make it a layout-2 store, as the previous kith left it: no bodies
    // table, schema 2.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(redb::TableDefinition::<&[u8; 20], &[u8]>::new("bodies_v1"))
            .unwrap();
        {
            let meta = redb::TableDefinition::<&str, &[u8]>::new("meta_v1");
            let mut meta = txn.open_table(meta).unwrap();
            meta.insert("schema", 2u32.to_be_bytes().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let mut s = Store::open(&path).expect("a layout-2 store opens");
    let post = PostId::derive(&DocId::feed(alice.id(), SpaceId::PUBLIC, 0), "old");
    assert_eq!(
        s.post(&post).unwrap().unwrap().text.as_deref(),
        Some("written before bodies")
    );
    // New posts get bodies beside the old ones.
    let new = alice.post("new", FIRST);
    s.ingest(vec![new]).unwrap();
    let new_post = PostId::derive(&DocId::feed(alice.id(), SpaceId::PUBLIC, 0), "new");
    assert_eq!(
        s.post(&new_post).unwrap().unwrap().text.as_deref(),
        Some(FIRST)
    );
    // An old post, deleted, is hidden; its text stays in its first change
    // (proto/README.md §9.1: it cannot be erased without breaking it).
    let doc = DocId::feed(alice.id(), SpaceId::PUBLIC, 0);
    let deleted = alice.change(doc, |d| feed::delete_post(d, "old").unwrap());
    s.ingest(vec![deleted]).unwrap();
    assert_eq!(s.post(&post).unwrap().unwrap().text, None);
    assert!(s.history(&post).unwrap().is_empty());
    assert!(served(&s, &doc).iter().any(|c| c.change == old.change));
}
