//! Changes and certificates a receiver refuses, each with the verdict
//! `proto/README.md` gives it (sections 2.1, 5 and 7). The verdicts are
//! the errors kith returns, printed as Rust debug strings.

use automerge::AutoCommit;
use kith_core::schema::feed;
use kith_core::signed::{MAX_CHANGE_BYTES, MAX_SIGNED_CHANGE_BYTES};
use kith_core::{Body, DeviceCert, DeviceId, DeviceKey, IdentityId, SignedChange, proto};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{Base, ISSUED_AT_MS, STORE_SUFFIX, commit};

/// Mallory's device: the forger (secret `04` × 32).
pub const MALLORY_DEVICE_SECRET: [u8; 32] = [0x04; 32];
/// Alice's second device, certified by her (secret `05` × 32).
pub const SECOND_DEVICE_SECRET: [u8; 32] = [0x05; 32];
/// The neutral element of the curve: a public key of order 1.
pub const SMALL_ORDER_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    k[0] = 1;
    k
};
/// The encoding of the base point B.
pub const BASE_POINT: [u8; 32] = {
    let mut b = [0x66u8; 32];
    b[0] = 0x58;
    b
};
/// ℓ, the order of the base point, little-endian.
pub const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
pub const FORGED_POST_KEY: &str = "forged";
pub const FORGED_POST_TEXT: &str = "not written by alice";

#[derive(Debug, serde::Serialize)]
pub struct Rejected {
    forged_signature: RejectedChange,
    actor_not_signer: RejectedChange,
    non_canonical_s: RejectedChange,
    small_order_key: RejectedChange,
    small_order_certificate: RejectedCertificate,
    oversized_change: Oversized,
    oversized_envelope: Oversized,
    short_body: RejectedChange,
    unbound_body: UnboundBody,
}

/// The first post with a body beside it whose hash the change does not
/// hold (another salt): the change is accepted, the body is not kept.
#[derive(Debug, serde::Serialize)]
struct UnboundBody {
    signed_change: String,
    verdict: String,
    bodies_kept: usize,
}

/// A signed change, the certificates the receiver holds, and its verdict.
#[derive(Debug, serde::Serialize)]
struct RejectedChange {
    signed_change: String,
    certificates: Vec<String>,
    step: u8,
    verdict: String,
}

#[derive(Debug, serde::Serialize)]
struct RejectedCertificate {
    certificate: String,
    step: u8,
    verdict: String,
}

/// An envelope too large to print: the `signed_change` vector with zero
/// bytes appended to its `change` until the change is `change_length`
/// bytes long.
#[derive(Debug, serde::Serialize)]
struct Oversized {
    change_length: usize,
    signed_change_length: usize,
    signed_change_sha256: String,
    step: u8,
    verdict: String,
}

