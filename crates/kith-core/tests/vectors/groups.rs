//! A group (proto/README.md sections 9.4, 14, 15 and 16): its id, records,
//! epoch key, seal, invite, a post in its space and that post as group
//! gossip, checked both ways.
//!
//! kith draws the nonce, keys, record tags and nonces at random; the
//! vectors fix them. A seal cannot be made twice alike through kith's own
//! call, so it is checked by opening it with the fixed device key, and
//! recomputed with the same primitive kith calls, its randomness injected.

use automerge::transaction::Transactable;
use automerge::{Change, ScalarValue};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use crypto_box::aead::rand_core::{CryptoRng, RngCore};
use ed25519_dalek::{Signer, SigningKey};
use kith_core::group::records::Record;
use kith_core::group::secrets::{OpenError, decrypt};
use kith_core::group::{
    EpochKey, GroupState, JoinRefusal, Role, control_doc, group_id, may_write_control,
};
use kith_core::schema::feed;
use kith_core::{DeviceId, DeviceKey, DocId, IdentityId, IdentityKey, InviteKey, SpaceId, proto};
use prost::Message;
use sha2::{Digest, Sha256};

use super::{
    ChangeVector, DEVICE_SECRET, apply, check_signed, commit, device_public, identity_public,
    new_doc, unhex, vector_cert, vectors,
};

const NONCE: [u8; 16] = [0x05; 16];
const NAME: &str = "Vector climbers";
const ABOUT: &str = "Ropes and chalk.";
const EPOCH_KEY: [u8; 32] = [0x06; 32];
const SEAL_EPHEMERAL_SECRET: [u8; 32] = [0x07; 32];
const KEYS_TAG: &str = "0123456789abcdef";
const GENESIS_TIME_MS: i64 = 1_700_000_000_000;
const INVITE_SECRET: [u8; 32] = [0x09; 32];
const INVITE_EXPIRES_AT_MS: u64 = 1_700_604_800_000;
const INVITE_TAG: &str = "fedcba9876543210";
const INVITE_TIME_MS: i64 = 1_700_000_060_000;
const POST_KEY: &str = "grouppost";
const POST_TEXT: &str = "hello, group";
const POST_AT_MS: u64 = 1_700_000_120_000;
const GOSSIP_NONCE: [u8; 24] = [0x08; 24];

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    nonce: String,
    pub(crate) group_id: String,
    control_doc_id: String,
    name: String,
    about: String,
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
    pub(crate) invite_public_key: String,
    invite_expires_at_ms: u64,
    invite_uses: u32,
    invite_key: String,
    invite_record_key: String,
    invite_record: String,
    invite_commit_time_ms: i64,
    invite: ChangeVector,
    joiner: String,
    pub(crate) join_proof: String,
    feed_doc_id: String,
    post_key: String,
    post_text: String,
    post_at_ms: u64,
    post: ChangeVector,
    gossip_plaintext: String,
    gossip_nonce: String,
    group_gossip: String,
}

fn alice() -> IdentityId {
    IdentityId(identity_public())
}

/// Bob, who joins: the identity with secret `04` × 32.
fn bob() -> IdentityId {
    IdentityKey::from_secret_bytes(&[0x04; 32]).id()
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn the_group() -> SpaceId {
    SpaceId(sha256(&[b"kith/group/v1", &identity_public(), &NONCE]))
}

fn invite_public() -> [u8; 32] {
    SigningKey::from_bytes(&INVITE_SECRET)
        .verifying_key()
        .to_bytes()
}

/// Randomness that repeats the bytes it was given: the seal's ephemeral key.
struct FixedRandomness([u8; 32]);

impl RngCore for FixedRandomness {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.0[..4].try_into().unwrap())
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().unwrap())
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

