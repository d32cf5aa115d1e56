//! kith-net: kith's libp2p layer. A device key is also the device's libp2p
//! identity, so the peer a node talks to is the device whose certificate and
//! signatures it checks.
//!
//! ```
//! let device = kith_core::DeviceKey::generate().unwrap();
//! let keypair = kith_net::keypair(&device);
//! assert_eq!(kith_net::peer_id(&device.id()), keypair.public().to_peer_id());
//! ```

use kith_core::{DeviceId, DeviceKey};
use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey, ed25519};

/// The libp2p keypair of a device.
pub fn keypair(device: &DeviceKey) -> Keypair {
    // `ed25519_from_bytes` zeroes the buffer it is given: hand it a copy.
    let mut secret = device.secret_bytes();
    Keypair::ed25519_from_bytes(&mut secret).expect("a 32-byte ed25519 secret is always valid")
}

/// The libp2p peer id of a device.
pub fn peer_id(device: &DeviceId) -> PeerId {
    let key = ed25519::PublicKey::try_from_bytes(device.as_bytes())
        .expect("device ids are valid ed25519 keys");
    PublicKey::from(key).to_peer_id()
}

/// The device behind a libp2p public key, if it is an ed25519 key.
pub fn device_of(key: &PublicKey) -> Option<DeviceId> {
    key.clone()
        .try_into_ed25519()
        .ok()
        .map(|k| DeviceId(k.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_key_is_its_libp2p_identity() {
        let device = DeviceKey::from_secret_bytes(&[9; 32]);
        let kp = keypair(&device);
        assert_eq!(peer_id(&device.id()), kp.public().to_peer_id());
        assert_eq!(device_of(&kp.public()), Some(device.id()));
        // The caller's key is untouched by libp2p zeroing its copy.
        assert_eq!(device.secret_bytes(), [9; 32]);
    }
}
