//! The one signature rule (proto/README.md §2.1), for single signatures and
//! for batches.
//!
//! Nodes must never disagree on whether a signature is valid, so one
//! written rule decides, and a batch accepts exactly what the single check
//! accepts. The rule is the cofactored Ed25519 equation of ZIP-215 (checked
//! by `ed25519-zebra`, whose batch multiplies by the cofactor too), made
//! stricter by two cheap checks on `R`: a canonical encoding, and not of
//! small order. Keys must not be of small order either ([`PublicKey`]).
//!
//! Batching is what makes catching up fast: checking 1,024 signatures of
//! one device together costs a fraction of checking each alone. A batch
//! that fails is checked again one signature at a time, so one forgery
//! never refuses its honest neighbours; it costs its sender a few times
//! the work, and a peer that sends forgeries is disconnected.

use ed25519_zebra::batch;
use ed25519_zebra::{Signature, VerificationKey, VerificationKeyBytes};

/// Why a public key can never sign (rules 2 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("not the encoding of a curve point")]
    NotAPoint,
    #[error("a point of small order")]
    SmallOrder,
}

/// A public key that may sign: it decodes and is not of small order. Made
/// once per key and kept ([`crate::DeviceKeys`]): decoding costs a square
/// root in the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerificationKey,
}

impl PublicKey {
    /// Checks rules 2 and 3 of §2.1. The bytes are kept as received: a
    /// non-canonical encoding of a point is a key of its own. The point is
    /// decoded once, by the equation's library; small order is decided on
    /// the bytes, which name a small-order point in 14 ways only.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        if SMALL_ORDER.contains(bytes) {
            return Err(KeyError::SmallOrder);
        }
        let key = VerificationKey::try_from(*bytes).map_err(|_| KeyError::NotAPoint)?;
        Ok(PublicKey { key })
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.into()
    }

    /// Whether `signature` over `msg` is valid by §2.1.
    pub fn verify(&self, msg: &[u8], signature: &[u8; 64]) -> bool {
        r_is_acceptable(signature)
            && self
                .key
                .verify(&Signature::from_bytes(signature), msg)
                .is_ok()
    }
}

/// Whether `signature` is valid for the key `key` (given as bytes) over
/// `msg`, by §2.1. For keys seen once: certificates, join proofs.
pub fn verify(key: &[u8; 32], msg: &[u8], signature: &[u8; 64]) -> bool {
    PublicKey::from_bytes(key).is_ok_and(|k| k.verify(msg, signature))
}

/// Rule 4's conditions on `R` that the equation does not check: its
/// encoding is canonical (y < p) and names no point of small order. Both
/// are decided on the bytes alone; whether `R` decodes at all is left to
/// the equation, which refuses what does not.
fn r_is_acceptable(signature: &[u8; 64]) -> bool {
    let r: &[u8; 32] = signature[..32].try_into().expect("32 of 64 bytes");
    y_is_canonical(r) && !SMALL_ORDER.contains(r)
}

/// Whether the low 255 bits, as a little-endian integer, are below
/// p = 2^255 − 19.
fn y_is_canonical(encoding: &[u8; 32]) -> bool {
    let top = encoding[31] & 0x7f;
    !(top == 0x7f && encoding[1..31].iter().all(|&b| b == 0xff) && encoding[0] >= 0xed)
}