/// The group's control changes as the vectors write them: genesis (with
/// name and epoch 0), then the invite.
fn write_control(sealed: &[u8]) -> [Change; 2] {
    let mut doc = new_doc();
    Record::Genesis {
        creator: alice(),
        nonce: NONCE,
    }
    .write(&mut doc)
    .unwrap();
    Record::Info {
        name: NAME.into(),
        about: ABOUT.into(),
    }
    .write(&mut doc)
    .unwrap();
    let keys = Record::Keys {
        epoch: 0,
        seals: vec![(DeviceId(device_public()), sealed.to_vec())],
    };
    doc.put(
        automerge::ROOT,
        format!("k/0/{KEYS_TAG}"),
        ScalarValue::Bytes(keys.encode()),
    )
    .unwrap();
    let genesis = commit(&mut doc, GENESIS_TIME_MS);
    let invite = Record::Invite {
        public_key: invite_public(),
        expires_at_ms: INVITE_EXPIRES_AT_MS,
        uses: 1,
        role: Role::Member,
    };
    doc.put(
        automerge::ROOT,
        format!("i/{}/{INVITE_TAG}", hex::encode(invite_public())),
        ScalarValue::Bytes(invite.encode()),
    )
    .unwrap();
    [genesis, commit(&mut doc, INVITE_TIME_MS)]
}

#[test]
fn the_group_id_hashes_creator_and_nonce_and_names_the_control_document() {
    let v = vectors();
    let g = &v.group;
    assert_eq!(unhex(&g.nonce), NONCE);
    assert_eq!(g.group_id, hex::encode(the_group().0));
    assert_eq!(group_id(&alice(), &NONCE), the_group());
    let mut id = vec![4u8]; // group control
    id.extend_from_slice(&the_group().0); // owner
    id.extend_from_slice(&the_group().0); // space
    id.extend_from_slice(&[0; 4]);
    assert_eq!(unhex(&g.control_doc_id), id);
    assert_eq!(
        control_doc(&the_group()).to_bytes().as_slice(),
        id.as_slice()
    );

    let genesis = proto::GroupGenesis {
        creator: identity_public().to_vec(),
        nonce: NONCE.to_vec(),
    }
    .encode_to_vec();
    assert_eq!(hex::encode(&genesis), g.genesis_record);
    assert_eq!(
        Record::decode("g", &genesis),
        Ok(Record::Genesis {
            creator: alice(),
            nonce: NONCE
        })
    );
    assert_eq!((g.name.as_str(), g.about.as_str()), (NAME, ABOUT));
    let info = proto::GroupInfo {
        name: NAME.into(),
        about: ABOUT.into(),
    }
    .encode_to_vec();
    assert_eq!(hex::encode(&info), g.info_record);
    assert!(Record::decode("info", &info).is_ok());
}

#[test]
fn an_epoch_key_names_its_topic_and_its_id() {
    let v = vectors();
    let g = &v.group;
    assert_eq!(unhex(&g.epoch_key), EPOCH_KEY);
    let key = EpochKey::from_bytes(EPOCH_KEY);
    let id = &sha256(&[b"kith/epoch-key-id/v1", &EPOCH_KEY])[..8];
    assert_eq!(g.key_id, hex::encode(id));
    assert_eq!(g.key_id, hex::encode(key.id()));
    let topic = &sha256(&[b"kith/group-topic/v1", &EPOCH_KEY])[..16];
    assert_eq!(g.topic, format!("kith/group/{}", hex::encode(topic)));
    assert_eq!(g.topic, key.topic());
}

