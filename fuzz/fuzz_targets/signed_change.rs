//! A signed change as it arrives from a peer or a file: decoded, then put
//! through the one verification path (size limits, header, signature) with
//! a certificate lookup that knows every device.
#![no_main]

use kith_core::{IdentityId, SignedChange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(change) = SignedChange::decode(data) {
        let _ = change.verify(&|_: &kith_core::DeviceId| Some(IdentityId([7; 32])));
    }
});
