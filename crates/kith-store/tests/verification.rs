//! Every change that did not originate here passes one verification path
//! before automerge sees it. Each attack below is refused with its own error
//! and leaves the store exactly as it was.

mod support;

use kith_core::{DocId, SpaceId, VerifyError};
use kith_store::IngestError;
use support::{Author, snapshot, store};

/// alice has one accepted post in bob's store; mallory has a certified device.
fn setup() -> (tempfile::TempDir, kith_store::Store, Author, Author) {
    let (dir, mut bob_store) = store();
    let mut alice = Author::new(1);
    let mallory = Author::new(66);
    bob_store.add_certificate(&alice.cert).unwrap();
    bob_store.add_certificate(&mallory.cert).unwrap();
    let first = alice.post("first", "hello");
    let report = bob_store.ingest(vec![first]).unwrap();
    assert_eq!(report.applied, 1, "{report:?}");
    (dir, bob_store, alice, mallory)
}

/// Bytes that cannot even be signed as a change, sent as if from alice's device.
fn unsigned(alice: &Author, bytes: Vec<u8>) -> kith_core::SignedChange {
    kith_core::SignedChange {
        doc: DocId::feed(alice.id(), SpaceId::PUBLIC, 0),
        change: bytes,
        device: alice.device.id(),
        signature: [7; 64],
        bodies: Vec::new(),
    }
}

fn refused(store: &mut kith_store::Store, change: kith_core::SignedChange) -> IngestError {
    let before = snapshot(store);
    let report = store.ingest(vec![change]).unwrap();
    assert_eq!(
        report.applied + report.pending + report.duplicates,
        0,
        "{report:?}"
    );
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    let after = snapshot(store);
    assert_eq!(before.1, after.1, "indexes changed");
    assert_eq!(before.0.changes, after.0.changes, "changes stored");
    report.rejected[0].1.clone()
}

#[test]
fn forged_signature_is_refused() {
    let (_d, mut store, mut alice, _) = setup();
    let mut change = alice.post("second", "forged?");
    change.signature[10] ^= 0x01;
    assert_eq!(
        refused(&mut store, change),
        IngestError::Verify(VerifyError::BadSignature)
    );
}

#[test]
fn tampered_change_bytes_are_refused() {
    let (_d, mut store, mut alice, _) = setup();
    let mut change = alice.post("second", "tampered");
    let n = change.change.len();
    change.change[n - 3] ^= 0x20;
    // The checksum no longer matches: caught before the signature is even checked.
    assert!(matches!(
        refused(&mut store, change),
        IngestError::Verify(VerifyError::Malformed(_))
    ));
}

#[test]
fn actor_spoofing_is_refused() {
    // mallory signs, with her own certified device, a change whose actor is alice's device.
    let (_d, mut store, mut alice, mallory) = setup();
    let honest = alice.post("second", "mine");
    let spoofed = mallory.sign(DocId::feed(mallory.id(), SpaceId::PUBLIC, 0), honest.change);
    assert_eq!(
        refused(&mut store, spoofed),
        IngestError::Verify(VerifyError::ActorMismatch)
    );
}

#[test]
fn uncertified_device_is_refused() {
    let (_d, mut store, _alice, _) = setup();
    let mut stranger = Author::new(77); // its certificate never reaches the store
    let change = stranger.post("x", "who am I?");
    assert!(matches!(
        refused(&mut store, change),
        IngestError::Verify(VerifyError::UncertifiedDevice(_))
    ));
}

#[test]
fn writing_someone_elses_document_is_refused() {
    // mallory writes into alice's feed with her own, correctly signed and certified device.
    let (_d, mut store, alice, mut mallory) = setup();
    let alice_feed = DocId::feed(alice.id(), SpaceId::PUBLIC, 0);
    let change = mallory.change(alice_feed, |d| {
        d.create_post("evil", "alice says: send me money", 1, None)
            .unwrap()
    });
    assert!(matches!(
        refused(&mut store, change),
        IngestError::Verify(VerifyError::NotAuthorized { .. })
    ));
}

#[test]
fn truncated_changes_are_refused() {
    let (_d, mut store, mut alice, _) = setup();
    let honest = alice.post("second", "cut short");
    for cut in [1, 9, honest.change.len() / 2, honest.change.len() - 1] {
        let mut change = honest.clone();
        change.change.truncate(cut);
        assert!(
            matches!(
                refused(&mut store, change),
                IngestError::Verify(VerifyError::Malformed(_))
            ),
            "truncated to {cut} bytes"
        );
    }
}