/// `s + ℓ`, little-endian: the same scalar modulo ℓ, not reduced.
pub fn add_group_order(s: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s[i]) + u16::from(GROUP_ORDER[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    out
}

fn verdict(signed: &SignedChange, certs: &[DeviceCert]) -> String {
    let bytes = signed.encode();
    let result = SignedChange::decode(&bytes).and_then(|c| {
        c.verify(&|d: &DeviceId| certs.iter().find(|c| c.device == *d).map(|c| c.identity))
    });
    match result {
        Ok(_) => "accepted".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn rejected(signed: &SignedChange, certs: &[DeviceCert], step: u8) -> RejectedChange {
    RejectedChange {
        signed_change: hex::encode(signed.encode()),
        certificates: certs.iter().map(|c| hex::encode(c.encode())).collect(),
        step,
        verdict: verdict(signed, certs),
    }
}

fn oversized(base: &Base, change_length: usize, step: u8) -> Oversized {
    let mut envelope = base.post.to_proto();
    envelope.change.resize(change_length, 0);
    let bytes = envelope.encode_to_vec();
    Oversized {
        change_length,
        signed_change_length: bytes.len(),
        signed_change_sha256: hex::encode(Sha256::digest(&bytes)),
        step,
        verdict: match SignedChange::decode(&bytes) {
            Ok(_) => "accepted".into(),
            Err(e) => format!("{e:?}"),
        },
    }
}

pub fn vectors(base: &Base) -> Result<Rejected, Box<dyn std::error::Error>> {
    let certs = std::slice::from_ref(&base.cert);
    let hash = kith_core::chunk::parse_header(&base.post.change)?.hash;
    let signed_bytes = SignedChange::signed_bytes(&base.doc_id, &hash);

    // Mallory signs Alice's change under Alice's device id.
    let mut forged = base.post.clone();
    forged.signature = DeviceKey::from_secret_bytes(&MALLORY_DEVICE_SECRET).sign(&signed_bytes);

    // Alice's second device signs a change whose actor is her first device.
    let second = DeviceKey::from_secret_bytes(&SECOND_DEVICE_SECRET);
    let second_cert = DeviceCert::issue(&base.identity, &second, ISSUED_AT_MS);
    let mut borrowed = base.post.clone();
    borrowed.device = second.id();
    borrowed.signature = second.sign(&signed_bytes);

    // The same signature with S + ℓ in place of S.
    let mut malleated = base.post.clone();
    let s: [u8; 32] = malleated.signature[32..].try_into()?;
    malleated.signature[32..].copy_from_slice(&add_group_order(&s));

    // A change by the small-order key, "signed" with R = B, S = 1, which
    // satisfies [S]B = R + [k]A for every message when A is the neutral
    // element.
    let mut actor = SMALL_ORDER_KEY.to_vec();
    actor.extend_from_slice(&STORE_SUFFIX);
    let mut doc = AutoCommit::new().with_actor(automerge::ActorId::from(actor));
    // Its body is left behind: the vector is about the signature.
    let body = Body::with_salt([0; kith_core::body::SALT_LEN], FORGED_POST_TEXT);
    feed::create_post_with(&mut doc, FORGED_POST_KEY, &body, 0, None)?;
    let change = commit(&mut doc, 0)?;
    let mut universal = [0u8; 64];
    universal[..32].copy_from_slice(&BASE_POINT);
    universal[32] = 1;
    let weak = SignedChange {
        doc: base.doc_id,
        change: change.raw_bytes().to_vec(),
        device: DeviceId(SMALL_ORDER_KEY),
        signature: universal,
        bodies: Vec::new(),
    };

    // Alice certifies the small-order key, which "counter-signs" the same way.
    let identity: IdentityId = base.identity.id();
    let cert_bytes = DeviceCert::signed_bytes(
        kith_core::cert::CERT_DOMAIN,
        &identity,
        &DeviceId(SMALL_ORDER_KEY),
        ISSUED_AT_MS,
    );
    let weak_cert = proto::DeviceCertificate {
        identity: identity.0.to_vec(),
        device: SMALL_ORDER_KEY.to_vec(),
        issued_at_ms: ISSUED_AT_MS,
        signature: base.identity.sign(&cert_bytes).to_vec(),
        device_signature: universal.to_vec(),
    }
    .encode_to_vec();
    let weak_cert_verdict = match DeviceCert::decode(&weak_cert) {
        Ok(_) => "accepted".into(),
        Err(e) => format!("{e:?}"),
    };

    // The longest change whose envelope still fits, plus one byte.
    let mut envelope = base.post.to_proto();
    let mut longest = MAX_SIGNED_CHANGE_BYTES;
    loop {
        envelope.change.resize(longest, 0);
        if envelope.encoded_len() <= MAX_SIGNED_CHANGE_BYTES {
            break;
        }
        longest -= 1;
    }
    // A body too short to hold its salt.
    let mut short = base.post.clone();
    short.bodies = vec![vec![0x04; kith_core::body::SALT_LEN - 1]];
    // A well-formed body the change does not name.
    let mut unbound = base.post.clone();
    unbound.bodies = vec![Body::with_salt([0x09; 16], "hello, kith").into_bytes()];
    let unbound_change = automerge::Change::from_bytes(unbound.change.clone())?;
    let bodies_kept =
        kith_core::schema::match_bodies(&unbound_change.decode(), &unbound.bodies).len();
    Ok(Rejected {
        short_body: rejected(&short, certs, 5),
        unbound_body: UnboundBody {
            signed_change: hex::encode(unbound.encode()),
            verdict: verdict(&unbound, certs),
            bodies_kept,
        },
        forged_signature: rejected(&forged, certs, 12),
        actor_not_signer: rejected(&borrowed, &[second_cert], 9),
        non_canonical_s: rejected(&malleated, certs, 12),
        small_order_key: rejected(&weak, &[], 8),
        small_order_certificate: RejectedCertificate {
            certificate: hex::encode(weak_cert),
            step: 3,
            verdict: weak_cert_verdict,
        },
        oversized_change: oversized(base, MAX_CHANGE_BYTES + 1, 3),
        oversized_envelope: oversized(base, longest + 1, 1),
    })
}
