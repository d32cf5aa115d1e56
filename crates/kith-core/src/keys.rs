//! Secret keys: the identity key (a person) and the device key (one node).
//!
//! They are distinct types so that nothing can confuse one for the other:
//! today a person has one device, but linking a second laptop must remain an
//! addition, never a redesign (DESIGN.md decision 2).

use ed25519_dalek::{Signer, SigningKey};

use crate::{DeviceId, IdentityId};

/// The operating system's random generator failed; nothing was created.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

/// Fills `buf` from the operating system's cryptographic random generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident, $public:ident) => {
        $(#[$doc])*
        pub struct $name(SigningKey);

        impl $name {
            /// A fresh random key.
            pub fn generate() -> Result<Self, RandomError> {
                Ok(Self(SigningKey::from_bytes(&random_bytes::<32>()?)))
            }

            /// The key whose secret half is `secret` (as stored in the home directory).
            pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
                Self(SigningKey::from_bytes(secret))
            }

            /// The 32 secret bytes, for writing to a 0600 file and nowhere else.
            pub fn secret_bytes(&self) -> [u8; 32] {
                self.0.to_bytes()
            }

            /// The public id of this key.
            pub fn id(&self) -> $public {
                $public(self.0.verifying_key().to_bytes())
            }

            /// Signs `message`, which must already be domain-separated.
            pub fn sign(&self, message: &[u8]) -> [u8; 64] {
                self.0.sign(message).to_bytes()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.id())
            }
        }
    };
}

secret_key!(
    /// The key that *is* a person. It signs device certificates and nothing else.
    IdentityKey,
    IdentityId
);
secret_key!(
    /// One device's key: signs every change the device makes; also its libp2p key.
    DeviceKey,
    DeviceId
);

impl DeviceKey {
    /// This key's secret in X25519 form (the scalar bytes of its ed25519
    /// expansion, as libsodium's `crypto_sign_ed25519_sk_to_curve25519`
    /// derives them), to open what was sealed to the device.
    pub fn x25519_secret_bytes(&self) -> [u8; 32] {
        self.0.to_scalar_bytes()
    }
}
