//! Inputs the fuzzer (`scripts/fuzz`) found to crash kith, kept as tests.

use kith_core::SignedChange;

/// An envelope whose change parses and whose operations name an actor the
/// change does not list: automerge 0.12 panics listing its operations.
/// Found by the `signed_change` target once bodies were matched to the
/// operations that put their hashes.
const UNLISTED_ACTOR: &str = "0a45018a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c000000000000100000000000002e0000000000000000000000000000000000000000000012a001856f4a83084e599101950100288139770ea87d175f56a35466c34c7ecc2c8d8a91b4ee37a25df60f5b8fc9b3940303030303030303010180d095ffbc3100000801040204151634014204560557267002a001856f4a0102017d0c702f766563746f72706f737404626f6479026174037f0002017d00870464b5fa9415640010997ee6b7eb67b9b04cf45604343f3c16b5e25854853eb4814080d095ffbc3103001a208139770ea87d175f56a35466c34c7ecccb8d8a9192000000000000008fc9b394224012525bdb5988c20ce29bb5e03da67fc94ce12fa7418f74b0e1805a9ce1cb2abeb9a0bc003238110a3570e7a3a7d1b590b04136c33dca6d84a9098fe3e53f2c022a1b0404040404040404040404040404040468656c6c6f2c206b697468";

#[test]
fn a_change_naming_an_unlisted_actor_loses_its_bodies_not_the_process() {
    let envelope =
        SignedChange::decode(&hex::decode(UNLISTED_ACTOR).unwrap()).expect("the envelope decodes");
    assert_eq!(envelope.bodies.len(), 1);
    let change = automerge::Change::from_bytes(envelope.change.clone())
        .expect("automerge parses the change");
    assert!(
        std::panic::catch_unwind(|| change.decode()).is_err(),
        "automerge still panics here; if it no longer does, this test guards nothing"
    );
    assert!(kith_core::schema::expand(&change).is_none());
}
