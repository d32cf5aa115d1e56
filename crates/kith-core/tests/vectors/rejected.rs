//! Changes and certificates a receiver refuses (proto/README.md sections
//! 2.1, 5 and 7), each with the verdict the spec gives: the error kith
//! returns, as its debug string.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use kith_core::signed::{MAX_CHANGE_BYTES, MAX_SIGNED_CHANGE_BYTES};
use kith_core::{CertError, DeviceCert, DeviceId, DeviceKey, IdentityKey, SignedChange, proto};
use prost::Message;
use sha2::{Digest, Sha256};

use super::{
    DEVICE_SECRET, ISSUED_AT_MS, STORE_SUFFIX, device_public, doc_id_bytes, identity_public, unhex,
    vectors,
};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UnboundBody {
    signed_change: String,
    verdict: String,
    bodies_kept: usize,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectedChange {
    signed_change: String,
    certificates: Vec<String>,
    step: u8,
    verdict: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectedCertificate {
    certificate: String,
    step: u8,
    verdict: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Oversized {
    change_length: usize,
    signed_change_length: usize,
    signed_change_sha256: String,
    step: u8,
    verdict: String,
}

/// ℓ, the order of the base point, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The neutral element: a public key of order 1.
fn small_order_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    k[0] = 1;
    k
}

/// `R = B, S = 1`: under the neutral element as key, [S]B = R + [k]A holds
/// for every message.
fn universal_signature() -> [u8; 64] {
    let mut sig = [0x66u8; 64];
    sig[0] = 0x58; // B's encoding: 58 66 66 … 66
    sig[32..].fill(0);
    sig[32] = 1;
    sig
}

/// `a < b`, both little-endian.
fn less(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().rev().lt(b.iter().rev())
}

/// The verdict kith gives a frozen envelope, with the frozen certificates.
fn verdict(r: &RejectedChange) -> String {
    let certs: Vec<DeviceCert> = r
        .certificates
        .iter()
        .map(|c| DeviceCert::decode(&unhex(c)).expect("the certificates are valid"))
        .collect();
    let lookup =
        |d: &DeviceId| -> Option<_> { certs.iter().find(|c| c.device == *d).map(|c| c.identity) };
    match SignedChange::decode(&unhex(&r.signed_change)).and_then(|c| c.verify(&lookup)) {
        Ok(_) => "accepted".into(),
        Err(e) => format!("{e:?}"),
    }
}

/// The vector's signed bytes: what the device signed for the first change.
fn signed_bytes() -> Vec<u8> {
    let v = vectors();
    let mut m = b"kith/change/v1".to_vec();
    m.extend_from_slice(&doc_id_bytes());
    m.extend_from_slice(&unhex(&v.change_hash));
    m
}

#[test]
fn a_signature_by_another_key_is_a_bad_signature() {
    let v = vectors();
    let r = &v.rejected.forged_signature;
    assert_eq!((r.step, r.verdict.as_str()), (12, "BadSignature"));
    assert_eq!(verdict(r), r.verdict);
    assert_eq!(r.certificates, vec![v.certificate.clone()]);
    let mut expected = SignedChange::decode(&unhex(&v.signed_change)).unwrap();
    expected.signature = SigningKey::from_bytes(&[0x04; 32])
        .sign(&signed_bytes())
        .to_bytes();
    assert_eq!(hex::encode(expected.encode()), r.signed_change);
}

#[test]
fn a_change_whose_actor_is_another_device_is_an_actor_mismatch() {
    let v = vectors();
    let r = &v.rejected.actor_not_signer;
    assert_eq!((r.step, r.verdict.as_str()), (9, "ActorMismatch"));
    assert_eq!(verdict(r), r.verdict);
    // Alice certified the second device, which signed correctly: only the
    // actor, which names her first device, is wrong.
    let second = DeviceKey::from_secret_bytes(&[0x05; 32]);
    let cert = DeviceCert::issue(
        &IdentityKey::from_secret_bytes(&super::IDENTITY_SECRET),
        &second,
        ISSUED_AT_MS,
    );
    assert_eq!(r.certificates, vec![hex::encode(cert.encode())]);
    let signed = SignedChange::decode(&unhex(&r.signed_change)).unwrap();
    assert_eq!(signed.device, second.id());
    assert_eq!(hex::encode(&signed.change), v.change);
    VerifyingKey::from_bytes(&second.id().0)
        .unwrap()
        .verify_strict(&signed_bytes(), &Signature::from_bytes(&signed.signature))
        .expect("the signature itself is sound");
}

#[test]
fn a_signature_with_s_not_reduced_below_the_group_order_is_refused() {
    let v = vectors();
    let r = &v.rejected.non_canonical_s;
    assert_eq!((r.step, r.verdict.as_str()), (12, "BadSignature"));
    assert_eq!(verdict(r), r.verdict);
    let good = unhex(&v.signature);
    let bad = SignedChange::decode(&unhex(&r.signed_change))
        .unwrap()
        .signature;
    assert_eq!(bad[..32], good[..32], "R is unchanged");
    // S' = S + ℓ: the same scalar modulo ℓ, but not below ℓ.
    let (s, s2): ([u8; 32], [u8; 32]) = (
        good[32..].try_into().unwrap(),
        bad[32..].try_into().unwrap(),
    );
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s[i]) + u16::from(GROUP_ORDER[i]) + carry;
        assert_eq!(s2[i], sum as u8, "byte {i} of S + ℓ");
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    assert!(less(&s, &GROUP_ORDER) && !less(&s2, &GROUP_ORDER));
    let key = VerifyingKey::from_bytes(&device_public()).unwrap();
    let msg = signed_bytes();
    assert!(
        key.verify_strict(&msg, &Signature::from_bytes(&good.try_into().unwrap()))
            .is_ok()
    );
    assert!(
        key.verify_strict(&msg, &Signature::from_bytes(&bad))
            .is_err()
    );
    assert!(key.verify(&msg, &Signature::from_bytes(&bad)).is_err());
}

#[test]
fn a_small_order_device_key_is_refused_though_its_signature_fits_any_message() {
    let v = vectors();
    let r = &v.rejected.small_order_key;
    assert_eq!((r.step, r.verdict.as_str()), (8, "WeakDeviceKey"));
    assert_eq!(verdict(r), r.verdict);
    let signed = SignedChange::decode(&unhex(&r.signed_change)).unwrap();
    assert_eq!(signed.device, DeviceId(small_order_key()));
    assert_eq!(signed.signature, universal_signature());
    let header = kith_core::chunk::parse_header(&signed.change).unwrap();
    let mut actor = small_order_key().to_vec();
    actor.extend_from_slice(&STORE_SUFFIX);
    assert_eq!(header.actor, actor, "its actor is the key's own");

    // The cofactorless equation alone accepts it, for this and any message;
    // rule 3 of section 2.1 is what refuses it.
    let key = VerifyingKey::from_bytes(&small_order_key()).unwrap();
    assert!(key.is_weak());
    let sig = Signature::from_bytes(&universal_signature());
    let msg = SignedChange::signed_bytes(&signed.doc, &header.hash);
    assert!(key.verify(&msg, &sig).is_ok());
    assert!(key.verify(b"any message at all", &sig).is_ok());
    assert!(key.verify_strict(&msg, &sig).is_err());
}

#[test]
fn a_certificate_for_a_small_order_device_is_refused() {
    let v = vectors();
    let r = &v.rejected.small_order_certificate;
    assert_eq!((r.step, r.verdict.as_str()), (3, "InvalidKey"));
    let bytes = unhex(&r.certificate);
    assert_eq!(DeviceCert::decode(&bytes), Err(CertError::InvalidKey));
    let fields = proto::DeviceCertificate::decode(bytes.as_slice()).unwrap();
    assert_eq!(fields.identity, identity_public());
    assert_eq!(fields.device, small_order_key());
    assert_eq!(fields.device_signature, universal_signature());
    // Alice's signature is sound, and the device's "counter-signature"
    // passes the cofactorless equation: only the key check refuses it.
    let signed = DeviceCert::signed_bytes(
        kith_core::cert::CERT_DOMAIN,
        &kith_core::IdentityId(identity_public()),
        &DeviceId(small_order_key()),
        ISSUED_AT_MS,
    );
    let alice = VerifyingKey::from_bytes(&identity_public()).unwrap();
    assert!(
        alice
            .verify_strict(&signed, &Signature::from_slice(&fields.signature).unwrap())
            .is_ok()
    );
    let accept = DeviceCert::signed_bytes(
        kith_core::cert::DEVICE_ACCEPT_DOMAIN,
        &kith_core::IdentityId(identity_public()),
        &DeviceId(small_order_key()),
        ISSUED_AT_MS,
    );
    let weak = VerifyingKey::from_bytes(&small_order_key()).unwrap();
    assert!(
        weak.verify(&accept, &Signature::from_bytes(&universal_signature()))
            .is_ok()
    );
}

#[test]
fn a_body_too_short_for_its_salt_refuses_the_envelope_at_decoding() {
    let v = vectors();
    let r = &v.rejected.short_body;
    assert_eq!((r.step, r.verdict.as_str()), (5, "Body(TooShort(15))"));
    assert_eq!(verdict(r), r.verdict);
    let mut expected = proto::SignedChange::decode(unhex(&v.signed_change).as_slice()).unwrap();
    expected.bodies = vec![vec![0x04; 15]];
    assert_eq!(hex::encode(expected.encode_to_vec()), r.signed_change);
}

#[test]
fn a_body_the_change_does_not_name_is_not_kept_and_the_change_is_accepted() {
    let v = vectors();
    let u = &v.rejected.unbound_body;
    assert_eq!((u.verdict.as_str(), u.bodies_kept), ("accepted", 0));
    let mut expected = proto::SignedChange::decode(unhex(&v.signed_change).as_slice()).unwrap();
    // Another salt: a well-formed body whose hash the change does not hold.
    expected.bodies = vec![[&[0x09u8; 16][..], b"hello, kith"].concat()];
    assert_eq!(hex::encode(expected.encode_to_vec()), u.signed_change);
    let cert = DeviceCert::decode(&unhex(&v.certificate)).unwrap();
    let lookup = |d: &DeviceId| (*d == cert.device).then_some(cert.identity);
    let signed = SignedChange::decode(&unhex(&u.signed_change))
        .unwrap()
        .verify(&lookup)
        .expect("bodies are not signed: the change stands on its own");
    let change = automerge::Change::from_bytes(signed.signed().change.clone()).unwrap();
    assert_eq!(
        kith_core::schema::match_bodies(&change.decode(), &signed.signed().bodies).len(),
        u.bodies_kept
    );
}

/// The frozen description of an oversized envelope, rebuilt: the first
/// change's envelope with zero bytes appended to its change.
fn rebuild(o: &Oversized) -> Vec<u8> {
    let v = vectors();
    let mut envelope = proto::SignedChange::decode(unhex(&v.signed_change).as_slice()).unwrap();
    envelope.change.resize(o.change_length, 0);
    let bytes = envelope.encode_to_vec();
    assert_eq!(bytes.len(), o.signed_change_length);
    assert_eq!(hex::encode(Sha256::digest(&bytes)), o.signed_change_sha256);
    bytes
}

#[test]
fn a_change_over_the_limit_is_oversized_before_anything_else_is_read() {
    let v = vectors();
    let o = &v.rejected.oversized_change;
    assert_eq!((o.step, o.verdict.as_str()), (3, "Oversized(61441)"));
    assert_eq!(o.change_length, MAX_CHANGE_BYTES + 1);
    let bytes = rebuild(o);
    assert!(
        bytes.len() <= MAX_SIGNED_CHANGE_BYTES,
        "the envelope itself fits"
    );
    let err = SignedChange::decode(&bytes).unwrap_err();
    assert_eq!(format!("{err:?}"), o.verdict);
    // The same change reaching verification some other way (step 6).
    let mut signed = SignedChange::decode(&unhex(&v.signed_change)).unwrap();
    signed.change.resize(o.change_length, 0);
    let nobody = |_: &DeviceId| None;
    assert_eq!(
        format!("{:?}", signed.verify(&nobody).unwrap_err()),
        o.verdict
    );
}

#[test]
fn an_envelope_over_the_limit_is_refused_before_it_is_decoded() {
    let v = vectors();
    let o = &v.rejected.oversized_envelope;
    assert_eq!((o.step, o.verdict.as_str()), (1, "EnvelopeTooLarge(61953)"));
    let bytes = rebuild(o);
    assert_eq!(bytes.len(), MAX_SIGNED_CHANGE_BYTES + 1);
    let err = SignedChange::decode(&bytes).unwrap_err();
    assert_eq!(format!("{err:?}"), o.verdict);
    let _ = DEVICE_SECRET;
}
