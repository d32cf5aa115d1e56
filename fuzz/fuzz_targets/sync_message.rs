//! A `/kith/sync/1` request or response from a peer; the first byte picks
//! which.
#![no_main]

use kith_core::sync::{Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        let _ = Request::decode(bytes);
    } else {
        let _ = Response::decode(bytes);
    }
});
