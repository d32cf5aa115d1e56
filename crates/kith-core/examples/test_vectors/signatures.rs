//! The edges of the signature rule (proto/README.md §2.1) that an
//! implementation of another equation gets wrong: the first post's change
//! signed by its own device with an `R` that is not [r]B.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use kith_core::{DeviceId, SignedChange};
use sha2::{Digest, Sha512};

use crate::{Base, DEVICE_SECRET};

/// A point of order 8, canonically encoded.
pub const ORDER_8: &str = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a";

#[derive(Debug, serde::Serialize)]
pub struct Signatures {
    /// `R` = [r]B + T, T of order 8, `S` = r + k·a: only a cofactored
    /// equation accepts it, and §2.1 does.
    mixed_order_r: Edge,
    /// `R` = T of order 8, `S` = k·a: the cofactored equation holds, and
    /// rule 4 refuses it.
    small_order_r: Edge,
}

#[derive(Debug, serde::Serialize)]
struct Edge {
    /// The nonce r, little-endian (0 where `R` has no [r]B part).
    r: String,
    signed_change: String,
    verdict: String,
}

/// The device's secret scalar a (RFC 8032 §5.1.5).
fn secret_scalar() -> Scalar {
    let h = Sha512::digest(DEVICE_SECRET);
    let mut a: [u8; 32] = h[..32].try_into().expect("32 of 64 bytes");
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

fn hash_scalar(parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// Signs the first post with `R` = [r]B + `torsion`.
fn edge(base: &Base, r: Scalar, torsion: EdwardsPoint) -> Result<Edge, Box<dyn std::error::Error>> {
    let header = kith_core::chunk::parse_header(&base.post.change)?;
    let msg = SignedChange::signed_bytes(&base.doc_id, &header.hash);
    let device: DeviceId = base.device.id();
    let big_r = (r * ED25519_BASEPOINT_POINT + torsion)
        .compress()
        .to_bytes();
    let k = hash_scalar(&[&big_r, &device.0, &msg]);
    let s = r + k * secret_scalar();
    let mut signed = base.post.clone();
    signed.signature[..32].copy_from_slice(&big_r);
    signed.signature[32..].copy_from_slice(&s.to_bytes());
    let certs = std::slice::from_ref(&base.cert);
    let verdict = match signed
        .clone()
        .verify(&|d: &DeviceId| certs.iter().find(|c| c.device == *d).map(|c| c.identity))
    {
        Ok(_) => "accepted".into(),
        Err(e) => format!("{e:?}"),
    };
    Ok(Edge {
        r: hex::encode(r.to_bytes()),
        signed_change: hex::encode(signed.encode()),
        verdict,
    })
}

pub fn vectors(base: &Base) -> Result<Signatures, Box<dyn std::error::Error>> {
    let t = CompressedEdwardsY(hex::decode(ORDER_8)?.as_slice().try_into()?)
        .decompress()
        .ok_or("the order-8 encoding decodes")?;
    let r = hash_scalar(&[b"kith test vector nonce"]);
    Ok(Signatures {
        mixed_order_r: edge(base, r, t)?,
        small_order_r: edge(base, Scalar::ZERO, t)?,
    })
}
