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
