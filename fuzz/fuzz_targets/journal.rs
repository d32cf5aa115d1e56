//! The journal of local changes as a damaged disk may leave it: every
//! record that checks out is read, whatever surrounds it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (changes, skipped) = kith_store::fuzzing::scan_journal(data);
    // What is read and what is skipped never overlap nor exceed the input.
    assert!(skipped <= data.len());
    assert!(changes <= data.len() / 9);
});
