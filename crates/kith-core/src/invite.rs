//! Invite keys: what a person hands to someone they invite into a group, as
//! one line of text or a QR code, and the proof the invited person gives back.
//!
//! A key holds the group's id, the invite's secret (an ed25519 seed whose
//! public half the group's control document records with the invite's expiry,
//! uses and role) and a few addresses of the inviter, so that the joiner can
//! reach a member without any discovery. It is versioned and checksummed, so
//! a mistyped or truncated key is told apart from a revoked one. Text form
//! (proto/README.md, "Invite keys"):
//!
//! ```text
//! kith-invite-<base32 of: version (1) || group (32) || secret (32)
//!                          || address count (1) || (length (1) || multiaddr bytes)*
//!                          || checksum (4)>
//! ```
//!
//! The checksum is the first four bytes of SHA-256 over `"kith/invite/v1"`
//! and everything before it. The joiner proves it holds the secret by signing
//! `"kith/invite-proof/v1" || group || invite public key || joiner identity`
//! with it: the proof names the identity it admits, so nobody can replay it
//! for another, and any member checks it offline.

use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::{IdentityId, SpaceId};

/// What every invite key starts with.
pub const INVITE_PREFIX: &str = "kith-invite-";
/// The layout version this code writes and reads.
pub const INVITE_VERSION: u8 = 1;
/// Longest text form: short enough to paste into a chat or scan as a QR
/// code, long enough for one relay circuit (about 90 bytes with its two
/// peer ids) beside a few direct addresses.
pub const MAX_INVITE_CHARS: usize = 400;
const CHECKSUM_DOMAIN: &[u8] = b"kith/invite/v1";
const PROOF_DOMAIN: &[u8] = b"kith/invite-proof/v1";
const BASE32: data_encoding::Encoding = data_encoding::BASE32_NOPAD;

/// A decoded invite key.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteKey {
    /// The group (its space).
    pub group: SpaceId,
    /// The invite's secret: an ed25519 seed.
    pub secret: [u8; 32],
    /// Where the inviter could be reached: binary multiaddrs.
    pub addresses: Vec<Vec<u8>>,
}

impl std::fmt::Debug for InviteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteKey")
            .field("group", &self.group)
            .field("secret", &"…")
            .field("addresses", &self.addresses.len())
            .finish()
    }
}

/// Why a string is not a usable invite key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteError {
    #[error("this is not a kith invite key (it should start with `{INVITE_PREFIX}`)")]
    NotAnInvite,
    #[error("the invite key has characters that cannot be in one: was it copied whole?")]
    Encoding,
    #[error("the invite key is damaged or mistyped (its checksum does not match)")]
    Checksum,
    #[error("the invite key is cut short")]
    Truncated,
    #[error("the invite key has {0} bytes too many at the end")]
    TrailingBytes(usize),
    #[error("the invite key is of version {0}, which this kith cannot read: update kith")]
    Version(u8),
}

impl InviteKey {
    /// The public half of the secret: what the control document records.
    pub fn public_key(&self) -> [u8; 32] {
        SigningKey::from_bytes(&self.secret)
            .verifying_key()
            .to_bytes()
    }

    /// The text form. Addresses are taken in order, each if it still fits
    /// within [`MAX_INVITE_CHARS`], so the caller puts first those that
    /// matter most (the ones that work from anywhere); one too long is
    /// left out and shorter ones after it may still fit (a joiner also
    /// finds members on the LAN and in the DHT, and any member can admit
    /// it).
    pub fn encode(&self) -> String {
        let mut kept: Vec<&[u8]> = Vec::new();
        for a in &self.addresses {
            if a.len() > usize::from(u8::MAX) || kept.len() == usize::from(u8::MAX) {
                continue;
            }
            kept.push(a);
            if self.encode_with(&kept).len() > MAX_INVITE_CHARS {
                kept.pop();
            }
        }
        self.encode_with(&kept)
    }

    fn encode_with(&self, addresses: &[&[u8]]) -> String {
        let mut payload = vec![INVITE_VERSION];
        payload.extend_from_slice(&self.group.0);
        payload.extend_from_slice(&self.secret);
        payload.push(addresses.len() as u8);
        for a in addresses {
            payload.push(a.len() as u8);
            payload.extend_from_slice(a);
        }
        let sum = checksum(&payload);
        payload.extend_from_slice(&sum);
        format!(
            "{INVITE_PREFIX}{}",
            BASE32.encode(&payload).to_ascii_lowercase()
        )
    }

