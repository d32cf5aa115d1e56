//! The edges of the signature rule (proto/README.md §2.1): each vector's
//! signature is made again from the device secret, its nonce and the
//! order-8 point, given to kith, and compared with two other
//! implementations' rules: RFC 8032's cofactorless strict check
//! (ed25519-dalek's `verify_strict`) and ZIP-215 (ed25519-zebra).

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use kith_core::{DeviceCert, DeviceId, SignedChange};
use sha2::{Digest, Sha512};

use super::{DEVICE_SECRET, device_public, unhex, unhex32, vectors};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signatures {
    mixed_order_r: Edge,
    small_order_r: Edge,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Edge {
    r: String,
    signed_change: String,
    verdict: String,
}

const ORDER_8: &str = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a";

fn hash_scalar(parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// Makes the edge's signature again as the spec describes it, checks the
/// vector holds it, and returns kith's verdict and the other rules'.
fn check(edge: &Edge) -> (String, bool, bool) {
    let v = vectors();
    let signed = SignedChange::decode(&unhex(&edge.signed_change)).expect("decodes");
    assert_eq!(signed.change, unhex(&v.change), "the first post's change");
    let h = Sha512::digest(DEVICE_SECRET);
    let mut a: [u8; 32] = h[..32].try_into().unwrap();
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a);
    let t = CompressedEdwardsY(unhex32(ORDER_8)).decompress().unwrap();
    assert!(t.is_small_order() && !(Scalar::from(4u8) * t).is_identity());
    let r = Scalar::from_canonical_bytes(unhex32(&edge.r)).unwrap();
    let big_r = (r * ED25519_BASEPOINT_POINT + t).compress().to_bytes();
    let msg = unhex(&v.signed_bytes);
    let k = hash_scalar(&[&big_r, &device_public(), &msg]);
    let s = r + k * a;
    assert_eq!(signed.signature[..32], big_r);
    assert_eq!(signed.signature[32..], s.to_bytes());

    let cert = DeviceCert::decode(&unhex(&v.certificate)).unwrap();
    let lookup = |d: &DeviceId| (*d == cert.device).then_some(cert.identity);
    let kith = match signed.clone().verify(&lookup) {
        Ok(_) => "accepted".to_string(),
        Err(e) => format!("{e:?}"),
    };
    let strict = ed25519_dalek::VerifyingKey::from_bytes(&device_public())
        .unwrap()
        .verify_strict(
            &msg,
            &ed25519_dalek::Signature::from_bytes(&signed.signature),
        )
        .is_ok();
    let zip215 = ed25519_zebra::VerificationKey::try_from(device_public())
        .unwrap()
        .verify(
            &ed25519_zebra::Signature::from_bytes(&signed.signature),
            &msg,
        )
        .is_ok();
    (kith, strict, zip215)
}

#[test]
fn an_r_with_a_small_order_part_is_accepted_by_the_cofactored_rule() {
    let v = vectors();
    let e = &v.signatures.mixed_order_r;
    assert_eq!(
        unhex32(&e.r),
        hash_scalar(&[b"kith test vector nonce"]).to_bytes()
    );
    assert_eq!(e.verdict, "accepted");
    let (kith, strict, zip215) = check(e);
    assert_eq!(kith, e.verdict);
    assert!(!strict, "the cofactorless equation refuses it");
    assert!(zip215, "ZIP-215 accepts it");
}

#[test]
fn an_r_of_small_order_is_refused_though_the_cofactored_equation_holds() {
    let v = vectors();
    let e = &v.signatures.small_order_r;
    assert_eq!(unhex32(&e.r), [0; 32]);
    assert_eq!(e.verdict, "BadSignature");
    let (kith, strict, zip215) = check(e);
    assert_eq!(kith, e.verdict);
    assert!(!strict);
    assert!(zip215, "ZIP-215 alone would accept it: rule 4 refuses it");
}

#[test]
fn batches_give_each_edge_the_single_verdict() {
    let v = vectors();
    let cert = DeviceCert::decode(&unhex(&v.certificate)).unwrap();
    let lookup = |d: &DeviceId| (*d == cert.device).then_some(cert.identity);
    let first = SignedChange::decode(&unhex(&v.signed_change)).unwrap();
    let edges = [&v.signatures.mixed_order_r, &v.signatures.small_order_r];
    for edge in edges {
        let signed = SignedChange::decode(&unhex(&edge.signed_change)).unwrap();
        // Among honest changes, where a batch checks them together.
        let batch = vec![first.clone(), signed, first.clone(), first.clone()];
        let verdicts: Vec<String> = kith_core::verify_batch(batch, &lookup)
            .into_iter()
            .map(|r| match r {
                Ok(_) => "accepted".to_string(),
                Err(e) => format!("{e:?}"),
            })
            .collect();
        assert_eq!(
            verdicts,
            ["accepted", edge.verdict.as_str(), "accepted", "accepted"]
        );
    }
}
