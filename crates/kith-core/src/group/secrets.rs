//! A group's secrets: the epoch keys that encrypt its gossip, how they are
//! handed to members' devices, and the topics derived from them
//! (proto/README.md, "Groups", "Group gossip").
//!
//! An epoch key is 32 random bytes. Whoever starts an epoch (the creator,
//! then an admin at each removal) seals the key to every device of every
//! member with a libsodium sealed box (`crypto_box_seal`: X25519,
//! XSalsa20-Poly1305), using the device's ed25519 key in its X25519 form, and
//! records the seals in the control document; a member who admits someone
//! seals the key it holds to the joiner's device. Nobody else can open a
//! seal, so a removed member never learns the keys of later epochs.
//!
//! Gossip of a group travels on a topic named after a hash of the epoch key,
//! so the topic is as unguessable as the key, and each message is encrypted
//! with XChaCha20-Poly1305 under that key, with a random nonce and the group
//! id as associated data.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::keys::{RandomError, random_bytes};
use crate::{DeviceId, DeviceKey, SpaceId, proto};

/// Bytes of the id by which a message names the key it was encrypted with.
pub const KEY_ID_LEN: usize = 8;
/// Largest plaintext one group gossip message may carry.
pub const MAX_GOSSIP_PLAINTEXT: usize = 1 << 20;

/// One epoch's key.
#[derive(Clone, PartialEq, Eq)]
pub struct EpochKey([u8; 32]);

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EpochKey({:02x?})", self.id())
    }
}

/// Why a group gossip message could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("not a group gossip message")]
    Garbage,
    #[error("encrypted with a key this device does not hold")]
    UnknownKey,
    #[error("does not decrypt under the key it names: forged or damaged")]
    Forged,
}

fn x25519_public(device: &DeviceId) -> Option<crypto_box::PublicKey> {
    let key = device.verifying_key().ok()?;
    Some(crypto_box::PublicKey::from(key.to_montgomery().to_bytes()))
}

impl EpochKey {
    pub fn generate() -> Result<EpochKey, RandomError> {
        Ok(EpochKey(random_bytes::<32>()?))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> EpochKey {
        EpochKey(bytes)
    }

    /// The id messages name this key by.
    pub fn id(&self) -> [u8; KEY_ID_LEN] {
        let mut h = Sha256::new();
        h.update(b"kith/epoch-key-id/v1");
        h.update(self.0);
        h.finalize()[..KEY_ID_LEN]
            .try_into()
            .expect("a sha256 digest is 32 bytes")
    }

    /// The gossip topic of this key's epoch.
    pub fn topic(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"kith/group-topic/v1");
        h.update(self.0);
        let digest = h.finalize();
        let mut s = String::from("kith/group/");
        for b in &digest[..16] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Seals this key to `device`: only that device's secret opens it.
    /// `None` if the device id is not a usable key.
    pub fn seal_for(&self, device: &DeviceId) -> Option<Vec<u8>> {
        let public = x25519_public(device)?;
        public.seal(&mut crypto_box::aead::OsRng, &self.0).ok()
    }

    /// Opens a seal addressed to `device`.
    pub fn open(device: &DeviceKey, sealed: &[u8]) -> Option<EpochKey> {
        let secret = crypto_box::SecretKey::from(device.x25519_secret_bytes());
        let bytes = secret.unseal(sealed).ok()?;
        Some(EpochKey(bytes.try_into().ok()?))
    }

    /// Encrypts a gossip payload of `group` under this key.
    pub fn encrypt(&self, group: &SpaceId, plaintext: &[u8]) -> Result<Vec<u8>, RandomError> {
        let nonce = random_bytes::<24>()?;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &group.0,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message under the size limit");
        Ok(proto::GroupGossip {
            key_id: self.id().to_vec(),
            nonce: nonce.to_vec(),
            ciphertext,
        }
        .encode_to_vec())
    }
}

/// Opens a gossip message of `group` with whichever of the device's keys it
/// names (`key_of` looks a key up by id).
pub fn decrypt(
    group: &SpaceId,
    bytes: &[u8],
    key_of: impl Fn(&[u8; KEY_ID_LEN]) -> Option<EpochKey>,
) -> Result<Vec<u8>, OpenError> {
    let msg = proto::GroupGossip::decode(bytes).map_err(|_| OpenError::Garbage)?;
    let id: [u8; KEY_ID_LEN] = msg.key_id.try_into().map_err(|_| OpenError::Garbage)?;
    let nonce: [u8; 24] = msg.nonce.try_into().map_err(|_| OpenError::Garbage)?;
    if msg.ciphertext.len() > MAX_GOSSIP_PLAINTEXT + 16 {
        return Err(OpenError::Garbage);
    }
    let key = key_of(&id).ok_or(OpenError::UnknownKey)?;
    XChaCha20Poly1305::new((&key.0).into())
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &msg.ciphertext,
                aad: &group.0,
            },
        )
        .map_err(|_| OpenError::Forged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_addressed_device_opens_a_seal() {
        let key = EpochKey::generate().unwrap();
        let bob = DeviceKey::from_secret_bytes(&[2; 32]);
        let carol = DeviceKey::from_secret_bytes(&[3; 32]);
        let sealed = key.seal_for(&bob.id()).unwrap();
        assert_eq!(EpochKey::open(&bob, &sealed), Some(key.clone()));
        assert_eq!(EpochKey::open(&carol, &sealed), None);
        let mut damaged = sealed;
        damaged[40] ^= 1;
        assert_eq!(EpochKey::open(&bob, &damaged), None);
    }

    #[test]
    fn gossip_opens_only_with_its_key_and_group() {
        let group = SpaceId([5; 32]);
        let key = EpochKey::generate().unwrap();
        let other = EpochKey::generate().unwrap();
        let msg = key.encrypt(&group, b"a signed change").unwrap();
        let lookup = |id: &[u8; KEY_ID_LEN]| (*id == key.id()).then(|| key.clone());
        assert_eq!(
            decrypt(&group, &msg, lookup).unwrap(),
            b"a signed change".to_vec()
        );
        let only_other = |id: &[u8; KEY_ID_LEN]| (*id == other.id()).then(|| other.clone());
        assert_eq!(
            decrypt(&group, &msg, only_other),
            Err(OpenError::UnknownKey)
        );
        assert_eq!(
            decrypt(&SpaceId([6; 32]), &msg, lookup),
            Err(OpenError::Forged),
            "bound to its group"
        );
        assert_eq!(
            decrypt(&group, b"\xff\xff", lookup),
            Err(OpenError::Garbage)
        );
        assert_ne!(key.topic(), other.topic());
        assert!(key.topic().starts_with("kith/group/"));
    }
}
