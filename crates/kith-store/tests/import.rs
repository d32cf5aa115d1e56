//! `Store::import` of archives that are not what they claim: nothing of a
//! refused archive is stored.

mod support;

use kith_core::archive::Archive;
use kith_core::schema::labels;
use kith_core::{DeviceCert, DocId, DocKind};
use kith_store::ImportError;
use support::{Author, snapshot, store};

/// alice's full backup: her post, and her label on bob (her private document).
fn alices_backup(alice: &mut Author, bob: &Author) -> Archive {
    let post = alice.post("p1", "hello");
    let label = alice.change(DocId::private(alice.id()), |d| {
        labels::add(d, &bob.id(), "friend").unwrap()
    });
    Archive {
        certificates: vec![alice.cert.clone()],
        changes: vec![post, label],
    }
}

/// alice's backup -- file --> bob's store, and --> her own new device.
#[test]
fn another_identitys_private_documents_are_skipped_and_counted() {
    let mut alice = Author::new(1);
    let bob = Author::new(2);
    let backup = alices_backup(&mut alice, &bob);

    let (_d, mut bobs_store) = store();
    let report = bobs_store.import(backup.clone(), bob.id()).unwrap();
    assert_eq!(
        (report.ingested.applied, report.skipped_private),
        (1, 1),
        "{report:?}"
    );
    let held = bobs_store.export().unwrap();
    assert!(
        held.changes.iter().all(|c| c.doc.kind != DocKind::Private),
        "bob's store holds none of alice's private document"
    );
    assert_eq!(bobs_store.counts().unwrap().documents, 1, "only her feed");

    let (_d, mut alices_tablet) = store();
    let report = alices_tablet.import(backup, alice.id()).unwrap();
    assert_eq!(
        (report.ingested.applied, report.skipped_private),
        (2, 0),
        "her own private document comes along: {report:?}"
    );
}

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
        let refused = bob.import(archive, alice.id());
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