/// Every encoding that decodes (rule 2) to one of the eight points of
/// small order. The first ten have y < p: each point's canonical encoding,
/// and for the two with x = 0 also the one with the sign bit set. The last
/// four have y ≥ p: y = p and y = p + 1 (the points with y = 0 and y = 1),
/// with either sign bit. (`small_order_encodings_are_exactly_these`
/// derives this list from the curve.)
const SMALL_ORDER: [[u8; 32]; 14] = {
    const fn enc(low: [u8; 8], mid: u8, top: u8) -> [u8; 32] {
        let mut e = [mid; 32];
        let mut i = 0;
        while i < 8 {
            e[i] = low[i];
            i += 1;
        }
        e[31] = top;
        e
    }
    const fn hex(s: &[u8; 64]) -> [u8; 32] {
        const fn nib(c: u8) -> u8 {
            match c {
                b'0'..=b'9' => c - b'0',
                _ => c - b'a' + 10,
            }
        }
        let mut out = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            out[i] = nib(s[2 * i]) << 4 | nib(s[2 * i + 1]);
            i += 1;
        }
        out
    }
    [
        // y = 1: the neutral element, and with the sign bit set.
        enc([1, 0, 0, 0, 0, 0, 0, 0], 0, 0x00),
        enc([1, 0, 0, 0, 0, 0, 0, 0], 0, 0x80),
        // y = p − 1: order 2, and with the sign bit set.
        enc([0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0xff, 0x7f),
        enc([0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0xff, 0xff),
        // y = 0: the two points of order 4.
        enc([0; 8], 0, 0x00),
        enc([0; 8], 0, 0x80),
        // The four points of order 8.
        hex(b"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
        hex(b"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
        hex(b"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
        hex(b"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
        // y = p and y = p + 1, not canonical.
        enc([0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0xff, 0x7f),
        enc([0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0xff, 0xff),
        enc([0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0xff, 0x7f),
        enc([0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0xff, 0xff),
    ]
};

/// Signatures checked together. Push them, then [`Batch::verify`] says of
/// each whether it is valid, exactly as [`PublicKey::verify`] would.
#[derive(Default)]
pub struct Batch {
    /// `None` for a signature refused before the equation (rule 4).
    items: Vec<Option<Pending>>,
}

/// A signature waiting for the equation, with its key as already decoded:
/// checked alone (a batch of one, or to find the forgery in a failed
/// batch), it costs no second decoding of the key.
struct Pending {
    key: VerificationKey,
    signature: Signature,
    msg: Vec<u8>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("signatures", &self.items.len())
            .finish()
    }
}

impl Batch {
    pub fn with_capacity(n: usize) -> Batch {
        Batch {
            items: Vec::with_capacity(n),
        }
    }

    /// Adds a signature to check; its result is at this position.
    pub fn push(&mut self, key: &PublicKey, msg: &[u8], signature: &[u8; 64]) {
        let item = r_is_acceptable(signature).then(|| Pending {
            key: key.key,
            signature: Signature::from_bytes(signature),
            msg: msg.to_vec(),
        });
        self.items.push(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether each signature is valid, in the order pushed.
    pub fn verify(self) -> Vec<bool> {
        let queued = self.items.iter().flatten().count();
        if queued > 1
            && let Some(rng) = batch_rng()
        {
            let mut verifier = batch::Verifier::new();
            for p in self.items.iter().flatten() {
                verifier.queue((
                    VerificationKeyBytes::from(p.key),
                    p.signature,
                    p.msg.as_slice(),
                ));
            }
            if verifier.verify(rng).is_ok() {
                return self.items.iter().map(Option::is_some).collect();
            }
        }
        // One at a time: a batch of one, a failed batch (to find which), or
        // no randomness for the multipliers.
        self.items
            .into_iter()
            .map(|p| p.is_some_and(|p| p.key.verify(&p.signature, &p.msg).is_ok()))
            .collect()
    }
}

/// The random multipliers of a batch must be unpredictable to whoever made
/// its signatures, or a forger could choose signatures whose errors cancel.
fn batch_rng() -> Option<chacha20::ChaCha20Rng> {
    use chacha20::rand_core::SeedableRng;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).ok()?;
    Some(chacha20::ChaCha20Rng::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::IsIdentity;
    use sha2::{Digest, Sha512};

    /// The eight points of small order, derived from the curve: the
    /// neutral element's multiples by a point of order 8 found by
    /// clearing the prime-order part of a decoded point.
    fn torsion() -> Vec<EdwardsPoint> {
        // ℓ·P is in the torsion subgroup; search until it has order 8.
        let l = Scalar::ZERO - Scalar::ONE; // ℓ − 1
        for y in 2u8.. {
            let mut enc = [0u8; 32];
            enc[0] = y;
            let Some(p) = CompressedEdwardsY(enc).decompress() else {
                continue;
            };
            let t = l * p + p; // ℓ·P
            if !(Scalar::from(4u8) * t).is_identity() {
                return (0..8u64).map(|i| Scalar::from(i) * t).collect();
            }
        }
        unreachable!("a point of order 8 exists")
    }

    #[test]
    fn small_order_encodings_are_exactly_these() {
        // A point's encodings: y or y + p (when below 2^255) in the low 255
        // bits, either sign bit. Keep those that decode to the point.
        let mut derived: Vec<[u8; 32]> = Vec::new();
        for t in torsion() {
            let canonical = t.compress().to_bytes();
            let mut ys = vec![canonical];
            let mut y = canonical;
            y[31] &= 0x7f;
            // y + p < 2^255 only for y < 19: then y + p = y + 2^255 − 19.
            if y[1..].iter().all(|&b| b == 0) && y[0] < 19 {
                let mut plus_p = [0xff; 32];
                plus_p[0] = 0xed + y[0];
                plus_p[31] = 0x7f;
                ys.push(plus_p);
            }
            for e in ys {
                for sign in [0, 0x80] {
                    let mut candidate = e;
                    candidate[31] = (candidate[31] & 0x7f) | sign;
                    if CompressedEdwardsY(candidate).decompress() == Some(t) {
                        derived.push(candidate);
                    }
                }
            }
        }
        derived.sort();
        derived.dedup();
        let mut listed = SMALL_ORDER.to_vec();
        listed.sort();
        assert_eq!(derived, listed);
        // R's check leans on this: the first ten are canonical, the rest not.
        for e in &SMALL_ORDER[..10] {
            assert!(y_is_canonical(e));
        }
        for e in &SMALL_ORDER[10..] {
            assert!(!y_is_canonical(e));
        }
    }

    #[test]
    fn y_at_or_above_p_is_not_canonical() {
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!y_is_canonical(&p));
        p[31] = 0xff; // the sign bit is not part of y
        assert!(!y_is_canonical(&p));
        p[0] = 0xec; // p − 1
        assert!(y_is_canonical(&p));
        p[0] = 0xff; // p + 18, the largest y
        assert!(!y_is_canonical(&p));
    }

    fn hash_scalar(parts: &[&[u8]]) -> Scalar {
        let mut h = Sha512::new();
        for p in parts {
            h.update(p);
        }
        Scalar::from_bytes_mod_order_wide(&h.finalize().into())
    }

    fn secret(seed: u8) -> (Scalar, [u8; 32], [u8; 32]) {
        let h = Sha512::digest([seed; 32]);
        let mut a = [0u8; 32];
        a.copy_from_slice(&h[..32]);
        a[0] &= 248;
        a[31] &= 127;
        a[31] |= 64;
        let a = Scalar::from_bytes_mod_order(a);
        let public = (a * ED25519_BASEPOINT_POINT).compress().to_bytes();
        let mut prefix = [0u8; 32];
        prefix.copy_from_slice(&h[32..]);
        (a, public, prefix)
    }

    /// Signs with `R` = [r]B + `torsion`, so that only a cofactored
    /// equation accepts.
    fn sign_with_r(seed: u8, msg: &[u8], torsion: EdwardsPoint, r: u64) -> ([u8; 32], [u8; 64]) {
        let (a, public, _) = secret(seed);
        let r = Scalar::from(r);
        let big_r = (r * ED25519_BASEPOINT_POINT + torsion)
            .compress()
            .to_bytes();
        let k = hash_scalar(&[&big_r, &public, msg]);
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&big_r);
        sig[32..].copy_from_slice(&s.to_bytes());
        (public, sig)
    }

    #[test]
    fn single_and_batch_agree_on_edge_cases() {
        let t = torsion();
        let order8 = t[1];
        let msg = b"kith";
        let (key, honest) = sign_with_r(1, msg, EdwardsPoint::default(), 12345);
        let (_, mixed) = sign_with_r(1, msg, order8, 999);
        let mut forged = honest;
        forged[40] ^= 1;
        // R of small order, S = k·a: the cofactored equation holds.
        let (a, _, _) = secret(1);
        let r_small = order8.compress().to_bytes();
        let k = hash_scalar(&[&r_small, &key, msg]);
        let mut small_r = [0u8; 64];
        small_r[..32].copy_from_slice(&r_small);
        small_r[32..].copy_from_slice(&(k * a).to_bytes());
        assert!(
            VerificationKey::try_from(key)
                .unwrap()
                .verify(&Signature::from_bytes(&small_r), msg)
                .is_ok(),
            "ZIP-215 alone accepts a small-order R"
        );
        let cases = [
            (honest, true),
            (mixed, true),
            (forged, false),
            (small_r, false),
        ];
        let pk = PublicKey::from_bytes(&key).unwrap();
        for (sig, valid) in cases {
            assert_eq!(pk.verify(msg, &sig), valid);
        }
        // Every order and mixture within batches, with honest company.
        for trial in 0..8 {
            let mut batch = Batch::default();
            let mut expected = Vec::new();
            for (i, (sig, valid)) in cases.iter().cycle().skip(trial).take(9).enumerate() {
                if i % 2 == 0 {
                    batch.push(&pk, msg, &honest);
                    expected.push(true);
                }
                batch.push(&pk, msg, sig);
                expected.push(*valid);
            }
            assert_eq!(batch.verify(), expected);
        }
    }

    #[test]
    fn keys_of_small_order_or_off_the_curve_are_refused() {
        for e in SMALL_ORDER {
            assert_eq!(PublicKey::from_bytes(&e), Err(KeyError::SmallOrder));
        }
        let off = (2u8..)
            .map(|y| {
                let mut e = [0u8; 32];
                e[0] = y;
                e
            })
            .find(|e| CompressedEdwardsY(*e).decompress().is_none())
            .expect("some y has no x on the curve");
        assert_eq!(PublicKey::from_bytes(&off), Err(KeyError::NotAPoint));
    }
}
