//! Groups in the store: only members' changes get into a group's documents,
//! only members receive them, and a removed member's later changes are
//! refused while what it wrote before stays.

mod support;

use std::collections::BTreeSet;

use automerge::AutoCommit;
use kith_core::group::{self, Record, Role};
use kith_core::{DocId, InviteKey, SpaceId, actor_id};
use kith_store::{IngestError, LocalSigner, VersionVector};
use support::{Author, store};

struct Group {
    id: SpaceId,
    control: DocId,
    key: InviteKey,
}

/// A store that certifies alice and bob, and the changes by which alice
/// creates a group and admits bob (not yet ingested).
fn alice_admits_bob() -> (
    tempfile::TempDir,
    kith_store::Store,
    Author,
    Author,
    Group,
    Vec<kith_core::SignedChange>,
) {
    let (dir, mut s) = store();
    let (mut alice, bob) = (Author::new(1), Author::new(2));
    for a in [&alice, &bob] {
        s.add_certificate(&a.cert).unwrap();
    }
    let (g, mut changes) = create(&mut alice);
    changes.push(admit(&mut alice, &g, &bob));
    (dir, s, alice, bob, g, changes)
}

/// alice creates a group and an invite for up to 5 people.
fn create(alice: &mut Author) -> (Group, Vec<kith_core::SignedChange>) {
    let nonce = [7; 16];
    let id = group::group_id(&alice.id(), &nonce);
    let control = DocId::group_control(id);
    let key = InviteKey {
        group: id,
        secret: [9; 32],
        addresses: vec![],
    };
    let creator = alice.id();
    let genesis = alice.change(control, |d| {
        Record::Genesis { creator, nonce }.write(d).unwrap();
        Record::Info {
            name: "suppliers and us".into(),
            about: String::new(),
        }
        .write(d)
        .unwrap();
    });
    let public_key = key.public_key();
    let invite = alice.change(control, |d| {
        Record::Invite {
            public_key,
            expires_at_ms: u64::MAX,
            uses: 5,
            role: Role::Member,
        }
        .write(d)
        .unwrap()
    });
    (
        Group {
            id: control.space,
            control,
            key,
        },
        vec![genesis, invite],
    )
}

fn admit(alice: &mut Author, g: &Group, who: &Author) -> kith_core::SignedChange {
    let (identity, invite, proof) = (who.id(), g.key.public_key(), g.key.prove(&who.id()));
    alice.change(g.control, |d| {
        Record::Join {
            identity,
            invite,
            proof,
        }
        .write(d)
        .unwrap()
    })
}

fn group_post(author: &mut Author, g: &Group, key: &str, text: &str) -> kith_core::SignedChange {
    let doc = DocId::feed(author.id(), g.id, 0);
    let at = author.clock as u64;
    author.change(doc, |d| d.create_post(key, text, at, None).unwrap())
}

/// Gives `who` a copy of `from`'s control document, to write on.
fn copy_control(who: &mut Author, from: &Author, g: &Group) {
    let actor = actor_id(&who.device.id(), &who.suffix);
    let copy: AutoCommit = from.docs[&g.control].clone().with_actor(actor);
    who.docs.insert(g.control, copy);
}

fn is_group_refusal(e: &IngestError) -> bool {
    matches!(e, IngestError::Group { .. })
}

