//! Printable identifiers: identities, devices and posts.
//!
//! Identities and devices are ed25519 public keys. They print as `did:key`
//! strings (multicodec `ed25519-pub`, base58btc), a standard, self-describing
//! encoding that other tools can read. Post ids are 16-byte hashes printed as
//! lowercase base32.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Multicodec prefix of an ed25519 public key (`0xed` as a varint).
const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];
const DID_KEY_PREFIX: &str = "did:key:z";

/// Why a printed id could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseIdError {
    #[error("`{0}` is not a kith id: expected `did:key:z6Mk…`")]
    NotDidKey(String),
    #[error("`{0}` is not valid base58")]
    Base58(String),
    #[error("`{0}` is not an ed25519 did:key")]
    WrongKeyType(String),
    #[error("`{0}` is not a valid ed25519 public key")]
    InvalidKey(String),
    #[error("`{0}` is not a post id: expected 26 base32 characters")]
    NotPostId(String),
    #[error("`{0}` is not a group id: expected 52 base32 characters")]
    NotGroupId(String),
}

fn parse_did_key(s: &str) -> Result<[u8; 32], ParseIdError> {
    let body = s
        .trim()
        .strip_prefix(DID_KEY_PREFIX)
        .ok_or_else(|| ParseIdError::NotDidKey(s.to_owned()))?;
    let bytes = bs58::decode(body)
        .into_vec()
        .map_err(|_| ParseIdError::Base58(s.to_owned()))?;
    if bytes.len() != 34 || bytes[..2] != ED25519_MULTICODEC {
        return Err(ParseIdError::WrongKeyType(s.to_owned()));
    }
    let key: [u8; 32] = bytes[2..].try_into().expect("length checked above");
    // Reject points that do not decompress: such an id can never sign.
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|_| ParseIdError::InvalidKey(s.to_owned()))?;
    Ok(key)
}

fn fmt_did_key(key: &[u8; 32], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut buf = Vec::with_capacity(34);
    buf.extend_from_slice(&ED25519_MULTICODEC);
    buf.extend_from_slice(key);
    write!(f, "{DID_KEY_PREFIX}{}", bs58::encode(buf).into_string())
}

macro_rules! key_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw public key bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Reads a key id from exactly 32 bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                bytes.try_into().ok().map(Self)
            }

            /// The ed25519 verifying key this id names.
            pub fn verifying_key(&self) -> Result<ed25519_dalek::VerifyingKey, ParseIdError> {
                ed25519_dalek::VerifyingKey::from_bytes(&self.0)
                    .map_err(|_| ParseIdError::InvalidKey(self.to_string()))
            }

            /// A short form for logs and tables: the last 8 characters.
            pub fn short(&self) -> String {
                let s = self.to_string();
                s[s.len() - 8..].to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_did_key(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_did_key(s).map(Self)
            }
        }
    };
}

key_id!(
    /// A person: the public half of an identity key.
    IdentityId
);
key_id!(
    /// One device of a person: the public half of a device key, also its libp2p key.
    DeviceId
);

/// A post, unique across the network: a hash of its feed document (which
/// names the author) and its key there, so nobody can mint a post id that
/// names someone else's post.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PostId(pub [u8; 16]);

const BASE32: data_encoding::Encoding = data_encoding::BASE32_NOPAD;

impl PostId {
    /// Derives the id of the post stored under `key` in the feed document
    /// `doc`. The whole document id is hashed, so two shards of one feed can
    /// never hold posts with the same id.
    pub fn derive(doc: &crate::DocId, key: &str) -> PostId {
        let mut h = Sha256::new();
        h.update(b"kith/post/v1");
        h.update(doc.to_bytes());
        h.update(key.as_bytes());
        let digest = h.finalize();
        PostId(digest[..16].try_into().expect("sha256 is 32 bytes"))
    }

    /// Reads a post id from exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Display for PostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE32.encode(&self.0).to_ascii_lowercase())
    }
}

impl fmt::Debug for PostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostId({self})")
    }
}

impl FromStr for PostId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.len() != 26 {
            return Err(ParseIdError::NotPostId(s.to_owned()));
        }
        let bytes = BASE32
            .decode(t.to_ascii_uppercase().as_bytes())
            .map_err(|_| ParseIdError::NotPostId(s.to_owned()))?;
        PostId::from_slice(&bytes).ok_or_else(|| ParseIdError::NotPostId(s.to_owned()))
    }
}

macro_rules! serde_as_string {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_as_string!(IdentityId, DeviceId, PostId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_ids_round_trip_as_did_key() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let id = IdentityId(key.to_bytes());
        let s = id.to_string();
        assert!(s.starts_with("did:key:z6Mk"), "{s}");
        assert_eq!(s.parse::<IdentityId>().unwrap(), id);
    }

    #[test]
    fn malformed_ids_say_what_is_wrong() {
        assert!(matches!(
            "bob".parse::<IdentityId>(),
            Err(ParseIdError::NotDidKey(_))
        ));
        assert!(matches!(
            "did:key:z0OIl".parse::<IdentityId>(),
            Err(ParseIdError::Base58(_))
        ));
        // A valid did:key of another key type (secp256k1, multicodec 0xe7).
        assert!(matches!(
            "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme".parse::<IdentityId>(),
            Err(ParseIdError::WrongKeyType(_))
        ));
    }

    #[test]
    fn post_ids_round_trip_and_reject_garbage() {
        let doc = crate::DocId::feed(IdentityId([9; 32]), crate::SpaceId::PUBLIC, 0);
        let id = PostId::derive(&doc, "abc");
        let s = id.to_string();
        assert_eq!(s.len(), 26);
        assert_eq!(s.parse::<PostId>().unwrap(), id);
        assert!("not-a-post".parse::<PostId>().is_err());
        assert!("0000000000000000000000000!".parse::<PostId>().is_err());
    }
}
