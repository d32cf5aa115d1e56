//! Prints the wire-protocol test vectors of `proto/README.md` as JSON.
//!
//! ```text
//! cargo run -p kith-core --example test_vectors > proto/test-vectors.json
//! ```
//!
//! Every input is fixed, so every run prints the same bytes. Where kith
//! draws randomness that its calls do not let a caller fix (a group's epoch
//! key sealed to a device, a group gossip nonce), the vector is made with
//! the primitive kith calls and the randomness fixed, and the test checks it
//! by opening it with the fixed keys as well. The test
//! `crates/kith-core/tests/vectors.rs` recomputes each field from the spec and
//! compares it with the committed file.

// One file per kind of vector, beside this one.
#[path = "test_vectors/groups.rs"]
mod groups;
#[path = "test_vectors/messages.rs"]
mod messages;
#[path = "test_vectors/posts.rs"]
mod posts;
#[path = "test_vectors/profile.rs"]
mod profile;
#[path = "test_vectors/rejected.rs"]
mod rejected;
#[path = "test_vectors/signatures.rs"]
mod signatures;

use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, Change};
use kith_core::archive::Archive;
use kith_core::cert::{CERT_DOMAIN, DEVICE_ACCEPT_DOMAIN};
use kith_core::schema::feed;
use kith_core::{
    Body, DeviceCert, DeviceKey, DocId, IdentityId, IdentityKey, PostId, SignedChange, SpaceId,
};

const IDENTITY_SECRET: [u8; 32] = [0x01; 32];
const DEVICE_SECRET: [u8; 32] = [0x02; 32];
const STORE_SUFFIX: [u8; 8] = [0x03; 8];
const ISSUED_AT_MS: u64 = 1_700_000_000_000;
const POST_KEY: &str = "vectorpost";
const POST_TEXT: &str = "hello, kith";
/// The salt of the first post's body (and the group post's). Fixed here so
/// the vectors are fixed; kith draws a body's salt at random.
const POST_SALT: [u8; kith_core::body::SALT_LEN] = [0x04; 16];
const POST_AT_MS: u64 = 1_700_000_000_000;
const COMMIT_TIME_MS: i64 = 1_700_000_000_000;

