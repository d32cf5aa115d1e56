//! A group of `proto/README.md` sections 9.4, 15 and 16: its genesis
//! (group id, control document, records), its epoch key sealed to the
//! creator's device, an invite, a post in its space, and that post as a
//! message on the group's topic.
//!
//! kith draws the nonce, the epoch key, the sealing's ephemeral key, the
//! record tags and the gossip nonce at random; here each is fixed, and the
//! sealing and the encryption are done by the same primitives kith calls,
//! with that fixed randomness injected.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ScalarValue};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use crypto_box::aead::rand_core::{CryptoRng, RngCore};
use kith_core::group::records::Record;
use kith_core::group::{EpochKey, Role, control_doc, group_id};
use kith_core::schema::feed;
use kith_core::{Body, DeviceKey, DocId, InviteKey, SignedChange, SpaceId, proto};
use prost::Message;

use crate::{Base, ChangeVector, DEVICE_SECRET, POST_SALT, commit, person, sign, sign_with};

pub const NONCE: [u8; 16] = [0x05; 16];
pub const NAME: &str = "Vector climbers";
pub const ABOUT: &str = "Ropes and chalk.";
pub const EPOCH_KEY: [u8; 32] = [0x06; 32];
/// The ephemeral X25519 secret of the seal (kith: random).
pub const SEAL_EPHEMERAL_SECRET: [u8; 32] = [0x07; 32];
/// The tag of the key record's root key (kith: 8 random bytes, in hex).
pub const KEYS_TAG: &str = "0123456789abcdef";
pub const GENESIS_TIME_MS: i64 = 1_700_000_000_000;
pub const INVITE_SECRET: [u8; 32] = [0x09; 32];
pub const INVITE_EXPIRES_AT_MS: u64 = 1_700_604_800_000;
pub const INVITE_USES: u32 = 1;
pub const INVITE_TAG: &str = "fedcba9876543210";
pub const INVITE_TIME_MS: i64 = 1_700_000_060_000;
/// Bob, who joins with the invite: the identity with secret `04` × 32.
pub const JOINER_SECRET_BYTE: u8 = 0x04;
pub const POST_KEY: &str = "grouppost";
pub const POST_TEXT: &str = "hello, group";
pub const POST_AT_MS: u64 = 1_700_000_120_000;
/// The gossip message's nonce (kith: random).
pub const GOSSIP_NONCE: [u8; 24] = [0x08; 24];

#[derive(Debug, serde::Serialize)]
pub struct Group {
    nonce: String,
    group_id: String,
    control_doc_id: String,
    name: &'static str,
    about: &'static str,
    genesis_record: String,
    info_record: String,
    epoch_key: String,
    key_id: String,
    topic: String,
    device_x25519_public: String,
    seal_ephemeral_secret: String,
    sealed_key: String,
    keys_record_key: String,
    keys_record: String,
    genesis_commit_time_ms: i64,
    genesis: ChangeVector,
    invite_secret: String,
    invite_public_key: String,
    invite_expires_at_ms: u64,
    invite_uses: u32,
    invite_key: String,
    invite_record_key: String,
    invite_record: String,
    invite_commit_time_ms: i64,
    invite: ChangeVector,
    joiner: String,
    join_proof: String,
    feed_doc_id: String,
    post_key: &'static str,
    post_text: &'static str,
    post_at_ms: u64,
    post: ChangeVector,
    gossip_plaintext: String,
    gossip_nonce: String,
    group_gossip: String,
}

/// The vectors, and what the sync vectors reuse.
pub struct Built {
    pub vector: Group,
    pub id: SpaceId,
    pub invite_public: [u8; 32],
    pub proof: [u8; 64],
}

/// Randomness that is whatever bytes it was given, repeated: only for
/// fixing the ephemeral key of a seal in a test vector.
pub struct FixedRandomness(pub [u8; 32]);

impl RngCore for FixedRandomness {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.0[..4].try_into().expect("4 bytes"))
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"))
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for (d, s) in dest.iter_mut().zip(self.0.iter().cycle()) {
            *d = *s;
        }
    }
    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> Result<(), crypto_box::aead::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for FixedRandomness {}

/// Puts `record` under `key` as [`Record::write`] does, but with a fixed
/// tag instead of a random one.
fn put(doc: &mut AutoCommit, key: &str, record: &Record) -> Result<(), automerge::AutomergeError> {
    doc.put(automerge::ROOT, key, ScalarValue::Bytes(record.encode()))
}

