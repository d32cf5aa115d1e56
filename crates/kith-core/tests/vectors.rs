//! The wire-protocol test vectors in `proto/test-vectors.json`, checked both
//! ways: each field is recomputed from the fixed inputs the way
//! `proto/README.md` describes it (and, where there is one, with the library
//! call that makes it), and each encoded vector is decoded and verified.
//! The vectors of refused changes are decoded and verified too, and must
//! get the verdict the spec gives them.
//! Regenerate the file with
//! `cargo run -p kith-core --example test_vectors > proto/test-vectors.json`.

// Further vectors, one file per kind, beside this one.
#[path = "vectors/groups.rs"]
mod groups;
#[path = "vectors/messages.rs"]
mod messages;
#[path = "vectors/posts.rs"]
mod posts;
#[path = "vectors/profile.rs"]
mod profile;
#[path = "vectors/rejected.rs"]
mod rejected;
#[path = "vectors/signatures.rs"]
mod signatures;

use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, Change};
use ed25519_dalek::{Signer, SigningKey};
use kith_core::archive::Archive;
use kith_core::cert::{CERT_DOMAIN, DEVICE_ACCEPT_DOMAIN};
use kith_core::schema::feed;
use kith_core::{
    ChunkError, DeviceCert, DeviceId, DeviceKey, DocId, IdentityId, IdentityKey, PostId,
    SignedChange, SpaceId, Verified, VerifyError, proto, verify_batch,
};
use prost::Message;
use sha2::{Digest, Sha256};

const VECTORS: &str = include_str!("../../../proto/test-vectors.json");

/// The file's fields. Unknown fields are refused so that a field added to
/// the file cannot go unchecked.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    description: String,
    identity_secret: String,
    device_secret: String,
    store_suffix: String,
    issued_at_ms: u64,
    post_key: String,
    post_text: String,
    post_salt: String,
    post_at_ms: u64,
    commit_time_ms: i64,
    post_body: String,
    post_body_hash: String,
    identity_id: String,
    device_id: String,
    actor_id: String,
    certificate_signed_bytes: String,
    device_accept_signed_bytes: String,
    certificate: String,
    doc_id: String,
    change: String,
    change_hash: String,
    signed_bytes: String,
    signature: String,
    signed_change: String,
    post_id: String,
    archive: String,
    reply: posts::Reply,
    reaction: posts::Reaction,
    deletion: posts::Deletion,
    text_object_post: posts::TextObjectPost,
    profile: profile::Profile,
    group: groups::Group,
    sync: messages::Sync,
    gossip: messages::Gossip,
    rejected: rejected::Rejected,
    signatures: signatures::Signatures,
}

/// One signed change of the further vectors.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeVector {
    change: String,
    change_hash: String,
    bodies: Vec<String>,
    signed_change: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(VECTORS).expect("proto/test-vectors.json is valid")
}

impl Vectors {
    /// The first post's change, in the form the further vectors hold theirs.
    fn first_change(&self) -> ChangeVector {
        ChangeVector {
            change: self.change.clone(),
            change_hash: self.change_hash.clone(),
            bodies: vec![self.post_body.clone()],
            signed_change: self.signed_change.clone(),
        }
    }
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector fields are hex")
}

fn unhex32(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("a 32-byte field")
}

/// The fixed inputs of README.md, "Test vectors".
const IDENTITY_SECRET: [u8; 32] = [0x01; 32];
const DEVICE_SECRET: [u8; 32] = [0x02; 32];
const STORE_SUFFIX: [u8; 8] = [0x03; 8];
const ISSUED_AT_MS: u64 = 1_700_000_000_000;
const POST_KEY: &str = "vectorpost";
const POST_TEXT: &str = "hello, kith";
const POST_SALT: [u8; 16] = [0x04; 16];

/// The first post's body: its salt, then its text (README.md §9.1, *Bodies*).
fn post_body() -> Vec<u8> {
    [&POST_SALT[..], POST_TEXT.as_bytes()].concat()
}
const POST_AT_MS: u64 = 1_700_000_000_000;
const COMMIT_TIME_MS: i64 = 1_700_000_000_000;