/// The vectors, in the order the file lists them. Byte strings are lowercase hex.
#[derive(Debug, serde::Serialize)]
struct Vectors {
    description: &'static str,
    // Inputs.
    identity_secret: String,
    device_secret: String,
    store_suffix: String,
    issued_at_ms: u64,
    post_key: &'static str,
    post_text: &'static str,
    post_salt: String,
    post_at_ms: u64,
    commit_time_ms: i64,
    // Derived.
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
    // Further documents and messages, each built on the above.
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

/// One change of a vector: the raw chunk, its hash, the bodies beside it
/// and the signed envelope (which carries them).
#[derive(Debug, serde::Serialize)]
struct ChangeVector {
    change: String,
    change_hash: String,
    bodies: Vec<String>,
    signed_change: String,
}

/// What the later vectors build on: the keys, the certificate and the
/// public feed holding the first post.
struct Base {
    identity: IdentityKey,
    device: DeviceKey,
    cert: DeviceCert,
    doc_id: DocId,
    post_id: PostId,
    /// The feed document after the first post, to add more changes to.
    feed: AutoCommit,
    /// The first post's signed change.
    post: SignedChange,
}

/// Commits `doc`'s pending operations at `time_ms` and returns the change.
fn commit(doc: &mut AutoCommit, time_ms: i64) -> Result<Change, Box<dyn std::error::Error>> {
    doc.commit_with(CommitOptions::default().with_time(time_ms))
        .ok_or("the operations made no change")?;
    Ok(doc
        .get_last_local_change()
        .ok_or("no change was committed")?
        .clone())
}

/// Signs `change` for `doc_id` with the device of `base`.
fn sign(
    base: &Base,
    doc_id: DocId,
    change: &Change,
) -> Result<(SignedChange, ChangeVector), Box<dyn std::error::Error>> {
    sign_with(base, doc_id, change, Vec::new())
}

/// Signs `change` and puts `bodies` beside it.
fn sign_with(
    base: &Base,
    doc_id: DocId,
    change: &Change,
    bodies: Vec<Body>,
) -> Result<(SignedChange, ChangeVector), Box<dyn std::error::Error>> {
    let mut signed = SignedChange::sign(
        doc_id,
        change.raw_bytes().to_vec(),
        &base.device,
        base.identity.id(),
    )?;
    signed.attach_bodies(bodies);
    let vector = ChangeVector {
        change: hex::encode(change.raw_bytes()),
        change_hash: hex::encode(signed.header().hash),
        bodies: signed.signed().bodies.iter().map(hex::encode).collect(),
        signed_change: hex::encode(signed.signed().encode()),
    };
    Ok((signed.into_inner(), vector))
}

/// The identity whose secret is `byte` × 32 (the vectors' other people).
fn person(byte: u8) -> IdentityId {
    IdentityKey::from_secret_bytes(&[byte; 32]).id()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let identity = IdentityKey::from_secret_bytes(&IDENTITY_SECRET);
    let device = DeviceKey::from_secret_bytes(&DEVICE_SECRET);
    let (identity_id, device_id) = (identity.id(), device.id());
    let actor = kith_core::actor_id(&device_id, &STORE_SUFFIX);

    let cert = DeviceCert::issue(&identity, &device, ISSUED_AT_MS);
    let doc_id = DocId::feed(identity_id, SpaceId::PUBLIC, 0);

    let mut doc = AutoCommit::new().with_actor(actor.clone());
    let body = Body::with_salt(POST_SALT, POST_TEXT);
    feed::create_post_with(&mut doc, POST_KEY, &body, POST_AT_MS, None)?;
    doc.commit_with(CommitOptions::default().with_time(COMMIT_TIME_MS))
        .ok_or("the post made no change")?;
    let change = doc
        .get_last_local_change()
        .ok_or("no change was committed")?;

    let mut signed = SignedChange::sign(doc_id, change.raw_bytes().to_vec(), &device, identity_id)?;
    signed.attach_bodies(vec![body.clone()]);
    let change_hash = signed.header().hash;
    let signed = signed.into_inner();
    let archive = Archive {
        certificates: vec![cert.clone()],
        changes: vec![signed.clone()],
    };
    let mut base = Base {
        identity,
        device,
        cert: cert.clone(),
        doc_id,
        post_id: PostId::derive(&doc_id, POST_KEY),
        feed: doc,
        post: signed.clone(),
    };
    let (reply, reaction, feed_changes) = posts::replies_and_reactions(&mut base)?;
    let deletion = posts::deletion(&mut base)?;
    let text_object_post = posts::text_object_post(&base)?;
    let profile = profile::vectors(&base)?;
    let group = groups::vectors(&base)?;
    let sync = messages::sync(&base, &feed_changes, &group)?;
    let gossip = messages::gossip(&base);
    let rejected = rejected::vectors(&base)?;
    let signatures = signatures::vectors(&base)?;

    let vectors = Vectors {
        description: "kith wire protocol v1 test vectors; see proto/README.md. \
                      Byte strings are lowercase hex.",
        identity_secret: hex::encode(IDENTITY_SECRET),
        device_secret: hex::encode(DEVICE_SECRET),
        store_suffix: hex::encode(STORE_SUFFIX),
        issued_at_ms: ISSUED_AT_MS,
        post_key: POST_KEY,
        post_text: POST_TEXT,
        post_salt: hex::encode(POST_SALT),
        post_at_ms: POST_AT_MS,
        commit_time_ms: COMMIT_TIME_MS,
        post_body: hex::encode(body.as_bytes()),
        post_body_hash: hex::encode(body.hash()),
        identity_id: identity_id.to_string(),
        device_id: device_id.to_string(),
        actor_id: hex::encode(actor.to_bytes()),
        certificate_signed_bytes: hex::encode(DeviceCert::signed_bytes(
            CERT_DOMAIN,
            &identity_id,
            &device_id,
            ISSUED_AT_MS,
        )),
        device_accept_signed_bytes: hex::encode(DeviceCert::signed_bytes(
            DEVICE_ACCEPT_DOMAIN,
            &identity_id,
            &device_id,
            ISSUED_AT_MS,
        )),
        certificate: hex::encode(cert.encode()),
        doc_id: hex::encode(doc_id.to_bytes()),
        change: hex::encode(&signed.change),
        change_hash: hex::encode(change_hash),
        signed_bytes: hex::encode(SignedChange::signed_bytes(&doc_id, &change_hash)),
        signature: hex::encode(signed.signature),
        signed_change: hex::encode(signed.encode()),
        post_id: PostId::derive(&doc_id, POST_KEY).to_string(),
        archive: hex::encode(archive.encode()),
        reply,
        reaction,
        deletion,
        text_object_post,
        profile,
        group: group.vector,
        sync,
        gossip,
        rejected,
        signatures,
    };
    println!("{}", serde_json::to_string_pretty(&vectors)?);
    Ok(())
}