#[test]
fn the_sealed_epoch_key_opens_with_the_device_key_alone() {
    let v = vectors();
    let g = &v.group;
    let device = DeviceKey::from_secret_bytes(&DEVICE_SECRET);
    // The device's X25519 public key: its ed25519 key in Montgomery form,
    // and the X25519 public key of its secret's scalar.
    let montgomery = ed25519_dalek::VerifyingKey::from_bytes(&device_public())
        .unwrap()
        .to_montgomery()
        .to_bytes();
    assert_eq!(g.device_x25519_public, hex::encode(montgomery));
    let x25519_public = crypto_box::SecretKey::from(device.x25519_secret_bytes()).public_key();
    assert_eq!(x25519_public.as_bytes(), &montgomery);

    let sealed = unhex(&g.sealed_key);
    assert_eq!(sealed.len(), 80, "ephemeral key, tag, key");
    assert_eq!(
        EpochKey::open(&device, &sealed),
        Some(EpochKey::from_bytes(EPOCH_KEY)),
        "kith opens the frozen seal"
    );
    let mallory = DeviceKey::from_secret_bytes(&[0x04; 32]);
    assert_eq!(EpochKey::open(&mallory, &sealed), None);

    assert_eq!(unhex(&g.seal_ephemeral_secret), SEAL_EPHEMERAL_SECRET);
    let ephemeral = crypto_box::SecretKey::from(SEAL_EPHEMERAL_SECRET).public_key();
    assert_eq!(&sealed[..32], ephemeral.as_bytes());
    let resealed = x25519_public
        .seal(&mut FixedRandomness(SEAL_EPHEMERAL_SECRET), &EPOCH_KEY)
        .unwrap();
    assert_eq!(resealed, sealed, "crypto_box_seal with that ephemeral key");

    // kith's own seal is random, so it is checked by opening it.
    let fresh = EpochKey::from_bytes(EPOCH_KEY)
        .seal_for(&device.id())
        .unwrap();
    assert_eq!(fresh.len(), 80);
    assert_ne!(fresh, sealed);
    assert_eq!(
        EpochKey::open(&device, &fresh),
        Some(EpochKey::from_bytes(EPOCH_KEY))
    );

    let keys = proto::GroupKeys {
        epoch: 0,
        seals: vec![proto::SealedKey {
            device: device_public().to_vec(),
            sealed: sealed.clone(),
        }],
    }
    .encode_to_vec();
    assert_eq!(hex::encode(&keys), g.keys_record);
    assert_eq!(g.keys_record_key, format!("k/0/{KEYS_TAG}"));
    assert_eq!(
        Record::decode(&g.keys_record_key, &keys),
        Ok(Record::Keys {
            epoch: 0,
            seals: vec![(DeviceId(device_public()), sealed)]
        })
    );
}

#[test]
fn the_control_log_replays_to_the_creator_an_invite_and_epoch_zero() {
    let v = vectors();
    let g = &v.group;
    assert_eq!(
        (g.genesis_commit_time_ms, g.invite_commit_time_ms),
        (GENESIS_TIME_MS, INVITE_TIME_MS)
    );
    let [genesis, invite] = write_control(&unhex(&g.sealed_key));
    let control = control_doc(&the_group());
    check_signed(&g.genesis, control, &genesis);
    let second = check_signed(&g.invite, control, &invite);
    assert_eq!(second.header().deps, vec![genesis.hash().0]);

    assert_eq!(unhex(&g.invite_secret), INVITE_SECRET);
    assert_eq!(g.invite_public_key, hex::encode(invite_public()));
    assert_eq!(
        (g.invite_expires_at_ms, g.invite_uses),
        (INVITE_EXPIRES_AT_MS, 1)
    );
    let record = proto::GroupInvite {
        public_key: invite_public().to_vec(),
        expires_at_ms: INVITE_EXPIRES_AT_MS,
        uses: 1,
        role: proto::GroupRole::Member as i32,
    }
    .encode_to_vec();
    assert_eq!(hex::encode(&record), g.invite_record);
    assert_eq!(
        g.invite_record_key,
        format!("i/{}/{INVITE_TAG}", g.invite_public_key)
    );
    assert!(Record::decode(&g.invite_record_key, &record).is_ok());
    let key = InviteKey::decode(&g.invite_key).expect("the invite key reads");
    assert_eq!((key.group, key.secret), (the_group(), INVITE_SECRET));
    assert!(key.addresses.is_empty());
    assert_eq!(key.encode(), g.invite_key);

    let frozen = [&g.genesis, &g.invite].map(|cv| Change::from_bytes(unhex(&cv.change)).unwrap());
    let author_of = |actor: &[u8]| actor.starts_with(&device_public()).then(alice);
    assert_eq!(
        may_write_control(the_group(), &[], &frozen[0], &alice(), author_of),
        Ok(())
    );
    let state = GroupState::replay(the_group(), frozen.to_vec(), author_of);
    assert_eq!(state.creator, Some(alice()));
    assert!(state.is_admin(&alice()));
    assert_eq!((state.name.as_str(), state.about.as_str()), (NAME, ABOUT));
    assert_eq!(state.epoch(), Some(0));
    let device = DeviceKey::from_secret_bytes(&DEVICE_SECRET);
    assert_eq!(
        state.keys_for(&device),
        vec![(0, EpochKey::from_bytes(EPOCH_KEY))]
    );
    let invite = &state.invites[&invite_public()];
    assert_eq!(
        (invite.uses, invite.role, invite.by),
        (1, Role::Member, alice())
    );

    // Bob's join proof, as section 14 defines it.
    assert_eq!(g.joiner, bob().to_string());
    let mut message = b"kith/invite-proof/v1".to_vec();
    message.extend_from_slice(&the_group().0);
    message.extend_from_slice(&invite_public());
    message.extend_from_slice(&bob().0);
    let proof = SigningKey::from_bytes(&INVITE_SECRET)
        .sign(&message)
        .to_bytes();
    assert_eq!(g.join_proof, hex::encode(proof));
    assert_eq!(key.prove(&bob()), proof);
    assert_eq!(
        state.check_join(&invite_public(), &bob(), &proof, INVITE_EXPIRES_AT_MS),
        Ok(Role::Member)
    );
    assert_eq!(
        state.check_join(&invite_public(), &bob(), &proof, INVITE_EXPIRES_AT_MS + 1),
        Err(JoinRefusal::Expired)
    );
    assert_eq!(
        state.check_join(&invite_public(), &alice(), &proof, INVITE_TIME_MS as u64),
        Err(JoinRefusal::BadProof)
    );
}