fn identity_public() -> [u8; 32] {
    SigningKey::from_bytes(&IDENTITY_SECRET)
        .verifying_key()
        .to_bytes()
}

fn device_public() -> [u8; 32] {
    SigningKey::from_bytes(&DEVICE_SECRET)
        .verifying_key()
        .to_bytes()
}

fn did_key(public: &[u8; 32]) -> String {
    let mut multikey = vec![0xed, 0x01];
    multikey.extend_from_slice(public);
    format!("did:key:z{}", bs58::encode(multikey).into_string())
}

fn doc_id_bytes() -> Vec<u8> {
    let mut id = vec![1u8]; // feed
    id.extend_from_slice(&identity_public());
    id.extend_from_slice(&[0; 32]); // public space
    id.extend_from_slice(&0u32.to_be_bytes()); // shard 0
    id
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a ULEB128 integer at the start of `buf`: (value, bytes used).
fn read_uleb(buf: &[u8]) -> (u64, usize) {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    panic!("unterminated ULEB128");
}

/// The change chunk split as README.md lays it out.
struct Chunk<'a> {
    magic: &'a [u8],
    checksum: &'a [u8],
    chunk_type: u8,
    /// Byte range of the length field.
    length_field: std::ops::Range<usize>,
    data: &'a [u8],
}

fn split_chunk(raw: &[u8]) -> Chunk<'_> {
    let (len, used) = read_uleb(&raw[9..]);
    let data = &raw[9 + used..];
    assert_eq!(data.len() as u64, len, "the vector's length field is exact");
    Chunk {
        magic: &raw[..4],
        checksum: &raw[4..8],
        chunk_type: raw[8],
        length_field: 9..9 + used,
        data,
    }
}

fn lookup(cert: &DeviceCert) -> impl Fn(&DeviceId) -> Option<IdentityId> + '_ {
    move |d: &DeviceId| (*d == cert.device).then_some(cert.identity)
}

fn vector_cert(v: &Vectors) -> DeviceCert {
    DeviceCert::decode(&unhex(&v.certificate)).expect("the certificate vector verifies")
}

/// A new document written by the vectors' device, with the store suffix.
fn new_doc() -> AutoCommit {
    AutoCommit::new().with_actor(kith_core::actor_id(
        &DeviceId(device_public()),
        &STORE_SUFFIX,
    ))
}

/// Commits `doc` at `time_ms` and returns the change.
fn commit(doc: &mut AutoCommit, time_ms: i64) -> Change {
    doc.commit_with(CommitOptions::default().with_time(time_ms))
        .expect("the operations make a change");
    doc.get_last_local_change()
        .expect("a change was committed")
        .clone()
}

