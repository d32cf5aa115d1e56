//! No error path loses the journal: a record that passes its checksum but
//! holds a change the store refuses is damage too. The journal is kept aside
//! byte for byte, the good records are replayed, and the store opens.

use kith_core::{DeviceCert, DeviceKey, DocId, IdentityKey, SignedChange, SpaceId};
use kith_store::{FeedQuery, LocalSigner, Store};

/// Re-frames journal records as `kith-store` writes them: `u32 length ‖
/// u32 CRC-32 ‖ SignedChange`, with `f` applied to each change.
fn reframe(bytes: &[u8], f: impl Fn(&mut SignedChange)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let mut change = SignedChange::decode(&bytes[at + 8..at + 8 + len]).unwrap();
        f(&mut change);
        let payload = change.encode();
        let mut crc = flate2::Crc::new();
        crc.update(&payload);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&payload);
        at += 8 + len;
    }
    out
}

#[test]
fn a_journal_record_the_store_refuses_is_kept_aside_and_the_rest_replayed() {
    let identity = IdentityKey::from_secret_bytes(&[4; 32]);
    let device = DeviceKey::from_secret_bytes(&[3; 32]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.redb");
    let mut store = Store::open(&path).unwrap();
    store
        .add_certificate(&DeviceCert::issue(&identity, &device, 1))
        .unwrap();
    store.begin_session().unwrap();
    store.flush().unwrap();
    let signer = LocalSigner {
        key: &device,
        author: identity.id(),
    };
    let doc = DocId::feed(identity.id(), SpaceId::PUBLIC, 0);
    for i in 0..3 {
        store
            .commit_local(doc, signer, 1 + i, |d| {
                d.create_post(&format!("k{i}"), "journalled", 1 + i, None)
            })
            .unwrap();
    }
    store.sync_local().unwrap();

    // The crash: the store as last made durable, and the journal, whose
    // second record now carries a signature that does not verify (its
    // checksum is right: damage the checksum cannot see).
    let crashed = tempfile::tempdir().unwrap();
    let crashed_path = crashed.path().join("kith.redb");
    std::fs::copy(&path, &crashed_path).unwrap();
    let journal = std::fs::read(path.with_extension("journal")).unwrap();
    assert!(!journal.is_empty(), "the session's changes are journalled");
    let n = std::sync::atomic::AtomicUsize::new(0);
    let forged = reframe(&journal, |c| {
        if n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 1 {
            c.signature[0] ^= 1;
        }
    });
    let crashed_journal = crashed_path.with_extension("journal");
    std::fs::write(&crashed_journal, &forged).unwrap();
    drop(store);

    let store = Store::open(&crashed_path).expect("the store opens");
    let damage = store
        .journal_damage()
        .expect("the refused record is reported");
    assert_eq!(damage.refused, 1);
    assert_eq!(
        std::fs::read(&damage.kept_at).unwrap(),
        forged,
        "the journal is kept aside as it was"
    );
    // The first change applies; the third waits for the second, which a
    // peer that has it gives back by sync.
    let posts = store.feed(&FeedQuery::default()).unwrap();
    assert_eq!(posts.len(), 1, "the record before the refused one applies");
    assert_eq!(
        store.counts().unwrap().pending,
        1,
        "the record after it is kept, waiting for its dependency"
    );
}
