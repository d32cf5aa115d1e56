//! A node's session: local commits are published once stored but before
//! they are durable, so a crash must never let a sequence number be reused. Whoever opens the
//! store after a crashed session gets a new actor suffix; a clean stop keeps it.

use kith_core::{DeviceCert, DeviceKey, DocId, IdentityKey, PostId, SpaceId};
use kith_store::{LocalSigner, Store};

/// One person with one device, who writes to their public feed.
struct Author {
    identity: IdentityKey,
    device: DeviceKey,
}

impl Author {
    fn new() -> Author {
        Author {
            identity: IdentityKey::from_secret_bytes(&[4; 32]),
            device: DeviceKey::from_secret_bytes(&[3; 32]),
        }
    }

    /// Opens the store at `path`, which knows this author's device.
    fn open(&self, path: &std::path::Path) -> Store {
        let mut store = Store::open(path).unwrap();
        store
            .add_certificate(&DeviceCert::issue(&self.identity, &self.device, 1))
            .unwrap();
        store
    }

    fn signer(&self) -> LocalSigner<'_> {
        LocalSigner {
            key: &self.device,
            author: self.identity.id(),
        }
    }

    fn feed(&self) -> DocId {
        DocId::feed(self.identity.id(), SpaceId::PUBLIC, 0)
    }
}

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

/// A node publishes a local change when `commit_local` returns it, before
/// the store is durable (the commit is not, the journal not yet synced); a
/// crash at that moment must not lose it, or the next change would be
/// signed with its sequence number.
#[test]
fn a_change_is_journalled_before_it_is_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.redb");
    let author = Author::new();
    let mut store = author.open(&path);
    store.begin_session().unwrap();
    store.flush().unwrap();

    // The crash: the store file as it was last made durable, and the
    // journal as it stands when the change is handed out.
    let crashed = tempfile::tempdir().unwrap();
    let crashed_path = crashed.path().join("kith.redb");
    std::fs::copy(&path, &crashed_path).unwrap();
    let (_, made) = store
        .commit_local(author.feed(), author.signer(), 1, |d| {
            d.create_post("k1", "published before it is durable", 1, None)
        })
        .unwrap();
    let made = made.expect("a change was made");
    std::fs::copy(
        path.with_extension("journal"),
        crashed_path.with_extension("journal"),
    )
    .unwrap();
    assert_eq!(store.counts().unwrap().posts, 1);

    let recovered = Store::open(&crashed_path).unwrap();
    assert_eq!(
        recovered.counts().unwrap().posts,
        1,
        "the journal holds a change before anyone hears of it"
    );
    let replayed = recovered
        .changes_since(&author.feed(), &Default::default(), None, 1 << 20)
        .unwrap();
    assert_eq!(replayed.changes, vec![made.signed().clone()]);
}

/// A change whose transaction fails is never handed out (published): its
/// journal record is taken back, and the next change takes its sequence
/// number from the same actor, which nobody saw sign the lost one.
#[test]
fn a_change_not_stored_is_not_handed_out_and_its_number_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.redb");
    let author = Author::new();
    let device = author.device.id();
    let doc = author.feed();
    let signer = || author.signer();
    let mut store = author.open(&path);
    store
        .commit_local(doc, signer(), 1, |d| d.create_post("k1", "first", 1, None))
        .unwrap();
    drop(store);

    // Damage the post's index row, so that indexing an edit of it fails
    // after the edit is signed.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&[u8; 16], &[u8]>::new("posts_v1"))
            .unwrap()
            .insert(&PostId::derive(&doc, "k1").0, [0xff_u8].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }

    let mut store = Store::open(&path).unwrap();
    let first_actor = store.actor_for(&device);
    let journal = path.with_extension("journal");
    let journal_before = std::fs::metadata(&journal).unwrap().len();
    let err = store
        .commit_local(doc, signer(), 2, |d| d.edit_post("k1", "second"))
        .unwrap_err();
    assert!(err.to_string().contains("post row"), "{err}");
    assert_eq!(
        std::fs::metadata(&journal).unwrap().len(),
        journal_before,
        "the record of a change that was not stored is taken back"
    );

    let (_, made) = store
        .commit_local(doc, signer(), 3, |d| d.create_post("k2", "third", 3, None))
        .unwrap();
    let made = made.expect("a change was made");
    assert_eq!(store.actor_for(&device), first_actor, "the actor signs on");
    assert_eq!(
        made.header().seq,
        2,
        "the number the lost edit took, which nobody heard of"
    );
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.counts().unwrap().quarantined, 0, "no equivocation");
    assert_eq!(store.actor_for(&device), first_actor);
}