/// Checks a signed change of the further vectors both ways, as the first
/// change is checked above: `made` (the change the test made with kith's
/// writers) is the frozen chunk; the hash is SHA-256 over type, length and
/// data; the envelope is the protobuf of `doc`, the chunk, the device and
/// the device's signature over `"kith/change/v1" || doc || hash`, then the
/// bodies; every body's BLAKE3 hash is put by the change; and the frozen
/// envelope decodes and verifies under the vector certificate.
fn check_signed(cv: &ChangeVector, doc: DocId, made: &Change) -> Verified<SignedChange> {
    assert_eq!(
        hex::encode(made.raw_bytes()),
        cv.change,
        "kith writes the frozen change"
    );
    let raw = unhex(&cv.change);
    let chunk = split_chunk(&raw);
    assert_eq!(chunk.magic, [0x85, 0x6f, 0x4a, 0x83]);
    assert_eq!(chunk.chunk_type, 1);
    let mut hashed = vec![chunk.chunk_type];
    write_varint(&mut hashed, chunk.data.len() as u64);
    assert_eq!(&raw[chunk.length_field.clone()], &hashed[1..]);
    hashed.extend_from_slice(chunk.data);
    let hash: [u8; 32] = Sha256::digest(&hashed).into();
    assert_eq!(hex::encode(hash), cv.change_hash);
    assert_eq!(chunk.checksum, &hash[..4]);
    assert_eq!(made.hash().0, hash);

    let mut signed_bytes = b"kith/change/v1".to_vec();
    signed_bytes.extend_from_slice(&doc.to_bytes());
    signed_bytes.extend_from_slice(&hash);
    let envelope = proto::SignedChange {
        doc_id: doc.to_bytes().to_vec(),
        change: raw.clone(),
        device: device_public().to_vec(),
        signature: SigningKey::from_bytes(&DEVICE_SECRET)
            .sign(&signed_bytes)
            .to_bytes()
            .to_vec(),
        bodies: cv.bodies.iter().map(|b| unhex(b)).collect(),
    }
    .encode_to_vec();
    assert_eq!(hex::encode(envelope), cv.signed_change);
    let bodies: Vec<Vec<u8>> = cv.bodies.iter().map(|b| unhex(b)).collect();
    let put = kith_core::schema::match_bodies(&made.decode(), &bodies);
    assert_eq!(
        put.len(),
        bodies.len(),
        "every body's hash is put by the change"
    );
    for (body, (_, matched)) in bodies.iter().zip(&put) {
        assert_eq!(body, matched);
        find(&raw, blake3::hash(body).as_bytes()); // the hash is in the change
    }
    let mut signed = SignedChange::sign(
        doc,
        raw,
        &DeviceKey::from_secret_bytes(&DEVICE_SECRET),
        IdentityId(identity_public()),
    )
    .expect("kith signs it");
    signed.attach_bodies(
        bodies
            .into_iter()
            .map(|b| kith_core::Body::from_bytes(b).expect("a body"))
            .collect(),
    );
    assert_eq!(hex::encode(signed.signed().encode()), cv.signed_change);

    let cert = vector_cert(&vectors());
    let verified = SignedChange::decode(&unhex(&cv.signed_change))
        .expect("the envelope decodes")
        .verify(&lookup(&cert))
        .expect("the envelope verifies");
    assert_eq!(verified.doc(), doc);
    assert_eq!(verified.author(), cert.identity);
    verified
}

/// Applies frozen changes, in order, to a new document.
fn apply(changes: &[&ChangeVector]) -> AutoCommit {
    let mut doc = AutoCommit::new();
    doc.apply_changes(
        changes
            .iter()
            .map(|cv| Change::from_bytes(unhex(&cv.change)).expect("a change")),
    )
    .expect("the changes apply");
    doc
}

// (a) Every field, recomputed from the fixed inputs.

#[test]
fn inputs_are_the_documented_ones() {
    let v = vectors();
    assert!(v.description.contains("proto/README.md"));
    assert_eq!(unhex(&v.identity_secret), IDENTITY_SECRET);
    assert_eq!(unhex(&v.device_secret), DEVICE_SECRET);
    assert_eq!(unhex(&v.store_suffix), STORE_SUFFIX);
    assert_eq!(v.issued_at_ms, ISSUED_AT_MS);
    assert_eq!(v.post_key, POST_KEY);
    assert_eq!(v.post_text, POST_TEXT);
    assert_eq!(unhex(&v.post_salt), POST_SALT);
    assert_eq!(v.post_at_ms, POST_AT_MS);
    assert_eq!(v.commit_time_ms, COMMIT_TIME_MS);
}

#[test]
fn identity_and_device_ids_are_multicodec_ed25519_in_base58btc() {
    let v = vectors();
    assert_eq!(v.identity_id, did_key(&identity_public()));
    assert_eq!(v.device_id, did_key(&device_public()));
    let identity = IdentityKey::from_secret_bytes(&IDENTITY_SECRET).id();
    let device = DeviceKey::from_secret_bytes(&DEVICE_SECRET).id();
    assert_eq!(v.identity_id, identity.to_string());
    assert_eq!(v.device_id, device.to_string());
    assert!(v.identity_id.starts_with("did:key:z6Mk"));
}

