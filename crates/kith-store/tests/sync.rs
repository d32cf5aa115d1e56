//! Catch-up between two stores through version vectors: exactly the missing
//! signed changes move, in an order that applies without waiting, and
//! private documents reach only their owner's devices.

mod support;

use std::collections::BTreeSet;

use kith_core::DocId;
use kith_store::{Store, VersionVector};
use support::{Author, store};

/// Pulls every document of `owners` from `from` into `to`, `max_bytes` at a
/// time, as the sync protocol does; returns how many changes moved.
fn pull(
    to: &mut Store,
    from: &Store,
    owners: &BTreeSet<kith_core::IdentityId>,
    asker: Option<kith_core::IdentityId>,
    max_bytes: usize,
) -> usize {
    let mut moved = 0;
    for (doc, _) in from
        .versions(owners, &BTreeSet::new(), &BTreeSet::new(), asker)
        .unwrap()
    {
        loop {
            let have: VersionVector = to
                .versions(owners, &BTreeSet::new(), &BTreeSet::new(), asker)
                .unwrap()
                .into_iter()
                .find(|(d, _)| *d == doc)
                .map(|(_, v)| v)
                .unwrap_or_default();
            let batch = from.changes_since(&doc, &have, asker, max_bytes).unwrap();
            for cert in &batch.certificates {
                to.add_certificate(cert).unwrap();
            }
            moved += batch.changes.len();
            let report = to.ingest(batch.changes).unwrap();
            assert!(report.rejected.is_empty(), "{report:?}");
            assert_eq!(report.pending, 0, "batches arrive in an order that applies");
            if !batch.more {
                break;
            }
        }
    }
    moved
}

fn alice_store(posts: usize) -> (tempfile::TempDir, Store, Author) {
    let (dir, mut s) = store();
    let mut alice = Author::new(1);
    s.add_certificate(&alice.cert).unwrap();
    let mut changes: Vec<_> = (0..posts)
        .map(|i| alice.post(&format!("k{i}"), &format!("post number {i}")))
        .collect();
    let feed = DocId::feed(alice.id(), kith_core::SpaceId::PUBLIC, 0);
    changes.push(alice.change(feed, |d| d.edit_post("k3", "edited").unwrap()));
    changes.push(alice.change(DocId::profile(alice.id()), |d| {
        kith_core::schema::profile::set_name(d, "Alice").unwrap()
    }));
    let me = alice.id();
    changes.push(alice.change(DocId::private(alice.id()), |d| {
        kith_core::schema::labels::add(d, &me, "self").unwrap()
    }));
    assert_eq!(s.ingest(changes).unwrap().applied, posts + 3);
    (dir, s, alice)
}

#[test]
fn a_fresh_replica_catches_up_in_small_batches() {
    let (_a, alice_store, alice) = alice_store(60);
    let (_b, mut bob_store) = store();
    let owners = BTreeSet::from([alice.id()]);
    let moved = pull(&mut bob_store, &alice_store, &owners, None, 600);
    assert_eq!(
        moved, 62,
        "60 posts, an edit and a profile; not the private document"
    );
    let public = |s: &Store| -> Vec<String> {
        s.index_dump()
            .unwrap()
            .into_iter()
            .filter(|l| !l.starts_with("label"))
            .collect()
    };
    assert_eq!(public(&bob_store), public(&alice_store));
    assert_eq!(bob_store.counts().unwrap().pending, 0);
    // Nothing more to move.
    assert_eq!(pull(&mut bob_store, &alice_store, &owners, None, 600), 0);
}

#[test]
fn a_partial_replica_receives_only_what_it_lacks() {
    let (_a, full, mut alice) = alice_store(30);
    let (_b, mut partial) = store();
    partial.add_certificate(&alice.cert).unwrap();
    let owners = BTreeSet::from([alice.id()]);
    pull(&mut partial, &full, &owners, None, usize::MAX);
    // alice writes five more posts; the partial replica needs exactly those.
    let (_c, mut newer) = store();
    pull(&mut newer, &full, &owners, None, usize::MAX);
    newer.add_certificate(&alice.cert).unwrap();
    let more: Vec<_> = (0..5)
        .map(|i| alice.post(&format!("n{i}"), "newer"))
        .collect();
    newer.ingest(more).unwrap();
    assert_eq!(pull(&mut partial, &newer, &owners, None, usize::MAX), 5);
    assert_eq!(partial.index_dump().unwrap(), newer.index_dump().unwrap());
}

#[test]
fn private_documents_reach_only_their_owners_devices() {
    let (_a, s, alice) = alice_store(5);
    let owners = BTreeSet::from([alice.id()]);
    let private = DocId::private(alice.id());
    let bob = Author::new(2);
    let to_bob = s
        .versions(&owners, &BTreeSet::new(), &BTreeSet::new(), Some(bob.id()))
        .unwrap();
    assert!(to_bob.iter().all(|(d, _)| *d != private));
    assert!(
        s.changes_since(&private, &VersionVector::new(), Some(bob.id()), usize::MAX)
            .unwrap()
            .changes
            .is_empty()
    );
    let to_alice = s
        .versions(
            &owners,
            &BTreeSet::new(),
            &BTreeSet::new(),
            Some(alice.id()),
        )
        .unwrap();
    assert!(to_alice.iter().any(|(d, _)| *d == private));
    assert_eq!(
        s.changes_since(
            &private,
            &VersionVector::new(),
            Some(alice.id()),
            usize::MAX
        )
        .unwrap()
        .changes
        .len(),
        1
    );
}

#[test]
fn version_vectors_stop_at_the_first_gap() {
    let (_b, mut s) = store();
    let mut alice = Author::new(1);
    s.add_certificate(&alice.cert).unwrap();
    let c: Vec<_> = (0..4).map(|i| alice.post(&format!("k{i}"), "x")).collect();
    s.ingest(vec![c[0].clone(), c[1].clone(), c[3].clone()])
        .unwrap();
    let owners = BTreeSet::from([alice.id()]);
    let vv = |s: &Store| {
        s.versions(&owners, &BTreeSet::new(), &BTreeSet::new(), None)
            .unwrap()[0]
            .1
            .values()
            .copied()
            .collect::<Vec<_>>()
    };
    assert_eq!(vv(&s), [2]);
    s.ingest(vec![c[2].clone()]).unwrap();
    assert_eq!(vv(&s), [4]);
}

#[test]
fn buffered_network_ingest_is_durable_after_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.redb");
    let mut alice = Author::new(1);
    let changes: Vec<_> = (0..5)
        .map(|i| alice.post(&format!("k{i}"), "buffered"))
        .collect();
    {
        let mut s = Store::open(&path).unwrap();
        let report = s
            .ingest_buffered(std::slice::from_ref(&alice.cert), changes)
            .unwrap();
        assert_eq!(report.applied, 5);
        assert_eq!(
            s.counts().unwrap().posts,
            5,
            "visible at once, before any flush"
        );
        s.flush().unwrap();
    }
    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.counts().unwrap().posts, 5);
    assert_eq!(
        reopened.identity_of(&alice.device.id()).unwrap(),
        Some(alice.id())
    );
}
