//! The profile document (proto/README.md section 9.2), checked both ways.

use kith_core::schema::profile;
use kith_core::{DocId, IdentityId, IdentityKey};

use super::{ChangeVector, apply, check_signed, commit, identity_public, new_doc, unhex, vectors};

const NAME: &str = "Ada Lovelace";
const BIO: &str = "Writes programs for engines that do not exist yet.";
const COMMIT_TIME_MS: i64 = 1_700_000_000_000;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    doc_id: String,
    name: String,
    bio: String,
    follows: String,
    follow_key: String,
    commit_time_ms: i64,
    signed: ChangeVector,
}

/// Bob: the identity with secret `04` × 32.
fn bob() -> IdentityId {
    IdentityKey::from_secret_bytes(&[0x04; 32]).id()
}

#[test]
fn a_profile_holds_name_bio_and_follows_as_root_keys() {
    let v = vectors();
    let p = &v.profile;
    let mut id = vec![2u8]; // profile
    id.extend_from_slice(&identity_public());
    id.extend_from_slice(&[0; 36]); // public space, shard 0
    assert_eq!(unhex(&p.doc_id), id);
    let doc_id = DocId::profile(IdentityId(identity_public()));
    assert_eq!(doc_id.to_bytes().as_slice(), id.as_slice());
    assert_eq!(
        (p.name.as_str(), p.bio.as_str(), p.commit_time_ms),
        (NAME, BIO, COMMIT_TIME_MS)
    );
    assert_eq!(p.follows, bob().to_string());
    assert_eq!(p.follow_key, format!("f/{}", p.follows));

    let mut doc = new_doc();
    profile::set_name(&mut doc, NAME).unwrap();
    profile::set_bio(&mut doc, BIO).unwrap();
    profile::add(&mut doc, &profile::follow_key(&bob())).unwrap();
    let made = commit(&mut doc, COMMIT_TIME_MS);
    check_signed(&p.signed, doc_id, &made);

    let doc = apply(&[&p.signed]);
    assert_eq!(profile::name(&doc).as_deref(), Some(NAME));
    assert_eq!(profile::bio(&doc).as_deref(), Some(BIO));
    assert!(profile::contains(&doc, &p.follow_key));
}
