//! Test authors that make signed changes without a store, so tests can
//! craft honest and dishonest changes alike.

#![allow(dead_code)]

use std::collections::HashMap;

use automerge::AutoCommit;
use automerge::transaction::CommitOptions;
use kith_core::{DeviceCert, DeviceKey, DocId, IdentityId, IdentityKey, SignedChange};
use kith_store::{Draft, Store};

/// One device of one identity, with its own copies of the documents it writes.
pub struct Author {
    pub identity: IdentityKey,
    pub device: DeviceKey,
    pub cert: DeviceCert,
    pub suffix: Vec<u8>,
    pub docs: HashMap<DocId, AutoCommit>,
    pub clock: i64,
}

impl Author {
    /// A device of a new identity; `seed` makes the keys deterministic.
    pub fn new(seed: u8) -> Author {
        let identity = IdentityKey::from_secret_bytes(&[seed; 32]);
        Author::device_of(identity, seed.wrapping_add(100))
    }

    /// Another device of `identity`.
    pub fn device_of(identity: IdentityKey, seed: u8) -> Author {
        let device = DeviceKey::from_secret_bytes(&[seed; 32]);
        let cert = DeviceCert::issue(&identity, &device, 1);
        Author {
            identity,
            device,
            cert,
            suffix: vec![seed; 8],
            docs: HashMap::new(),
            clock: 1_700_000_000_000,
        }
    }

    pub fn id(&self) -> IdentityId {
        self.identity.id()
    }

    pub fn doc(&mut self, id: DocId) -> &mut AutoCommit {
        let actor = kith_core::actor_id(&self.device.id(), &self.suffix);
        self.docs
            .entry(id)
            .or_insert_with(|| AutoCommit::new().with_actor(actor))
    }

    /// Makes one change on `doc` with `f` and returns it signed.
    pub fn change(&mut self, doc: DocId, f: impl FnOnce(&mut Draft<'_>)) -> SignedChange {
        self.try_change(doc, f).expect("the edit changed something")
    }

    /// Like `change`, but `None` if `f` changed nothing.
    pub fn try_change(
        &mut self,
        doc: DocId,
        f: impl FnOnce(&mut Draft<'_>),
    ) -> Option<SignedChange> {
        self.clock += 1;
        let time = self.clock;
        let d = self.doc(doc);
        let mut draft = Draft::new(d);
        f(&mut draft);
        let bodies = draft.into_bodies();
        d.commit_with(CommitOptions::default().with_time(time))?;
        let change = d.get_last_local_change().expect("just committed");
        let mut signed = self.sign(doc, change.raw_bytes().to_vec());
        signed.bodies = bodies
            .into_iter()
            .map(kith_core::Body::into_bytes)
            .collect();
        Some(signed)
    }

    /// Signs arbitrary bytes as a change of `doc` with this device.
    pub fn sign(&self, doc: DocId, bytes: Vec<u8>) -> SignedChange {
        let header = kith_core::chunk::parse_header(&bytes).expect("a well-formed change");
        let signature = self
            .device
            .sign(&SignedChange::signed_bytes(&doc, &header.hash));
        SignedChange {
            doc,
            change: bytes,
            device: self.device.id(),
            signature,
            bodies: Vec::new(),
        }
    }

    /// Signs bytes that may not even parse as a change, computing the hash
    /// the way a receiver does (SHA-256 of the chunk after magic and checksum).
    pub fn sign_unchecked(&self, doc: DocId, bytes: Vec<u8>) -> SignedChange {
        use sha2::Digest;
        let hash: [u8; 32] = sha2::Sha256::digest(bytes.get(8..).unwrap_or_default()).into();
        let signature = self.device.sign(&SignedChange::signed_bytes(&doc, &hash));
        SignedChange {
            doc,
            change: bytes,
            device: self.device.id(),
            signature,
            bodies: Vec::new(),
        }
    }

    /// A post in this author's public feed (shard 0).
    pub fn post(&mut self, key: &str, text: &str) -> SignedChange {
        let doc = DocId::feed(self.id(), kith_core::SpaceId::PUBLIC, 0);
        let at = self.clock as u64;
        self.change(doc, |d| d.create_post(key, text, at, None).unwrap())
    }
}

/// A fresh store in a temporary directory.
pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("kith.redb")).unwrap();
    (dir, store)
}

/// Everything observable about a store's contents.
pub fn snapshot(store: &Store) -> (kith_store::Counts, Vec<String>) {
    (store.counts().unwrap(), store.index_dump().unwrap())
}
