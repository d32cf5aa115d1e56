//! The envelope limit (proto/README.md §6.3, step 1 of §7) holds on every
//! path a change arrives by. mallory wraps one envelope just over
//! `MAX_SIGNED_CHANGE_BYTES` in an archive, a sync response and a gossip
//! message; each is refused with `EnvelopeTooLarge`, before any other check.

use kith_core::archive::{Archive, ArchiveError};
use kith_core::signed::{MAX_CHANGE_BYTES, MAX_SIGNED_CHANGE_BYTES};
use kith_core::sync::{ChangeBatch, DecodeError, Response};
use kith_core::{DeviceKey, DocId, IdentityKey, SignedChange, SpaceId, VerifyError, proto};
use prost::Message;

/// mallory's change of `change_bytes` bytes, in her public feed. Its other
/// fields are well-formed, so only a size check can refuse it.
fn mallory_change(change_bytes: usize) -> SignedChange {
    let mallory = IdentityKey::from_secret_bytes(&[66; 32]);
    let device = DeviceKey::from_secret_bytes(&[67; 32]);
    SignedChange {
        doc: DocId::feed(mallory.id(), SpaceId::PUBLIC, 0),
        change: vec![0; change_bytes],
        device: device.id(),
        signature: [0; 64],
        bodies: Vec::new(),
    }
}

/// Just over the envelope limit, yet small enough for one archive record.
fn oversized() -> SignedChange {
    let change = mallory_change(MAX_CHANGE_BYTES + 360);
    let len = change.encode().len();
    assert!(len > MAX_SIGNED_CHANGE_BYTES, "{len} bytes");
    change
}

fn too_large(error: &VerifyError) -> bool {
    matches!(error, VerifyError::EnvelopeTooLarge(n) if *n > MAX_SIGNED_CHANGE_BYTES)
}

#[test]
fn an_oversized_envelope_in_an_archive_is_refused() {
    let bytes = Archive {
        certificates: vec![],
        changes: vec![oversized()],
    }
    .encode();
    match Archive::decode(&bytes) {
        Err(ArchiveError::Change { error, .. }) => assert!(too_large(&error), "{error}"),
        other => panic!("expected EnvelopeTooLarge, got {other:?}"),
    }
}

#[test]
fn an_oversized_envelope_in_a_sync_response_is_refused() {
    let bytes = Response::Changes(ChangeBatch {
        changes: vec![mallory_change(10), oversized()],
        certificates: vec![],
        more: false,
    })
    .encode();
    match Response::decode(&bytes) {
        Err(DecodeError::Change { index: 1, error }) => assert!(too_large(&error), "{error}"),
        other => panic!("expected EnvelopeTooLarge for change 1, got {other:?}"),
    }
}

#[test]
fn an_oversized_envelope_in_a_gossip_message_is_refused() {
    let bytes = proto::GossipChange {
        change: Some(oversized().to_proto()),
        certificate: None,
    }
    .encode_to_vec();
    // As the node's gossip handler reads a message (kith-node, `gossip`).
    let gossip = proto::GossipChange::decode(bytes.as_slice()).expect("valid protobuf");
    let error = SignedChange::from_proto(gossip.change.expect("a change")).unwrap_err();
    assert!(too_large(&error), "{error}");
}

#[test]
fn bodies_count_toward_the_envelope_limit() {
    // A small change with bodies that together pass the limit: each body is
    // well formed, so only the envelope's size can refuse them.
    let mut change = mallory_change(10);
    let body = [vec![0u8; kith_core::body::SALT_LEN], vec![b'a'; 35_000]].concat();
    change.bodies = vec![body.clone(), body];
    let error = SignedChange::decode(&change.encode()).unwrap_err();
    assert!(too_large(&error), "{error}");
    let error = SignedChange::from_proto(change.to_proto()).unwrap_err();
    assert!(too_large(&error), "{error}");
}

#[test]
fn a_bare_oversized_envelope_is_refused_before_decoding() {
    let error = SignedChange::decode(&oversized().encode()).unwrap_err();
    assert!(too_large(&error), "{error}");
}

#[test]
fn the_largest_change_still_fits_its_envelope() {
    let largest = mallory_change(MAX_CHANGE_BYTES);
    assert!(largest.encode().len() <= MAX_SIGNED_CHANGE_BYTES);
    assert_eq!(SignedChange::decode(&largest.encode()), Ok(largest.clone()));
    let archive = Archive {
        certificates: vec![],
        changes: vec![largest.clone()],
    };
    assert_eq!(
        Archive::decode(&archive.encode()).unwrap().changes,
        vec![largest]
    );
}
