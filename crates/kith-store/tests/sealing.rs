//! Sealing packs runs of stored changes into compressed blocks. Nothing a
//! reader can observe may change: feeds, edit history, documents after a
//! restart, export, sync, and the duplicate and equivocation checks.

mod support;

use std::collections::BTreeSet;

use kith_core::schema::feed;
use kith_core::{DocId, PostId, SpaceId};
use kith_store::{FeedQuery, IngestError, Store, VersionVector};
use support::{Author, snapshot, store};

/// Alice's feed: `posts` posts, every tenth edited, every 25th deleted.
fn alice_changes(alice: &mut Author, posts: usize) -> Vec<kith_core::SignedChange> {
    let doc = DocId::feed(alice.id(), SpaceId::PUBLIC, 0);
    let mut changes: Vec<_> = (0..posts)
        .map(|i| {
            alice.post(
                &format!("k{i}"),
                &format!("post number {i}, with some words"),
            )
        })
        .collect();
    for i in (0..posts).step_by(10) {
        changes.push(alice.change(doc, |d| {
            d.edit_post(&format!("k{i}"), &format!("post {i}, edited"))
                .unwrap()
        }));
    }
    for i in (5..posts).step_by(25) {
        changes.push(alice.change(doc, |d| feed::delete_post(d, &format!("k{i}")).unwrap()));
    }
    changes
}

/// What a reader sees: the index, every page of the feed, the history of
/// each edited post, and the export.
fn observe(store: &mut Store, alice: &Author, posts: usize) -> Vec<String> {
    let mut seen = snapshot(store).1;
    let all = store
        .feed(&FeedQuery {
            limit: 10_000,
            ..FeedQuery::default()
        })
        .unwrap();
    seen.extend(all.iter().map(|p| format!("{} {:?}", p.id, p.text)));
    let doc = DocId::feed(alice.id(), SpaceId::PUBLIC, 0);
    for i in (0..posts).step_by(10) {
        let id = PostId::derive(&doc, &format!("k{i}"));
        let texts: Vec<String> = store
            .history(&id)
            .unwrap()
            .into_iter()
            .map(|v| v.text)
            .collect();
        seen.push(format!("history {i}: {texts:?}"));
    }
    seen.push(format!("heads {:?}", store.doc_heads(&doc).unwrap()));
    let mut exported: Vec<Vec<u8>> = store
        .export()
        .unwrap()
        .changes
        .iter()
        .map(|c| c.encode())
        .collect();
    exported.sort();
    seen.push(format!(
        "export {} changes, {:?}",
        exported.len(),
        exported.concat().len()
    ));
    seen.extend(exported.iter().map(|c| format!("{c:?}")));
    seen
}

#[test]
fn sealed_changes_read_exactly_as_before() {
    let (dir, mut s) = store();
    let mut alice = Author::new(1);
    s.add_certificate(&alice.cert).unwrap();
    let posts = 300;
    let changes = alice_changes(&mut alice, posts);
    let total = changes.len();
    assert_eq!(s.ingest(changes.clone()).unwrap().applied, total);
    let before = observe(&mut s, &alice, posts);
    let counts_before = s.counts().unwrap();

    let mut sealed = 0;
    while let n @ 1.. = s.seal(2).unwrap() {
        sealed += n;
    }
    assert_eq!(sealed, total / 64, "every full run of 64 is sealed");
    assert_eq!(s.counts().unwrap(), counts_before);
    assert_eq!(observe(&mut s, &alice, posts), before);

    // After a restart, documents are rebuilt from the sealed blocks.
    drop(s);
    let mut s = Store::open(&dir.path().join("kith.redb")).unwrap();
    assert_eq!(observe(&mut s, &alice, posts), before);

    // Sync serves sealed changes like any others, from any point.
    let doc = DocId::feed(alice.id(), SpaceId::PUBLIC, 0);
    let everything = s
        .changes_since(&doc, &VersionVector::new(), None, usize::MAX)
        .unwrap();
    let feed_changes = total;
    assert_eq!(everything.changes.len(), feed_changes);
    let actor = kith_core::actor_id(&alice.device.id(), &alice.suffix)
        .to_bytes()
        .to_vec();
    let have = VersionVector::from([(actor, 100)]);
    let rest = s.changes_since(&doc, &have, None, usize::MAX).unwrap();
    assert_eq!(rest.changes.len(), feed_changes - 100);
    let expected: BTreeSet<Vec<u8>> = changes[100..].iter().map(|c| c.change.clone()).collect();
    let served: BTreeSet<Vec<u8>> = rest.changes.iter().map(|c| c.change.clone()).collect();
    assert_eq!(served, expected);

    // Sealed changes are still recognised as duplicates...
    let report = s.ingest(changes[..70].to_vec()).unwrap();
    assert_eq!((report.applied, report.duplicates), (0, 70));
    // ...and a different change claiming a sealed sequence number is equivocation.
    let mut twin = Author::new(1);
    let forged = twin.post("other", "a different first change");
    let report = s.ingest(vec![forged]).unwrap();
    assert!(
        matches!(report.rejected[..], [(0, IngestError::Equivocation { .. })]),
        "{report:?}"
    );
    assert_eq!(observe(&mut s, &alice, posts), before);
}

