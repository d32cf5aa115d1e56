//! The store's layout version: a store of the previous layout opens and is
//! marked current (its tables read as they are), and a store written by a
//! newer kith is refused with a clear error rather than misread.

mod support;

use kith_store::{OpenError, Store};
use support::{Author, store};

const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta_v1");

fn set_layout(path: &std::path::Path, version: u32) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(META)
        .unwrap()
        .insert("schema", version.to_be_bytes().as_slice())
        .unwrap();
    txn.commit().unwrap();
}

fn layout(path: &std::path::Path) -> u32 {
    let db = redb::Database::open(path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let meta = txn.open_table(META).unwrap();
    let v = meta.get("schema").unwrap().unwrap();
    u32::from_be_bytes(v.value().try_into().unwrap())
}

#[test]
fn an_older_layout_is_upgraded_and_a_newer_one_refused() {
    let (dir, mut s) = store();
    let path = dir.path().join("kith.redb");
    let mut alice = Author::new(5);
    s.add_certificate(&alice.cert).unwrap();
    s.ingest(vec![alice.post("k", "kept across the upgrade")])
        .unwrap();
    drop(s);
    let current = layout(&path);
    assert!(current >= 2);

    set_layout(&path, 1);
    let s = Store::open(&path).unwrap();
    let feed = s.feed(&kith_store::FeedQuery::default()).unwrap();
    assert_eq!(feed[0].text.as_deref(), Some("kept across the upgrade"));
    drop(s);
    assert_eq!(layout(&path), current, "marked as the current layout");

    set_layout(&path, current + 1);
    match Store::open(&path) {
        Err(OpenError::Schema {
            found, expected, ..
        }) => {
            assert_eq!((found, expected), (current + 1, current));
        }
        other => panic!("a newer layout must be refused: {other:?}"),
    }
    assert_eq!(layout(&path), current + 1, "left as it was");
}