pub fn vectors(base: &Base) -> Result<Built, Box<dyn std::error::Error>> {
    let creator = base.identity.id();
    let id = group_id(&creator, &NONCE);
    let control = control_doc(&id);
    let device = DeviceKey::from_secret_bytes(&DEVICE_SECRET);
    let epoch_key = EpochKey::from_bytes(EPOCH_KEY);

    // The seal: crypto_box_seal of the key to the device's X25519 key.
    let device_x25519 = crypto_box::SecretKey::from(device.x25519_secret_bytes()).public_key();
    let sealed = device_x25519
        .seal(&mut FixedRandomness(SEAL_EPHEMERAL_SECRET), &EPOCH_KEY)
        .map_err(|_| "sealing failed")?;

    let genesis = Record::Genesis {
        creator,
        nonce: NONCE,
    };
    let info = Record::Info {
        name: NAME.into(),
        about: ABOUT.into(),
    };
    let keys = Record::Keys {
        epoch: 0,
        seals: vec![(device.id(), sealed.clone())],
    };
    let keys_key = format!("{}/{KEYS_TAG}", keys.key());
    let mut doc = AutoCommit::new().with_actor(base.feed.get_actor().clone());
    genesis.write(&mut doc)?;
    info.write(&mut doc)?;
    put(&mut doc, &keys_key, &keys)?;
    let change = commit(&mut doc, GENESIS_TIME_MS)?;
    let (_, genesis_change) = sign(base, control, &change)?;

    let invite_key = InviteKey {
        group: id,
        secret: INVITE_SECRET,
        addresses: vec![],
    };
    let invite_public = invite_key.public_key();
    let invite = Record::Invite {
        public_key: invite_public,
        expires_at_ms: INVITE_EXPIRES_AT_MS,
        uses: INVITE_USES,
        role: Role::Member,
    };
    let invite_record_key = format!("{}/{INVITE_TAG}", invite.key());
    put(&mut doc, &invite_record_key, &invite)?;
    let change = commit(&mut doc, INVITE_TIME_MS)?;
    let (_, invite_change) = sign(base, control, &change)?;
    let joiner = person(JOINER_SECRET_BYTE);
    let proof = invite_key.prove(&joiner);

    let feed_doc = DocId::feed(creator, id, 0);
    let mut feed_doc_state = AutoCommit::new().with_actor(base.feed.get_actor().clone());
    let body = Body::with_salt(POST_SALT, POST_TEXT);
    feed::create_post_with(&mut feed_doc_state, POST_KEY, &body, POST_AT_MS, None)?;
    let change = commit(&mut feed_doc_state, POST_AT_MS as i64)?;
    let (post_signed, post_change) = sign_with(base, feed_doc, &change, vec![body])?;

    let plaintext = gossip_change(&post_signed, base);
    let ciphertext = XChaCha20Poly1305::new((&EPOCH_KEY).into())
        .encrypt(
            XNonce::from_slice(&GOSSIP_NONCE),
            Payload {
                msg: &plaintext,
                aad: &id.0,
            },
        )
        .map_err(|_| "encryption failed")?;
    let group_gossip = proto::GroupGossip {
        key_id: epoch_key.id().to_vec(),
        nonce: GOSSIP_NONCE.to_vec(),
        ciphertext,
    }
    .encode_to_vec();

    Ok(Built {
        vector: Group {
            nonce: hex::encode(NONCE),
            group_id: hex::encode(id.0),
            control_doc_id: hex::encode(control.to_bytes()),
            name: NAME,
            about: ABOUT,
            genesis_record: hex::encode(genesis.encode()),
            info_record: hex::encode(info.encode()),
            epoch_key: hex::encode(EPOCH_KEY),
            key_id: hex::encode(epoch_key.id()),
            topic: epoch_key.topic(),
            device_x25519_public: hex::encode(device_x25519.as_bytes()),
            seal_ephemeral_secret: hex::encode(SEAL_EPHEMERAL_SECRET),
            sealed_key: hex::encode(&sealed),
            keys_record_key: keys_key,
            keys_record: hex::encode(keys.encode()),
            genesis_commit_time_ms: GENESIS_TIME_MS,
            genesis: genesis_change,
            invite_secret: hex::encode(INVITE_SECRET),
            invite_public_key: hex::encode(invite_public),
            invite_expires_at_ms: INVITE_EXPIRES_AT_MS,
            invite_uses: INVITE_USES,
            invite_key: invite_key.encode(),
            invite_record_key,
            invite_record: hex::encode(invite.encode()),
            invite_commit_time_ms: INVITE_TIME_MS,
            invite: invite_change,
            joiner: joiner.to_string(),
            join_proof: hex::encode(proof),
            feed_doc_id: hex::encode(feed_doc.to_bytes()),
            post_key: POST_KEY,
            post_text: POST_TEXT,
            post_at_ms: POST_AT_MS,
            post: post_change,
            gossip_plaintext: hex::encode(&plaintext),
            gossip_nonce: hex::encode(GOSSIP_NONCE),
            group_gossip: hex::encode(group_gossip),
        },
        id,
        invite_public,
        proof,
    })
}

/// A change as gossiped: the change and its signer's certificate.
pub fn gossip_change(change: &SignedChange, base: &Base) -> Vec<u8> {
    proto::GossipChange {
        change: Some(change.to_proto()),
        certificate: Some(base.cert.to_proto()),
    }
    .encode_to_vec()
}
