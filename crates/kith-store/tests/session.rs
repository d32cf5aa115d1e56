//! A node's session: local commits are published before they are durable,
//! so a crash must never let a sequence number be reused. Whoever opens the
//! store after a crashed session gets a new actor suffix; a clean stop keeps it.

use kith_core::DeviceKey;
use kith_store::Store;

#[test]
fn a_crashed_session_gives_the_next_opener_a_new_actor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.redb");
    let device = DeviceKey::from_secret_bytes(&[3; 32]).id();

    let mut store = Store::open(&path).unwrap();
    assert!(!store.recovered_from_crash());
    let first = store.actor_for(&device);
    store.begin_session().unwrap();
    store.end_session().unwrap();
    drop(store);

    let mut store = Store::open(&path).unwrap();
    assert!(!store.recovered_from_crash(), "a clean stop is not a crash");
    assert_eq!(
        store.actor_for(&device),
        first,
        "a clean stop keeps the actor"
    );
    store.begin_session().unwrap();
    drop(store); // no end_session: the process died

    let store = Store::open(&path).unwrap();
    assert!(store.recovered_from_crash());
    let second = store.actor_for(&device);
    assert_ne!(
        second, first,
        "after a crash, sequence numbers start afresh"
    );
    drop(store);

    let store = Store::open(&path).unwrap();
    assert!(!store.recovered_from_crash(), "recovery happens once");
    assert_eq!(store.actor_for(&device), second);
}

/// A node publishes a local change as soon as it is signed, before the store
/// has written it; a crash at that moment must not lose it, or the next
/// change would be signed with its sequence number.
#[test]
fn a_change_is_journalled_before_it_is_handed_out() {
    use kith_core::schema::feed;
    use kith_core::{DeviceCert, DocId, IdentityKey, SpaceId};
    use kith_store::LocalSigner;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.redb");
    let identity = IdentityKey::from_secret_bytes(&[4; 32]);
    let device = DeviceKey::from_secret_bytes(&[3; 32]);
    let mut store = Store::open(&path).unwrap();
    store
        .add_certificate(&DeviceCert::issue(&identity, &device, 1))
        .unwrap();
    store.begin_session().unwrap();
    store.flush().unwrap();

    // The crash: the store file as it was last made durable, and the
    // journal as it stands when the change is handed out.
    let crashed = tempfile::tempdir().unwrap();
    let crashed_path = crashed.path().join("kith.redb");
    let signer = LocalSigner {
        key: &device,
        author: identity.id(),
    };
    let doc = DocId::feed(identity.id(), SpaceId::PUBLIC, 0);
    let mut handed_out = Vec::new();
    let (_, made) = store
        .commit_local_with(
            doc,
            signer,
            1,
            |d| feed::create_post(d, "k1", "published before it is stored", 1, None),
            |change| {
                std::fs::copy(&path, &crashed_path).unwrap();
                std::fs::copy(
                    path.with_extension("journal"),
                    crashed_path.with_extension("journal"),
                )
                .unwrap();
                handed_out.push(change.signed().clone());
            },
        )
        .unwrap();
    let made = made.expect("a change was made");
    assert_eq!(
        handed_out,
        vec![made.signed().clone()],
        "handed out once, as made"
    );
    assert_eq!(store.counts().unwrap().posts, 1);

    let recovered = Store::open(&crashed_path).unwrap();
    assert_eq!(
        recovered.counts().unwrap().posts,
        1,
        "the journal holds a change before anyone hears of it"
    );
}