#[test]
fn actor_id_is_device_key_then_store_suffix() {
    let v = vectors();
    let mut actor = device_public().to_vec();
    actor.extend_from_slice(&STORE_SUFFIX);
    assert_eq!(unhex(&v.actor_id), actor);
    let device = DeviceId(device_public());
    assert_eq!(
        kith_core::actor_id(&device, &STORE_SUFFIX).to_bytes(),
        actor.as_slice()
    );
}

#[test]
fn certificate_signs_domain_identity_device_and_big_endian_time() {
    let v = vectors();
    let fields = |domain: &[u8]| {
        let mut m = domain.to_vec();
        m.extend_from_slice(&identity_public());
        m.extend_from_slice(&device_public());
        m.extend_from_slice(&ISSUED_AT_MS.to_be_bytes());
        m
    };
    let cert_msg = fields(b"kith/device-cert/v1");
    let accept_msg = fields(b"kith/device-accept/v1");
    assert_eq!(unhex(&v.certificate_signed_bytes), cert_msg);
    assert_eq!(unhex(&v.device_accept_signed_bytes), accept_msg);
    let (identity, device) = (IdentityId(identity_public()), DeviceId(device_public()));
    assert_eq!(
        DeviceCert::signed_bytes(CERT_DOMAIN, &identity, &device, ISSUED_AT_MS),
        cert_msg
    );
    assert_eq!(
        DeviceCert::signed_bytes(DEVICE_ACCEPT_DOMAIN, &identity, &device, ISSUED_AT_MS),
        accept_msg
    );

    let encoded = proto::DeviceCertificate {
        identity: identity_public().to_vec(),
        device: device_public().to_vec(),
        issued_at_ms: ISSUED_AT_MS,
        signature: SigningKey::from_bytes(&IDENTITY_SECRET)
            .sign(&cert_msg)
            .to_bytes()
            .to_vec(),
        device_signature: SigningKey::from_bytes(&DEVICE_SECRET)
            .sign(&accept_msg)
            .to_bytes()
            .to_vec(),
    }
    .encode_to_vec();
    assert_eq!(hex::encode(&encoded), v.certificate);
    let issued = DeviceCert::issue(
        &IdentityKey::from_secret_bytes(&IDENTITY_SECRET),
        &DeviceKey::from_secret_bytes(&DEVICE_SECRET),
        ISSUED_AT_MS,
    );
    assert_eq!(hex::encode(issued.encode()), v.certificate);
}

#[test]
fn doc_id_is_kind_owner_space_and_big_endian_shard() {
    let v = vectors();
    let expected = doc_id_bytes();
    assert_eq!(expected.len(), 69);
    assert_eq!(unhex(&v.doc_id), expected);
    let doc = DocId::feed(IdentityId(identity_public()), SpaceId::PUBLIC, 0);
    assert_eq!(doc.to_bytes().as_slice(), expected.as_slice());
}

#[test]
fn change_is_the_uncompressed_automerge_chunk_of_the_post() {
    let v = vectors();
    let actor = kith_core::actor_id(&DeviceId(device_public()), &STORE_SUFFIX);
    let mut doc = AutoCommit::new().with_actor(actor);
    let body = kith_core::Body::with_salt(POST_SALT, POST_TEXT);
    feed::create_post_with(&mut doc, POST_KEY, &body, POST_AT_MS, None).unwrap();
    doc.commit_with(CommitOptions::default().with_time(COMMIT_TIME_MS))
        .unwrap();
    let change = doc.get_last_local_change().unwrap();
    assert_eq!(hex::encode(change.raw_bytes()), v.change);

    let raw = unhex(&v.change);
    let chunk = split_chunk(&raw);
    assert_eq!(chunk.magic, [0x85, 0x6f, 0x4a, 0x83]);
    assert_eq!(chunk.chunk_type, 1, "uncompressed change chunk");
}