#[test]
fn only_members_write_and_only_members_receive() {
    let (_dir, mut s) = store();
    let (mut alice, mut bob, mut carol) = (Author::new(1), Author::new(2), Author::new(3));
    for a in [&alice, &bob, &carol] {
        s.add_certificate(&a.cert).unwrap();
    }
    let (g, mut changes) = create(&mut alice);
    changes.push(admit(&mut alice, &g, &bob));
    let report = s.ingest(changes).unwrap();
    assert_eq!(
        (report.applied, report.rejected.len()),
        (3, 0),
        "{report:?}"
    );

    let state = s
        .group(&g.id)
        .unwrap()
        .expect("the control document is here");
    assert_eq!(state.name, "suppliers and us");
    assert!(state.is_admin(&alice.id()));
    assert_eq!(state.role(&bob.id()), Some(Role::Member));
    assert!(!state.is_member(&carol.id()));

    // bob's post is in; carol's, in the same batch, is not.
    let bobs = group_post(&mut bob, &g, "b1", "hello from bob");
    let carols = group_post(&mut carol, &g, "c1", "let me in");
    let report = s.ingest(vec![bobs, carols]).unwrap();
    assert_eq!(report.applied, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].0, 1);
    assert!(is_group_refusal(&report.rejected[0].1), "{report:?}");
    assert!(
        !report.rejected[0].1.blames_relay(),
        "a relay may pass on a post that arrives before its author's admission"
    );
    let q = kith_store::FeedQuery {
        space: g.id,
        ..Default::default()
    };
    let feed: Vec<_> = s.feed(&q).unwrap().into_iter().map(|p| p.text).collect();
    assert_eq!(feed, vec![Some("hello from bob".to_owned())]);
    assert!(
        s.feed(&kith_store::FeedQuery::default())
            .unwrap()
            .is_empty(),
        "group posts stay out of the public feed"
    );

    // carol, holding a copy of the log, tries to admit herself and rename
    // the group: she is not a member where she writes, so it is refused.
    copy_control(&mut carol, &alice, &g);
    let carol_id = carol.id();
    let proof = g.key.prove(&carol_id);
    let invite = g.key.public_key();
    let forged = carol.change(g.control, |d| {
        Record::Join {
            identity: carol_id,
            invite,
            proof,
        }
        .write(d)
        .unwrap()
    });
    let report = s.ingest(vec![forged]).unwrap();
    assert!(
        is_group_refusal(&report.rejected[0].1),
        "{:?}",
        report.rejected
    );
    assert!(!s.group(&g.id).unwrap().unwrap().is_member(&carol.id()));

    // Sync: members get the control document and the members' feeds;
    // carol gets nothing, asked either way.
    let groups = BTreeSet::from([g.id]);
    let none = BTreeSet::new();
    let for_bob = s.versions(&none, &none, &groups, Some(bob.id())).unwrap();
    let docs: BTreeSet<DocId> = for_bob.iter().map(|(d, _)| *d).collect();
    assert_eq!(
        docs,
        BTreeSet::from([g.control, DocId::feed(bob.id(), g.id, 0)])
    );
    assert!(
        s.versions(&none, &none, &groups, Some(carol.id()))
            .unwrap()
            .is_empty()
    );
    let owners = BTreeSet::from([bob.id(), alice.id()]);
    let public_view = s
        .versions(&owners, &none, &BTreeSet::new(), Some(carol.id()))
        .unwrap();
    assert!(
        public_view.iter().all(|(d, _)| d.space.is_public()),
        "asking for bob's documents does not reveal his group feed: {public_view:?}"
    );
    for doc in [g.control, DocId::feed(bob.id(), g.id, 0)] {
        let batch = s
            .changes_since(&doc, &VersionVector::new(), Some(carol.id()), 1 << 20)
            .unwrap();
        assert!(batch.changes.is_empty(), "carol got changes of {doc}");
        let batch = s
            .changes_since(&doc, &VersionVector::new(), Some(bob.id()), 1 << 20)
            .unwrap();
        assert!(!batch.changes.is_empty(), "bob gets {doc}");
    }

    // Locally too, a non-member cannot post into the group.
    let signer = LocalSigner {
        key: &carol.device,
        author: carol.id(),
    };
    let err = s
        .commit_local(DocId::feed(carol.id(), g.id, 0), signer, 1, |d| {
            d.create_post("x", "hi", 1, None)
        })
        .unwrap_err();
    assert!(err.to_string().contains("not a member"), "{err}");
}