#[test]
fn a_group_post_travels_encrypted_under_the_epoch_key_with_the_group_as_associated_data() {
    let v = vectors();
    let g = &v.group;
    let feed_doc = DocId::feed(alice(), the_group(), 0);
    assert_eq!(g.feed_doc_id, hex::encode(feed_doc.to_bytes()));
    assert_eq!(
        (g.post_key.as_str(), g.post_text.as_str(), g.post_at_ms),
        (POST_KEY, POST_TEXT, POST_AT_MS)
    );
    let mut doc = new_doc();
    let body = kith_core::Body::with_salt(super::POST_SALT, POST_TEXT);
    feed::create_post_with(&mut doc, POST_KEY, &body, POST_AT_MS, None).unwrap();
    let made = commit(&mut doc, POST_AT_MS as i64);
    check_signed(&g.post, feed_doc, &made);
    assert_eq!(g.post.bodies, vec![hex::encode(body.as_bytes())]);
    let state = feed::post_state(&apply(&[&g.post]), POST_KEY).unwrap();
    assert_eq!(
        state.text.map(|(t, _)| t),
        Some(feed::PostText::Body(body.hash()))
    );

    let plaintext = proto::GossipChange {
        change: Some(proto::SignedChange::decode(unhex(&g.post.signed_change).as_slice()).unwrap()),
        certificate: Some(vector_cert(&v).to_proto()),
    }
    .encode_to_vec();
    assert_eq!(hex::encode(&plaintext), g.gossip_plaintext);

    assert_eq!(unhex(&g.gossip_nonce), GOSSIP_NONCE);
    let message = unhex(&g.group_gossip);
    let decoded = proto::GroupGossip::decode(message.as_slice()).unwrap();
    let key = EpochKey::from_bytes(EPOCH_KEY);
    assert_eq!(decoded.key_id, key.id());
    assert_eq!(decoded.nonce, GOSSIP_NONCE);
    let ciphertext = XChaCha20Poly1305::new((&EPOCH_KEY).into())
        .encrypt(
            XNonce::from_slice(&GOSSIP_NONCE),
            Payload {
                msg: &plaintext,
                aad: &the_group().0,
            },
        )
        .unwrap();
    assert_eq!(decoded.ciphertext, ciphertext);

    let holds = |id: &[u8; 8]| (*id == key.id()).then(|| key.clone());
    assert_eq!(decrypt(&the_group(), &message, holds), Ok(plaintext));
    assert_eq!(
        decrypt(&SpaceId([0x0b; 32]), &message, holds),
        Err(OpenError::Forged),
        "bound to its group"
    );
    assert_eq!(
        decrypt(&the_group(), &message, |_: &[u8; 8]| None),
        Err(OpenError::UnknownKey)
    );
}