#[test]
fn oversized_changes_are_refused() {
    let (_d, mut store, alice, _) = setup();
    let change = unsigned(&alice, vec![0x85; kith_core::signed::MAX_CHANGE_BYTES + 1]);
    assert_eq!(
        refused(&mut store, change),
        IngestError::Verify(VerifyError::Oversized(
            kith_core::signed::MAX_CHANGE_BYTES + 1
        ))
    );
}

#[test]
fn garbage_bytes_are_refused() {
    let (_d, mut store, alice, _) = setup();
    let change = unsigned(&alice, b"definitely not an automerge change".to_vec());
    assert!(matches!(
        refused(&mut store, change),
        IngestError::Verify(VerifyError::Malformed(_))
    ));
}

#[test]
fn garbage_envelopes_are_refused_before_anything_else() {
    assert_eq!(
        kith_core::SignedChange::decode(b"\xff\xff\xff"),
        Err(VerifyError::Decode)
    );
    let huge = vec![0u8; kith_core::signed::MAX_SIGNED_CHANGE_BYTES + 1];
    assert!(matches!(
        kith_core::SignedChange::decode(&huge),
        Err(VerifyError::EnvelopeTooLarge(_))
    ));
}

#[test]
fn equivocation_is_detected_and_quarantined() {
    // alice's device key was copied: both copies write sequence number 2 of her feed.
    let (_d, mut store, mut alice, _) = setup();
    let mut clone = Author::device_of(
        kith_core::IdentityKey::from_secret_bytes(&alice.identity.secret_bytes()),
        101,
    );
    clone.suffix = alice.suffix.clone();
    let feed = DocId::feed(alice.id(), SpaceId::PUBLIC, 0);
    *clone.doc(feed) = alice
        .doc(feed)
        .fork()
        .with_actor(kith_core::actor_id(&alice.device.id(), &alice.suffix));
    let honest = alice.post("second", "the real second post");
    let twin = clone.post("other", "a different second post");
    // Same actor and sequence number, different change: signed by the same (copied) device key.
    let twin = alice.sign(twin.doc, twin.change);
    assert!(store.ingest(vec![honest]).unwrap().rejected.is_empty());
    let before = store.counts().unwrap();
    match refused(&mut store, twin) {
        IngestError::Equivocation { seq: 2, .. } => {}
        other => panic!("expected equivocation at seq 2, got {other:?}"),
    }
    assert_eq!(store.counts().unwrap().quarantined, before.quarantined + 1);
}

#[test]
fn duplicates_are_counted_not_reapplied() {
    let (_d, mut store, mut alice, _) = setup();
    let change = alice.post("second", "once");
    assert_eq!(store.ingest(vec![change.clone()]).unwrap().applied, 1);
    let before = snapshot(&store);
    let report = store.ingest(vec![change.clone(), change]).unwrap();
    assert_eq!((report.applied, report.duplicates), (0, 2), "{report:?}");
    assert_eq!(snapshot(&store), before);
}

#[test]
fn one_bad_change_does_not_cost_the_honest_ones() {
    let (_d, mut store, mut alice, _) = setup();
    let mut batch: Vec<_> = (0..40)
        .map(|i| alice.post(&format!("k{i}"), &format!("post {i}")))
        .collect();
    batch[17].signature[0] ^= 0x80;
    let report = store.ingest(batch).unwrap();
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(
        report.rejected[0],
        (17, IngestError::Verify(VerifyError::BadSignature))
    );
    // Changes after the forged one depend on it, so they wait rather than apply.
    assert_eq!(report.applied, 17);
    assert_eq!(report.pending, 22);
}

#[test]
fn changes_with_missing_dependencies_wait_and_then_apply() {
    let (_d, mut store, mut alice, _) = setup();
    let second = alice.post("second", "2");
    let third = alice.post("third", "3");
    let report = store.ingest(vec![third]).unwrap();
    assert_eq!((report.applied, report.pending), (0, 1));
    assert_eq!(
        store.counts().unwrap().posts,
        1,
        "a waiting change is not indexed"
    );
    let report = store.ingest(vec![second]).unwrap();
    assert_eq!((report.applied, report.pending), (2, 0));
    assert_eq!(store.counts().unwrap().posts, 3);
}