    /// Reads the text form; surrounding whitespace and letter case are
    /// forgiven (keys get read out and retyped).
    pub fn decode(text: &str) -> Result<InviteKey, InviteError> {
        let text = text.trim();
        let body = text
            .get(..INVITE_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(INVITE_PREFIX))
            .map(|_| &text[INVITE_PREFIX.len()..])
            .ok_or(InviteError::NotAnInvite)?;
        let bytes = BASE32
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| InviteError::Encoding)?;
        // The version first: another version may checksum differently.
        match bytes.first() {
            None => return Err(InviteError::Truncated),
            Some(&INVITE_VERSION) => {}
            Some(&other) => return Err(InviteError::Version(other)),
        }
        let (payload, sum) = bytes
            .split_last_chunk::<4>()
            .ok_or(InviteError::Truncated)?;
        if checksum(payload) != *sum {
            return Err(InviteError::Checksum);
        }
        let mut r = payload;
        let mut take = |n: usize| -> Result<&[u8], InviteError> {
            if r.len() < n {
                return Err(InviteError::Truncated);
            }
            let (head, tail) = r.split_at(n);
            r = tail;
            Ok(head)
        };
        let version = take(1)?[0];
        if version != INVITE_VERSION {
            return Err(InviteError::Version(version));
        }
        let group = SpaceId(take(32)?.try_into().expect("took 32 bytes"));
        let secret: [u8; 32] = take(32)?.try_into().expect("took 32 bytes");
        let count = take(1)?[0];
        let mut addresses = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let len = take(1)?[0];
            addresses.push(take(usize::from(len))?.to_vec());
        }
        if !r.is_empty() {
            return Err(InviteError::TrailingBytes(r.len()));
        }
        Ok(InviteKey {
            group,
            secret,
            addresses,
        })
    }

    /// Proves, for `joiner`, that it holds this invite's secret.
    pub fn prove(&self, joiner: &IdentityId) -> [u8; 64] {
        let key = SigningKey::from_bytes(&self.secret);
        let msg = proof_message(&self.group, &self.public_key(), joiner);
        key.sign(&msg).to_bytes()
    }
}

/// Checks a join proof against an invite's public key, as recorded in the
/// group's control document: `joiner` holds the invite's secret, and the
/// proof was made for `joiner` and this group.
pub fn verify_proof(
    group: &SpaceId,
    invite_public: &[u8; 32],
    joiner: &IdentityId,
    proof: &[u8; 64],
) -> bool {
    let msg = proof_message(group, invite_public, joiner);
    crate::signature::verify(invite_public, &msg, proof)
}

fn proof_message(group: &SpaceId, invite_public: &[u8; 32], joiner: &IdentityId) -> Vec<u8> {
    let mut msg = Vec::with_capacity(PROOF_DOMAIN.len() + 96);
    msg.extend_from_slice(PROOF_DOMAIN);
    msg.extend_from_slice(&group.0);
    msg.extend_from_slice(invite_public);
    msg.extend_from_slice(&joiner.0);
    msg
}

