//! Device keys, decompressed once and kept.
//!
//! Checking a change's signature needs its device key as a curve point: a
//! square root in the field and a small-order check, about a sixth of the
//! whole check. A node hears most changes from a few devices, one at a time
//! as they are gossiped, so it keeps the points it has made instead of
//! making them again for every change.

use std::collections::HashMap;

use crate::DeviceId;
use crate::signature::{KeyError, PublicKey};
use crate::signed::VerifyError;

/// Keys kept; past this the memory starts afresh (a node talks with far
/// fewer devices, and an attacker cycling through keys gains nothing).
pub const DEVICE_KEYS_KEPT: usize = 1024;

/// The device keys seen so far that are valid signing keys.
#[derive(Default)]
pub struct DeviceKeys {
    keys: HashMap<DeviceId, PublicKey>,
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("kept", &self.keys.len())
            .finish()
    }
}

impl DeviceKeys {
    /// The key of `device`, or why it cannot sign. Only valid keys are
    /// kept: an invalid one is refused again each time, at the same cost.
    pub fn get(&mut self, device: &DeviceId) -> Result<PublicKey, VerifyError> {
        if let Some(key) = self.keys.get(device) {
            return Ok(*key);
        }
        let key = device_key(device)?;
        if self.keys.len() >= DEVICE_KEYS_KEPT {
            self.keys.clear();
        }
        self.keys.insert(*device, key);
        Ok(key)
    }

    /// How many keys are kept.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The device key as a point, checked for small order.
pub(crate) fn device_key(device: &DeviceId) -> Result<PublicKey, VerifyError> {
    PublicKey::from_bytes(&device.0).map_err(|e| match e {
        KeyError::SmallOrder => VerifyError::WeakDeviceKey,
        _ => VerifyError::InvalidDeviceKey,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceKey;

    #[test]
    fn a_valid_key_is_kept_and_an_invalid_one_is_refused_every_time() {
        let mut keys = DeviceKeys::default();
        let device = DeviceKey::generate().expect("randomness").id();
        let first = keys.get(&device).expect("a generated key is valid");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.get(&device), Ok(first));
        assert_eq!(keys.len(), 1);
        // The identity point has small order: never a signing key.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        for _ in 0..2 {
            assert_eq!(keys.get(&DeviceId(weak)), Err(VerifyError::WeakDeviceKey));
        }
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn the_memory_is_bounded() {
        let mut keys = DeviceKeys::default();
        for _ in 0..DEVICE_KEYS_KEPT + 10 {
            let device = DeviceKey::generate().expect("randomness").id();
            keys.get(&device).expect("valid");
            assert!(keys.len() <= DEVICE_KEYS_KEPT);
        }
    }
}