#[test]
fn changes_waiting_for_dependencies_are_bounded() {
    // mallory withholds her first post and sends thousands that depend on it.
    let (_d, mut store, _alice, mut mallory) = setup();
    let _withheld = mallory.post("root", "never sent");
    let n = kith_store::MAX_PENDING_PER_DOC + 10;
    let flood: Vec<_> = (0..n)
        .map(|i| mallory.post(&format!("k{i}"), "x"))
        .collect();
    let report = store.ingest(flood).unwrap();
    assert_eq!(report.pending, kith_store::MAX_PENDING_PER_DOC);
    assert_eq!(report.rejected.len(), 10);
    assert!(
        report
            .rejected
            .iter()
            .all(|(_, e)| matches!(e, IngestError::TooManyPending(_)))
    );
    let counts = store.counts().unwrap();
    assert_eq!(counts.pending, kith_store::MAX_PENDING_PER_DOC as u64);
    assert_eq!(
        counts.changes,
        1 + kith_store::MAX_PENDING_PER_DOC as u64,
        "refused changes are not stored"
    );
}

#[test]
fn certificates_from_peers_are_kept_only_with_a_change_that_passes() {
    let (_d, mut store) = store();
    let mut alice = Author::new(1);
    let strangers: Vec<_> = (10..20).map(Author::new).collect();
    let certs: Vec<_> = strangers
        .iter()
        .map(|s| s.cert.clone())
        .chain([alice.cert.clone()])
        .collect();
    let honest = alice.post("x", "honest");
    let mut forged = alice.post("y", "forged");
    forged.signature[3] ^= 1;
    let report = store.ingest_with(&certs, vec![forged]).unwrap();
    assert_eq!(report.rejected.len(), 1);
    for s in &strangers {
        assert_eq!(
            store.identity_of(&s.device.id()).unwrap(),
            None,
            "a stranger's certificate was kept"
        );
    }
    assert_eq!(
        store.identity_of(&alice.device.id()).unwrap(),
        None,
        "a failing change keeps no certificate"
    );
    assert_eq!(store.ingest_with(&certs, vec![honest]).unwrap().applied, 1);
    assert_eq!(
        store.identity_of(&alice.device.id()).unwrap(),
        Some(alice.id())
    );
    assert_eq!(store.identity_of(&strangers[0].device.id()).unwrap(), None);
}

#[test]
fn checking_on_several_threads_or_with_kept_keys_gives_the_same_verdicts_in_order() {
    let (_d, _store, mut alice, mallory) = setup();
    let mut changes: Vec<_> = (0..300)
        .map(|i| alice.post(&format!("k{i}"), "hi"))
        .collect();
    let (device, identity) = (alice.device.id(), alice.id());
    let certs = move |d: &kith_core::DeviceId| (*d == device).then_some(identity);
    // Every seventh is forged, every eleventh from an uncertified device,
    // every thirteenth names a device key of small order.
    for (i, c) in changes.iter_mut().enumerate() {
        if i % 7 == 3 {
            c.signature[5] ^= 1;
        }
        if i % 11 == 4 {
            c.device = mallory.device.id();
        }
        if i % 13 == 5 {
            let mut weak = [0u8; 32];
            weak[0] = 1;
            c.device = kith_core::DeviceId(weak);
        }
    }
    let verdict = |r: &Result<kith_core::Verified<kith_core::SignedChange>, VerifyError>| {
        r.as_ref().map(|v| v.header().hash).map_err(Clone::clone)
    };
    let one: Vec<_> = kith_core::verify_batch(changes.clone(), &certs)
        .iter()
        .map(verdict)
        .collect();
    assert!(one.iter().any(Result::is_ok) && one.iter().any(Result::is_err));
    assert!(one.contains(&Err(VerifyError::WeakDeviceKey)));
    // Keys kept from one call serve the next, with the same verdicts.
    let mut keys = kith_core::DeviceKeys::default();
    for threads in [1, 2, 3, 8, 1] {
        let many: Vec<_> =
            kith_core::verify_batch_parallel(changes.clone(), &certs, threads, &mut keys)
                .iter()
                .map(verdict)
                .collect();
        assert_eq!(many, one, "{threads} threads");
    }
    assert_eq!(
        keys.len(),
        2,
        "alice's and mallory's keys, not the weak one"
    );
}
