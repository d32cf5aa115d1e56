//! The profile document of `proto/README.md` section 9.2: a name, a bio and
//! a follow, in one change.

use automerge::AutoCommit;
use kith_core::DocId;
use kith_core::schema::profile;

use crate::{Base, ChangeVector, commit, person, sign};

pub const NAME: &str = "Ada Lovelace";
pub const BIO: &str = "Writes programs for engines that do not exist yet.";
/// Bob, whom the profile follows: the identity with secret `04` × 32.
pub const FOLLOWED_SECRET_BYTE: u8 = 0x04;
pub const COMMIT_TIME_MS: i64 = 1_700_000_000_000;

#[derive(Debug, serde::Serialize)]
pub struct Profile {
    doc_id: String,
    name: &'static str,
    bio: &'static str,
    follows: String,
    follow_key: String,
    commit_time_ms: i64,
    signed: ChangeVector,
}

pub fn vectors(base: &Base) -> Result<Profile, Box<dyn std::error::Error>> {
    let doc_id = DocId::profile(base.identity.id());
    let mut doc = AutoCommit::new().with_actor(base.feed.get_actor().clone());
    profile::set_name(&mut doc, NAME)?;
    profile::set_bio(&mut doc, BIO)?;
    let bob = person(FOLLOWED_SECRET_BYTE);
    profile::add(&mut doc, &profile::follow_key(&bob))?;
    let change = commit(&mut doc, COMMIT_TIME_MS)?;
    let (_, change) = sign(base, doc_id, &change)?;
    Ok(Profile {
        doc_id: hex::encode(doc_id.to_bytes()),
        name: NAME,
        bio: BIO,
        follows: bob.to_string(),
        follow_key: profile::follow_key(&bob),
        commit_time_ms: COMMIT_TIME_MS,
        signed: change,
    })
}
