//! Prints the wire-protocol test vectors of `proto/README.md` as JSON.
//!
//! ```text
//! cargo run -p kith-core --example test_vectors > proto/test-vectors.json
//! ```
//!
//! Every input is fixed, so every run prints the same bytes. The test
//! `crates/kith-core/tests/vectors.rs` recomputes each field from the spec and
//! compares it with the committed file.

use automerge::AutoCommit;
use automerge::transaction::CommitOptions;
use kith_core::archive::Archive;
use kith_core::cert::{CERT_DOMAIN, DEVICE_ACCEPT_DOMAIN};
use kith_core::schema::feed;
use kith_core::{DeviceCert, DeviceKey, DocId, IdentityKey, PostId, SignedChange, SpaceId};

const IDENTITY_SECRET: [u8; 32] = [0x01; 32];
const DEVICE_SECRET: [u8; 32] = [0x02; 32];
const STORE_SUFFIX: [u8; 8] = [0x03; 8];
const ISSUED_AT_MS: u64 = 1_700_000_000_000;
const POST_KEY: &str = "vectorpost";
const POST_TEXT: &str = "hello, kith";
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
    post_at_ms: u64,
    commit_time_ms: i64,
    // Derived.
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
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let identity = IdentityKey::from_secret_bytes(&IDENTITY_SECRET);
    let device = DeviceKey::from_secret_bytes(&DEVICE_SECRET);
    let (identity_id, device_id) = (identity.id(), device.id());
    let actor = kith_core::actor_id(&device_id, &STORE_SUFFIX);

    let cert = DeviceCert::issue(&identity, &device, ISSUED_AT_MS);
    let doc_id = DocId::feed(identity_id, SpaceId::PUBLIC, 0);

    let mut doc = AutoCommit::new().with_actor(actor.clone());
    feed::create_post(&mut doc, POST_KEY, POST_TEXT, POST_AT_MS, None)?;
    doc.commit_with(CommitOptions::default().with_time(COMMIT_TIME_MS))
        .ok_or("the post made no change")?;
    let change = doc
        .get_last_local_change()
        .ok_or("no change was committed")?;

    let signed = SignedChange::sign(doc_id, change.raw_bytes().to_vec(), &device, identity_id)?;
    let change_hash = signed.header().hash;
    let signed = signed.into_inner();
    let archive = Archive {
        certificates: vec![cert.clone()],
        changes: vec![signed.clone()],
    };

    let vectors = Vectors {
        description: "kith wire protocol v1 test vectors; see proto/README.md. \
                      Byte strings are lowercase hex.",
        identity_secret: hex::encode(IDENTITY_SECRET),
        device_secret: hex::encode(DEVICE_SECRET),
        store_suffix: hex::encode(STORE_SUFFIX),
        issued_at_ms: ISSUED_AT_MS,
        post_key: POST_KEY,
        post_text: POST_TEXT,
        post_at_ms: POST_AT_MS,
        commit_time_ms: COMMIT_TIME_MS,
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
    };
    println!("{}", serde_json::to_string_pretty(&vectors)?);
    Ok(())
}
