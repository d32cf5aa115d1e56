//! Inputs the fuzzer found to crash kith, signed as an honest author would
//! sign them and given to a store: they are refused or stored, and the
//! store goes on.

mod support;

use kith_core::SignedChange;
use kith_store::Store;
use support::Author;

/// See kith-core's `tests/fuzz_finds.rs`: a change whose operations name an
/// actor the change does not list, with a body. It is a change of the test
/// vectors' feed; here alice's device signs it, as its author would.
const UNLISTED_ACTOR: &str = "0a45018a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c000000000000100000000000002e0000000000000000000000000000000000000000000012a001856f4a83084e599101950100288139770ea87d175f56a35466c34c7ecc2c8d8a91b4ee37a25df60f5b8fc9b3940303030303030303010180d095ffbc3100000801040204151634014204560557267002a001856f4a0102017d0c702f766563746f72706f737404626f6479026174037f0002017d00870464b5fa9415640010997ee6b7eb67b9b04cf45604343f3c16b5e25854853eb4814080d095ffbc3103001a208139770ea87d175f56a35466c34c7ecccb8d8a9192000000000000008fc9b394224012525bdb5988c20ce29bb5e03da67fc94ce12fa7418f74b0e1805a9ce1cb2abeb9a0bc003238110a3570e7a3a7d1b590b04136c33dca6d84a9098fe3e53f2c022a1b0404040404040404040404040404040468656c6c6f2c206b697468";

#[test]
fn a_signed_change_naming_an_unlisted_actor_does_not_take_the_batch_down() {
    let mut alice = Author::new(1);
    let (identity, device) = (&alice.identity, &alice.device);
    let found = SignedChange::decode(
        &data_encoding::HEXLOWER
            .decode(UNLISTED_ACTOR.as_bytes())
            .unwrap(),
    )
    .unwrap();
    // The fuzzer left its checksum stale, which kith refuses before
    // anything else (proto/README.md §6.1); an author would set it.
    let mut bytes = found.change.clone();
    // Its actor is made the signing device's, as an author's would be.
    let actor = kith_core::chunk::parse_header(&bytes)
        .map(|h| h.actor)
        .unwrap_or_else(|_| {
            let mut fixed = bytes.clone();
            let hash = <sha2::Sha256 as sha2::Digest>::digest(&fixed[8..]);
            fixed[4..8].copy_from_slice(&hash[..4]);
            kith_core::chunk::parse_header(&fixed)
                .expect("the header parses")
                .actor
        });
    let at = bytes
        .windows(actor.len())
        .position(|w| w == actor.as_slice())
        .expect("the actor is in the change");
    bytes[at..at + 32].copy_from_slice(&device.id().0);
    let hash = <sha2::Sha256 as sha2::Digest>::digest(&bytes[8..]);
    bytes[4..8].copy_from_slice(&hash[..4]);
    let doc = kith_core::DocId::feed(identity.id(), kith_core::SpaceId::PUBLIC, 0);
    let mut crafted = SignedChange::sign(doc, bytes, device, identity.id())
        .expect("the header parses and names the device")
        .into_inner();
    crafted.bodies = found.bodies.clone();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("kith.redb")).unwrap();
    // With an honest post of hers in the same batch.
    let honest = alice.post("k", "an honest post beside it");
    let report = store
        .ingest_with(&[alice.cert.clone()], vec![crafted, honest])
        .unwrap();
    assert_eq!(report.applied, 1, "{report:?}");
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert!(
        matches!(
            report.rejected[0],
            (0, kith_store::IngestError::Malformed(_))
        ),
        "{report:?}"
    );
    let post = kith_core::PostId::derive(&doc, "k");
    assert_eq!(
        store.post(&post).unwrap().unwrap().text.as_deref(),
        Some("an honest post beside it")
    );
}
