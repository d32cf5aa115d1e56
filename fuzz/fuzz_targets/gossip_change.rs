//! A gossiped change envelope, as a node reads one off a topic: the
//! envelope, its certificate and its signed change.
#![no_main]

use kith_core::{DeviceCert, SignedChange, proto};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = proto::GossipChange::decode(data) else {
        return;
    };
    if let Some(cert) = &envelope.certificate {
        let _ = DeviceCert::from_proto(cert);
    }
    if let Some(change) = envelope.change {
        let _ = SignedChange::from_proto(change);
    }
});
