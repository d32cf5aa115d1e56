//! A device certificate, decoded and verified.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kith_core::DeviceCert::decode(data);
});