#[test]
fn change_hash_is_sha256_of_type_length_and_data_and_starts_with_the_checksum() {
    let v = vectors();
    let raw = unhex(&v.change);
    let chunk = split_chunk(&raw);
    let mut hashed = vec![chunk.chunk_type];
    write_varint(&mut hashed, chunk.data.len() as u64);
    assert_eq!(
        &raw[chunk.length_field.clone()],
        &hashed[1..],
        "the length field is minimal"
    );
    hashed.extend_from_slice(chunk.data);
    let hash: [u8; 32] = Sha256::digest(&hashed).into();
    assert_eq!(hex::encode(hash), v.change_hash);
    assert_eq!(chunk.checksum, &hash[..4]);
    let change = Change::from_bytes(raw.clone()).unwrap();
    assert_eq!(change.hash().0, hash, "it is automerge's change hash");
    assert_eq!(kith_core::chunk::parse_header(&raw).unwrap().hash, hash);
}

#[test]
fn change_signature_covers_domain_doc_id_and_change_hash() {
    let v = vectors();
    let mut msg = b"kith/change/v1".to_vec();
    msg.extend_from_slice(&doc_id_bytes());
    msg.extend_from_slice(&unhex(&v.change_hash));
    assert_eq!(unhex(&v.signed_bytes), msg);
    let doc = DocId::from_bytes(&doc_id_bytes()).unwrap();
    assert_eq!(
        SignedChange::signed_bytes(&doc, &unhex32(&v.change_hash)),
        msg
    );
    let signature = SigningKey::from_bytes(&DEVICE_SECRET).sign(&msg).to_bytes();
    assert_eq!(hex::encode(signature), v.signature);
}

#[test]
fn signed_change_is_the_protobuf_envelope() {
    let v = vectors();
    let encoded = proto::SignedChange {
        doc_id: doc_id_bytes(),
        change: unhex(&v.change),
        device: device_public().to_vec(),
        signature: unhex(&v.signature),
        bodies: vec![post_body()],
    }
    .encode_to_vec();
    assert_eq!(hex::encode(&encoded), v.signed_change);
    let mut signed = SignedChange::sign(
        DocId::from_bytes(&doc_id_bytes()).unwrap(),
        unhex(&v.change),
        &DeviceKey::from_secret_bytes(&DEVICE_SECRET),
        IdentityId(identity_public()),
    )
    .unwrap();
    signed.attach_bodies(vec![kith_core::Body::with_salt(POST_SALT, POST_TEXT)]);
    assert_eq!(hex::encode(signed.signed().encode()), v.signed_change);
}

#[test]
fn a_post_body_is_salt_then_text_and_the_change_holds_its_blake3_hash() {
    let v = vectors();
    assert_eq!(unhex(&v.post_body), post_body());
    assert_eq!(&unhex(&v.post_body)[16..], POST_TEXT.as_bytes());
    let hash = *blake3::hash(&post_body()).as_bytes();
    assert_eq!(unhex32(&v.post_body_hash), hash);
    assert_eq!(kith_core::body::hash(&post_body()), hash);
    let body = kith_core::Body::from_bytes(post_body()).unwrap();
    assert_eq!((body.text(), body.hash()), (POST_TEXT, hash));
    // The change holds the hash as the post's `body`, and no text.
    let raw = unhex(&v.change);
    find(&raw, &hash);
    assert!(
        !raw.windows(POST_TEXT.len())
            .any(|w| w == POST_TEXT.as_bytes()),
        "the text is not in the signed change"
    );
    // The envelope carries the body beside the change.
    let envelope = proto::SignedChange::decode(unhex(&v.signed_change).as_slice()).unwrap();
    assert_eq!(envelope.bodies, vec![post_body()]);
}

#[test]
fn post_id_is_truncated_sha256_in_lowercase_base32() {
    let v = vectors();
    let mut h = Sha256::new();
    h.update(b"kith/post/v1");
    h.update(unhex(&v.doc_id));
    h.update(POST_KEY.as_bytes());
    let digest = h.finalize();
    let printed = data_encoding::BASE32_NOPAD
        .encode(&digest[..16])
        .to_ascii_lowercase();
    assert_eq!(printed.len(), 26);
    assert_eq!(v.post_id, printed);
    let doc = DocId::feed(IdentityId(identity_public()), SpaceId::PUBLIC, 0);
    let derived = PostId::derive(&doc, POST_KEY);
    assert_eq!(v.post_id, derived.to_string());
}

