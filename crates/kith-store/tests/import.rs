//! `Store::import` of archives that are not what they claim: nothing of a
//! refused archive is stored.

mod support;

use kith_core::DeviceCert;
use kith_core::archive::Archive;
use kith_store::ImportError;
use support::{Author, snapshot, store};

/// mallory's archive certifies alice's laptop for alice and for mallory
/// (the laptop's key, once stolen, counter-signs anything).
#[test]
fn an_archive_certifying_one_device_for_two_identities_is_refused_whole() {
    let (_d, mut bob) = store();
    let mut alice = Author::new(1);
    let mallory = Author::new(66);
    let stolen = DeviceCert::issue(&mallory.identity, &alice.device, 2);
    let before = snapshot(&bob);
    for certificates in [
        vec![alice.cert.clone(), stolen.clone()],
        vec![stolen.clone(), alice.cert.clone()],
    ] {
        let archive = Archive {
            certificates,
            changes: vec![alice.post("p1", "whose post is this?")],
        };
        let refused = bob.import(archive);
        assert!(
            matches!(&refused, Err(ImportError::CertificateConflict { device }) if *device == alice.device.id().to_string()),
            "{refused:?}"
        );
        assert_eq!(
            snapshot(&bob),
            before,
            "nothing of a refused archive is stored"
        );
    }
}