#[test]
fn compaction_seals_and_shrinks() {
    let (dir, mut s) = store();
    let mut alice = Author::new(2);
    s.add_certificate(&alice.cert).unwrap();
    let changes = alice_changes(&mut alice, 2000);
    s.ingest(changes).unwrap();
    let path = dir.path().join("kith.redb");
    let before = std::fs::metadata(&path).unwrap().len();
    let seen = observe(&mut s, &alice, 2000);
    assert!(s.compact().unwrap());
    assert_eq!(s.seal(1).unwrap(), 0, "compaction sealed every full run");
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(
        after * 3 < before * 2,
        "{before} B before, {after} B after: not a third smaller"
    );
    assert_eq!(observe(&mut s, &alice, 2000), seen);
}

#[test]
fn changes_waiting_for_dependencies_are_not_sealed() {
    // Device B of alice writes 70 posts on top of one from device A; B's
    // changes arrive first and wait, with B's clock already at 70.
    let (_dir, mut s) = store();
    let mut a = Author::new(3);
    let mut b = Author::device_of(kith_core::IdentityKey::from_secret_bytes(&[3; 32]), 33);
    s.add_certificate(&a.cert).unwrap();
    s.add_certificate(&b.cert).unwrap();
    let doc = DocId::feed(a.id(), SpaceId::PUBLIC, 0);
    let first = a.post("a0", "from device A");
    let parsed = automerge::Change::from_bytes(first.change.clone()).unwrap();
    b.doc(doc).apply_changes(vec![parsed]).unwrap();
    let later: Vec<_> = (0..70)
        .map(|i| b.post(&format!("b{i}"), &format!("from device B, {i}")))
        .collect();
    let report = s.ingest(later).unwrap();
    assert_eq!((report.applied, report.pending), (0, 70));
    assert_eq!(s.seal(10).unwrap(), 0, "waiting changes stay unsealed");

    let report = s.ingest(vec![first]).unwrap();
    assert_eq!(report.applied, 71, "{report:?}");
    assert_eq!(s.counts().unwrap().pending, 0);
    assert_eq!(
        s.seal(10).unwrap(),
        1,
        "now applied, B's first 64 are sealed"
    );
    let feed = s
        .feed(&FeedQuery {
            limit: 100,
            ..FeedQuery::default()
        })
        .unwrap();
    assert_eq!(feed.len(), 71);
    assert!(feed.iter().all(|p| p.text.is_some()));
}

#[test]
fn tidying_seals_and_gives_free_space_back_once() {
    let (_dir, mut s) = store();
    let mut alice = Author::new(4);
    s.add_certificate(&alice.cert).unwrap();
    s.ingest(alice_changes(&mut alice, 2000)).unwrap();
    let seen = observe(&mut s, &alice, 2000);
    let (before, after) = s
        .tidy(0)
        .unwrap()
        .expect("a freshly sealed store is worth compacting");
    assert!(after < before, "{before} B before, {after} B after");
    assert_eq!(s.seal(1).unwrap(), 0, "everything was sealed");
    assert_eq!(s.tidy(0).unwrap(), None, "nothing more to give back");
    assert_eq!(
        s.tidy(u64::MAX).unwrap(),
        None,
        "below the size worth compacting"
    );
    assert_eq!(observe(&mut s, &alice, 2000), seen);
    // Four times the history again, unsealed: the next tidy seals it, and
    // the rows it took are most of the file, so it is given back.
    let mut bob = Author::new(5);
    s.add_certificate(&bob.cert).unwrap();
    s.ingest(alice_changes(&mut bob, 8000)).unwrap();
    let counts = s.counts().unwrap();
    let seen = observe(&mut s, &alice, 2000);
    let (before, after) = s.tidy(0).unwrap().expect("new history sealed");
    assert!(after < before, "{before} B before, {after} B after");
    assert_eq!(s.seal(1).unwrap(), 0, "everything was sealed");
    assert_eq!(s.tidy(0).unwrap(), None, "nothing more to give back");
    assert_eq!(s.counts().unwrap(), counts);
    assert!(
        observe(&mut s, &alice, 2000) == seen,
        "tidying changed what the store holds"
    );
}