#[test]
fn archive_is_magic_then_length_prefixed_records() {
    let v = vectors();
    let record = |field_tag: u8, body: &[u8]| {
        // ArchiveRecord { oneof record: field 1 certificate | field 2 change }.
        let mut r = vec![field_tag];
        write_varint(&mut r, body.len() as u64);
        r.extend_from_slice(body);
        r
    };
    let mut expected = b"KITHARC1".to_vec();
    for r in [
        record(0x0a, &unhex(&v.certificate)),
        record(0x12, &unhex(&v.signed_change)),
    ] {
        write_varint(&mut expected, r.len() as u64);
        expected.extend_from_slice(&r);
    }
    assert_eq!(hex::encode(&expected), v.archive);
    let archive = Archive {
        certificates: vec![vector_cert(&v)],
        changes: vec![SignedChange::decode(&unhex(&v.signed_change)).unwrap()],
    };
    assert_eq!(hex::encode(archive.encode()), v.archive);
}

// (b) The encoded vectors, decoded and verified.

#[test]
fn certificate_vector_decodes_and_verifies() {
    let v = vectors();
    let cert = vector_cert(&v);
    assert_eq!(cert.identity, v.identity_id.parse().unwrap());
    assert_eq!(cert.device, v.device_id.parse().unwrap());
    assert_eq!(cert.issued_at_ms, ISSUED_AT_MS);
    assert_eq!(cert.verify(), Ok(()));
}

#[test]
fn signed_change_vector_decodes_and_verifies() {
    let v = vectors();
    let cert = vector_cert(&v);
    let verified = SignedChange::decode(&unhex(&v.signed_change))
        .unwrap()
        .verify(&lookup(&cert))
        .unwrap();
    assert_eq!(verified.author(), cert.identity);
    assert_eq!(verified.doc().to_bytes().as_slice(), unhex(&v.doc_id));
    assert_eq!(verified.header().hash, unhex32(&v.change_hash));
    assert_eq!(verified.header().actor, unhex(&v.actor_id));
    assert_eq!(verified.header().seq, 1);
    assert_eq!(verified.header().time_ms, COMMIT_TIME_MS);
    assert_eq!(verified.signed().change, unhex(&v.change));
}

#[test]
fn archive_vector_decodes_and_its_change_verifies() {
    let v = vectors();
    let archive = Archive::decode(&unhex(&v.archive)).unwrap();
    assert_eq!(archive.certificates, vec![vector_cert(&v)]);
    assert_eq!(archive.changes.len(), 1);
    let cert = &archive.certificates[0];
    let results = verify_batch(archive.changes, &lookup(cert));
    let verified = results.into_iter().next().unwrap().unwrap();
    assert_eq!(hex::encode(verified.signed().encode()), v.signed_change);
}

#[test]
fn post_id_vector_parses_and_names_the_post_in_the_change() {
    let v = vectors();
    let id: PostId = v.post_id.parse().unwrap();
    assert_eq!(id.to_string(), v.post_id);
    let owner: IdentityId = v.identity_id.parse().unwrap();
    assert_eq!(
        id,
        PostId::derive(&DocId::feed(owner, SpaceId::PUBLIC, 0), &v.post_key)
    );

    let mut doc = AutoCommit::new();
    doc.apply_changes([Change::from_bytes(unhex(&v.change)).unwrap()])
        .unwrap();
    let post = feed::post_state(&doc, &v.post_key).expect("the change makes the post");
    assert_eq!(
        post.text.map(|(t, _)| t),
        Some(feed::PostText::Body(unhex32(&v.post_body_hash)))
    );
    assert_eq!(post.at_ms, POST_AT_MS);
    assert_eq!(post.reply_to, None);
    assert!(!post.deleted);
}

/// Each byte flipped in each single bit and in all bits.
const FLIPS: [u8; 9] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff];

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle is in haystack")
}