fn checksum(payload: &[u8]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(CHECKSUM_DOMAIN)
        .chain_update(payload)
        .finalize();
    digest[..4].try_into().expect("4 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/ip4/192.168.1.20/tcp/4610` as multiaddr bytes.
    fn lan_address(last: u8) -> Vec<u8> {
        vec![4, 192, 168, 1, last, 6, 0x12, 0x02]
    }

    fn invite(addresses: usize) -> InviteKey {
        InviteKey {
            group: SpaceId([7; 32]),
            secret: [9; 32],
            addresses: (0..addresses as u8).map(lan_address).collect(),
        }
    }

    #[test]
    fn keys_round_trip_and_stay_short() {
        for n in [0, 1, 3] {
            let key = invite(n);
            let text = key.encode();
            assert!(text.starts_with(INVITE_PREFIX));
            assert!(text.len() <= MAX_INVITE_CHARS, "{} chars", text.len());
            assert_eq!(InviteKey::decode(&text), Ok(key.clone()));
            // Retyped in capitals, with stray whitespace.
            let retyped = format!("  {}\n", text.to_ascii_uppercase());
            assert_eq!(InviteKey::decode(&retyped), Ok(key));
        }
    }

    #[test]
    fn addresses_that_do_not_fit_are_left_out() {
        let key = invite(40);
        let text = key.encode();
        assert!(text.len() <= MAX_INVITE_CHARS);
        let back = InviteKey::decode(&text).unwrap();
        assert!(!back.addresses.is_empty() && back.addresses.len() < 40);
        assert_eq!(back.addresses[..], key.addresses[..back.addresses.len()]);
        assert_eq!((back.group, back.secret), (key.group, key.secret));
    }

    #[test]
    fn a_relay_circuit_fits_first_and_shorter_addresses_fill_the_rest() {
        // `/ip4/203.0.113.10/tcp/4001/p2p/<relay>/p2p-circuit/p2p/<inviter>`
        // is 92 bytes with ed25519 peer ids (38-byte identity multihashes).
        let peer = |b: u8| {
            [
                &[0xa5, 0x03, 0x26, 0x00, 0x24, 0x08, 0x01, 0x12, 0x20][..],
                &[b; 32],
            ]
            .concat()
        };
        let circuit = [
            &[4, 203, 0, 113, 10, 6, 0x0f, 0xa1][..],
            &peer(1),
            &[0xa2, 0x02],
            &peer(2),
        ]
        .concat();
        assert_eq!(circuit.len(), 92);
        let mut addresses = vec![circuit.clone(), circuit.clone()];
        addresses.extend((0..10).map(lan_address));
        let key = InviteKey {
            group: SpaceId([7; 32]),
            secret: [9; 32],
            addresses,
        };
        let back = InviteKey::decode(&key.encode()).unwrap();
        assert_eq!(back.addresses[0], circuit, "the first circuit fits");
        assert!(
            back.addresses[1..].iter().all(|a| a.len() == 8) && back.addresses.len() > 2,
            "the second circuit does not; LAN addresses after it do: {:?}",
            back.addresses.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn damaged_keys_say_what_is_wrong() {
        let text = invite(1).encode();
        assert_eq!(
            InviteKey::decode("kith-post-abc"),
            Err(InviteError::NotAnInvite)
        );
        assert_eq!(
            InviteKey::decode(&format!("{text}!")),
            Err(InviteError::Encoding)
        );
        // Every single-character change is caught.
        let body = INVITE_PREFIX.len();
        for i in body..text.len() {
            let mut chars: Vec<char> = text.chars().collect();
            chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
            let tampered: String = chars.into_iter().collect();
            assert!(
                InviteKey::decode(&tampered).is_err(),
                "change at {i} passed"
            );
        }
        let cut = &text[..text.len() - 10];
        assert!(matches!(
            InviteKey::decode(cut),
            Err(InviteError::Checksum | InviteError::Encoding)
        ));
        assert_eq!(
            InviteKey::decode(INVITE_PREFIX),
            Err(InviteError::Truncated)
        );
    }

    #[test]
    fn a_key_of_another_version_is_named_as_such() {
        // Whatever a later version's checksum is.
        let mut payload = vec![2u8];
        payload.extend_from_slice(&[0; 69]);
        let text = format!(
            "{INVITE_PREFIX}{}",
            BASE32.encode(&payload).to_ascii_lowercase()
        );
        assert_eq!(InviteKey::decode(&text), Err(InviteError::Version(2)));
    }

    #[test]
    fn a_proof_admits_only_the_identity_it_names() {
        let key = invite(1);
        let bob = IdentityId([2; 32]);
        let carol = IdentityId([3; 32]);
        let proof = key.prove(&bob);
        let public = key.public_key();
        assert!(verify_proof(&key.group, &public, &bob, &proof));
        assert!(
            !verify_proof(&key.group, &public, &carol, &proof),
            "replayed for carol"
        );
        assert!(
            !verify_proof(&SpaceId([8; 32]), &public, &bob, &proof),
            "another group"
        );
        let other = InviteKey {
            secret: [10; 32],
            ..key
        };
        assert!(
            !verify_proof(&other.group, &other.public_key(), &bob, &proof),
            "another invite"
        );
        let mut forged = proof;
        forged[0] ^= 1;
        assert!(!verify_proof(&key.group, &public, &bob, &forged));
    }

    /// Fixed inputs, fixed outputs: the text form and the proof bytes are
    /// part of the protocol, so any change to the alphabet, the layout, the
    /// checksum or the signed message shows here.
    #[test]
    fn vectors() {
        let key = InviteKey {
            group: SpaceId([0x11; 32]),
            secret: [0x22; 32],
            addresses: vec![lan_address(20)],
        };
        let text = key.encode();
        assert_eq!(text, VECTOR_TEXT);
        assert_eq!(InviteKey::decode(VECTOR_TEXT), Ok(key.clone()));
        let proof = key.prove(&IdentityId([0x33; 32]));
        assert_eq!(hex_of(&proof), VECTOR_PROOF);
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    const VECTOR_TEXT: &str = "kith-invite-aeirceirceirceirceirceirceirceirceirceirceirceirceircirceirceirceirceirceirceirceirceirceirceirceirceircaeeajqfiaekameqcsrm3dsi";
    const VECTOR_PROOF: &str = "e4c87637caeacab6ac665fd9af8925a6f1806994c4ed00b89c0c727b68171c247886f9531588a7f0d47d1574e72548e4cf53452eaf08a6a151d8f12589dfc50f";
}
