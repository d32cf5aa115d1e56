//! An archive file (`kith import`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kith_core::archive::Archive::decode(data);
});