#[test]
fn every_flipped_signature_byte_is_a_bad_signature() {
    let v = vectors();
    let cert = vector_cert(&v);
    let wire = unhex(&v.signed_change);
    let at = find(&wire, &unhex(&v.signature));
    for i in at..at + 64 {
        for mask in FLIPS {
            let mut bytes = wire.clone();
            bytes[i] ^= mask;
            let result = SignedChange::decode(&bytes).unwrap().verify(&lookup(&cert));
            assert_eq!(
                result.err(),
                Some(VerifyError::BadSignature),
                "signature byte {} ^ {mask:#04x}",
                i - at
            );
        }
    }
}

#[test]
fn every_flipped_change_byte_fails_the_header_check() {
    let v = vectors();
    let cert = vector_cert(&v);
    let wire = unhex(&v.signed_change);
    let change = unhex(&v.change);
    let length_field = split_chunk(&change).length_field;
    let at = find(&wire, &change);
    for i in 0..change.len() {
        for mask in FLIPS {
            let mut bytes = wire.clone();
            bytes[at + i] ^= mask;
            let err = SignedChange::decode(&bytes)
                .unwrap()
                .verify(&lookup(&cert))
                .err();
            let Some(VerifyError::Malformed(err)) = err else {
                panic!("change byte {i} ^ {mask:#04x}: expected a malformed change, got {err:?}");
            };
            let fits = match i {
                0..4 => err == ChunkError::Magic,
                4..8 => err == ChunkError::Checksum,
                8 => err == ChunkError::ChunkType(1 ^ mask),
                i if length_field.contains(&i) => {
                    // A flipped length either misframes the chunk or, when its
                    // last byte becomes zero, is an overlong encoding.
                    matches!(
                        err,
                        ChunkError::Truncated | ChunkError::TrailingBytes(_) | ChunkError::Leb128
                    )
                }
                // Any change to the data changes the hash, so its first four
                // bytes no longer match the checksum.
                _ => err == ChunkError::Checksum,
            };
            assert!(fits, "change byte {i} ^ {mask:#04x}: unexpected {err:?}");
        }
    }
}

#[test]
fn a_tampered_change_with_a_recomputed_checksum_is_a_bad_signature() {
    let v = vectors();
    let cert = vector_cert(&v);
    let mut change = unhex(&v.change);
    // Another body's hash in place of the post's: what a relay swapping
    // the text would have to do.
    let hash_at = find(&change, &unhex(&v.post_body_hash));
    change[hash_at] ^= 0x01;
    let chunk = split_chunk(&change);
    let mut hashed = vec![chunk.chunk_type];
    write_varint(&mut hashed, chunk.data.len() as u64);
    hashed.extend_from_slice(chunk.data);
    let checksum = Sha256::digest(&hashed);
    change[4..8].copy_from_slice(&checksum[..4]);

    let mut signed = SignedChange::decode(&unhex(&v.signed_change)).unwrap();
    signed.change = change;
    assert_eq!(
        signed.verify(&lookup(&cert)).err(),
        Some(VerifyError::BadSignature)
    );
}

#[test]
fn the_signature_binds_the_document_id() {
    let v = vectors();
    let cert = vector_cert(&v);
    let mut signed = SignedChange::decode(&unhex(&v.signed_change)).unwrap();
    signed.doc.shard = 1;
    assert_eq!(
        signed.verify(&lookup(&cert)).err(),
        Some(VerifyError::BadSignature)
    );
}

#[test]
fn the_vector_change_needs_a_certificate_from_the_feed_owner() {
    let v = vectors();
    let signed = SignedChange::decode(&unhex(&v.signed_change)).unwrap();
    let nobody = |_: &DeviceId| -> Option<IdentityId> { None };
    assert!(matches!(
        signed.clone().verify(&nobody),
        Err(VerifyError::UncertifiedDevice(_))
    ));
    let mallory = IdentityKey::from_secret_bytes(&[0x04; 32]).id();
    let mallory_owns_it = |_: &DeviceId| Some(mallory);
    assert!(matches!(
        signed.verify(&mallory_owns_it),
        Err(VerifyError::NotAuthorized { .. })
    ));
}
