//! `repair` rebuilds a store from what can be read, and can be stopped at
//! any step and run again without losing what the store held.

use kith_core::{DeviceCert, DeviceKey, DocId, IdentityKey, SpaceId};
use kith_store::repair::repair;
use kith_store::{FeedQuery, LocalSigner, OpenError, Store};

/// A store at `dir/kith.redb` holding `n` posts, closed cleanly.
fn store_with_posts(dir: &std::path::Path, n: u64) -> std::path::PathBuf {
    let identity = IdentityKey::from_secret_bytes(&[5; 32]);
    let device = DeviceKey::from_secret_bytes(&[6; 32]);
    let path = dir.join("kith.redb");
    let mut store = Store::open(&path).unwrap();
    store
        .add_certificate(&DeviceCert::issue(&identity, &device, 1))
        .unwrap();
    let signer = LocalSigner {
        key: &device,
        author: identity.id(),
    };
    let doc = DocId::feed(identity.id(), SpaceId::PUBLIC, 0);
    for i in 0..n {
        store
            .commit_local(doc, signer, 1 + i, |d| {
                d.create_post(&format!("k{i}"), "kept", 1 + i, None)
            })
            .unwrap();
    }
    path
}

fn posts(path: &std::path::Path) -> usize {
    let query = FeedQuery {
        limit: 10_000,
        ..FeedQuery::default()
    };
    Store::open(path).unwrap().feed(&query).unwrap().len()
}

#[test]
fn a_sound_store_repairs_to_the_same_posts_and_keeps_the_original_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_posts(dir.path(), 30);
    let original = std::fs::read(&path).unwrap();
    let report = repair(&path, |_| {}).unwrap();
    assert_eq!(report.changes_salvaged, 30);
    assert_eq!(report.changes_refused, 0);
    assert_eq!(
        std::fs::read(&report.damaged_kept_at).unwrap(),
        original,
        "the original is kept aside as it was"
    );
    assert_eq!(posts(&path), 30);
}

/// Stopped after writing its marker and before renaming the store aside:
/// the store is still in place, the next run repairs it, nothing is lost,
/// and until then nothing opens the store.
#[test]
fn a_repair_stopped_before_it_moved_the_store_aside_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_posts(dir.path(), 12);
    std::fs::write(path.with_extension("repair"), "kith.redb.damaged-1").unwrap();
    match Store::open(&path) {
        Err(OpenError::RepairUnfinished { .. }) => {}
        other => panic!("an unfinished repair keeps the store shut: {other:?}"),
    }
    let report = repair(&path, |_| {}).unwrap();
    assert_eq!(report.changes_salvaged, 12);
    assert!(!path.with_extension("repair").exists());
    assert_eq!(posts(&path), 12);
}

#[test]
fn check_finds_a_post_body_that_no_longer_matches_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_posts(dir.path(), 3);
    let report = kith_store::repair::check(&path, |_| {}).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    // One body altered in its table, as a bug or a hand could: same length,
    // so redb's own accounting is untouched.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def = redb::TableDefinition::<&[u8; 20], &[u8]>::new("bodies_v1");
            let mut bodies = txn.open_table(def).unwrap();
            let (key, mut value) = {
                let (k, v) = redb::ReadableTable::first(&bodies).unwrap().unwrap();
                (*k.value(), v.value().to_vec())
            };
            *value.last_mut().unwrap() ^= 0x01; // "kept" → "kepu"
            bodies.insert(&key, value.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let report = kith_store::repair::check(&path, |_| {}).unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.contains("does not match the hash the change holds")),
        "{:?}",
        report.findings
    );
}
