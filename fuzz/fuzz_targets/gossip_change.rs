//! A gossiped change envelope, as a node reads one off a topic: the
//! envelope's limits and fields, then the certificate's signatures.
#![no_main]

use kith_core::gossip::GossipChange;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = GossipChange::decode(data) {
        let _ = envelope.certificate.verify();
        assert_eq!(envelope.certificate.device, envelope.change.device);
    }
});