#[test]
fn a_removed_member_keeps_its_past_and_loses_its_future() {
    let (_dir, mut s, mut alice, mut bob, g, mut changes) = alice_admits_bob();
    changes.push(group_post(&mut bob, &g, "b1", "before"));
    let report = s.ingest(changes).unwrap();
    assert_eq!(
        report.rejected,
        vec![],
        "the admission and the post arrive together"
    );

    let cutoff = s.group_feed_clock(&g.id, &bob.id()).unwrap();
    assert_eq!(cutoff.len(), 1, "bob's one device");
    let bob_id = bob.id();
    let removal = alice.change(g.control, |d| {
        Record::Remove {
            identity: bob_id,
            cutoff: cutoff.clone(),
        }
        .write(d)
        .unwrap()
    });
    // bob, not knowing yet, posts again.
    let after = group_post(&mut bob, &g, "b2", "after");
    let report = s.ingest(vec![removal, after]).unwrap();
    assert_eq!(report.applied, 1);
    assert!(is_group_refusal(&report.rejected[0].1));
    let state = s.group(&g.id).unwrap().unwrap();
    assert!(!state.is_member(&bob.id()));
    assert!(state.removed.contains_key(&bob.id()));
    let q = kith_store::FeedQuery {
        space: g.id,
        ..Default::default()
    };
    let texts: Vec<_> = s.feed(&q).unwrap().into_iter().map(|p| p.text).collect();
    assert_eq!(texts, vec![Some("before".to_owned())]);

    // bob, having seen his removal, can no longer write the log either.
    copy_control(&mut bob, &alice, &g);
    let renamed = bob.change(g.control, |d| {
        Record::Info {
            name: "bob's now".into(),
            about: String::new(),
        }
        .write(d)
        .unwrap()
    });
    let report = s.ingest(vec![renamed]).unwrap();
    assert!(is_group_refusal(&report.rejected[0].1));
    // And he receives nothing of the group any more.
    let groups = BTreeSet::from([g.id]);
    let none = BTreeSet::new();
    assert!(
        s.versions(&none, &none, &groups, Some(bob.id()))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn membership_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.redb");
    let (mut alice, bob) = (Author::new(1), Author::new(2));
    let g = {
        let mut s = kith_store::Store::open(&path).unwrap();
        s.add_certificate(&alice.cert).unwrap();
        let (g, mut changes) = create(&mut alice);
        changes.push(admit(&mut alice, &g, &bob));
        assert_eq!(s.ingest(changes).unwrap().applied, 3);
        g
    };
    let s = kith_store::Store::open(&path).unwrap();
    let state = s.group(&g.id).unwrap().unwrap();
    assert!(state.is_member(&bob.id()));
    assert_eq!(s.groups().unwrap().len(), 1);
}

#[test]
fn a_post_that_arrived_before_its_authors_removal_is_hidden_after_it() {
    let (_dir, mut s, mut alice, mut bob, g, mut changes) = alice_admits_bob();
    changes.push(group_post(&mut bob, &g, "b1", "seen by alice"));
    s.ingest(changes).unwrap();
    // alice removes bob having seen his first post only …
    let cutoff = s.group_feed_clock(&g.id, &bob.id()).unwrap();
    let bob_id = bob.id();
    let removal = alice.change(g.control, |d| {
        Record::Remove {
            identity: bob_id,
            cutoff: cutoff.clone(),
        }
        .write(d)
        .unwrap()
    });
    // … while his second, written concurrently, reaches this store first.
    let concurrent = group_post(&mut bob, &g, "b2", "written concurrently");
    assert_eq!(s.ingest(vec![concurrent]).unwrap().applied, 1);
    let q = kith_store::FeedQuery {
        space: g.id,
        ..Default::default()
    };
    let texts = |s: &kith_store::Store| -> Vec<Option<String>> {
        s.feed(&q).unwrap().into_iter().map(|p| p.text).collect()
    };
    assert_eq!(texts(&s).len(), 2);
    assert_eq!(s.ingest(vec![removal]).unwrap().applied, 1);
    assert_eq!(
        texts(&s),
        vec![Some("seen by alice".to_owned())],
        "the same posts as a member who got the removal first"
    );
}

#[test]
fn the_home_timeline_merges_the_public_space_and_the_given_groups() {
    let (_dir, mut s, mut alice, mut bob, g, mut changes) = alice_admits_bob();
    // Interleaved in time: public, group, public, group.
    let t0 = alice.clock.max(bob.clock) + 1000;
    alice.clock = t0;
    changes.push(alice.post("p1", "public one"));
    bob.clock = t0 + 10;
    changes.push(group_post(&mut bob, &g, "g1", "group one"));
    alice.clock = t0 + 20;
    changes.push(alice.post("p2", "public two"));
    bob.clock = t0 + 30;
    changes.push(group_post(&mut bob, &g, "g2", "group two"));
    assert_eq!(s.ingest(changes).unwrap().rejected, vec![]);
    let texts = |spaces: &[SpaceId], before, limit| -> Vec<String> {
        s.home_feed(spaces, None, before, limit)
            .unwrap()
            .into_iter()
            .map(|p| p.text.unwrap())
            .collect()
    };
    let both = [SpaceId::PUBLIC, g.id];
    assert_eq!(
        texts(&both, None, 10),
        vec!["group two", "public two", "group one", "public one"]
    );
    assert_eq!(
        texts(&[SpaceId::PUBLIC], None, 10),
        vec!["public two", "public one"]
    );
    // Paging: after the second post of the merged timeline.
    let page = s.home_feed(&both, None, None, 2).unwrap();
    let last = page.last().unwrap();
    assert_eq!(
        texts(&both, Some((last.created_at_ms, last.id)), 10),
        vec!["group one", "public one"]
    );
}
