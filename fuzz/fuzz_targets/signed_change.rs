//! A signed change as it arrives from a peer or a file: decoded, then put
//! through the one verification path (size limits, header, signature) with
//! a certificate lookup that knows every device, and its bodies matched to
//! the operations that put their hashes, as a store does before keeping them.
#![no_main]

use kith_core::{IdentityId, SignedChange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(change) = SignedChange::decode(data) {
        // The signature never verifies on fuzzed bytes, so the bodies are
        // matched whatever the verdict, on any change automerge can read.
        if let Ok(parsed) = automerge::Change::from_bytes(change.change.clone()) {
            // `expand` contains automerge's panics on crafted operations
            // (see kith-core's tests/fuzz_finds.rs); libFuzzer's hook would
            // report one as a crash even though it is caught, so the hook
            // steps aside for that one call.
            let hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let expanded = kith_core::schema::expand(&parsed);
            std::panic::set_hook(hook);
            if let Some(expanded) = expanded {
                let _ = kith_core::schema::match_bodies(&expanded, &change.bodies);
            }
        }
        let _ = change.verify(&|_: &kith_core::DeviceId| Some(IdentityId([7; 32])));
    }
});
