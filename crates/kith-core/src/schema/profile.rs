//! The profile & relations document: name, bio, follows and blocks. Public,
//! written only by its owner.
//!
//! ```text
//! "name" → str, "bio" → str, "f/<did>" → true (follows), "b/<did>" → true (blocks)
//! ```

use automerge::{AutoCommit, ReadDoc, transaction::Transactable};

use crate::IdentityId;

pub const NAME: &str = "name";
pub const BIO: &str = "bio";
pub const FOLLOW_PREFIX: &str = "f/";
pub const BLOCK_PREFIX: &str = "b/";

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest bio, in characters.
pub const MAX_BIO_CHARS: usize = 1_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("name must be 1 to {MAX_NAME_CHARS} characters, without line breaks")]
    BadName,
    #[error("bio is longer than {MAX_BIO_CHARS} characters")]
    BioTooLong,
    #[error("automerge refused the edit: {0}")]
    Automerge(String),
}

impl From<automerge::AutomergeError> for ProfileError {
    fn from(e: automerge::AutomergeError) -> Self {
        ProfileError::Automerge(e.to_string())
    }
}

pub fn set_name(doc: &mut AutoCommit, name: &str) -> Result<(), ProfileError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME_CHARS || n.contains(['\n', '\r']) {
        return Err(ProfileError::BadName);
    }
    doc.put(automerge::ROOT, NAME, n)?;
    Ok(())
}

pub fn set_bio(doc: &mut AutoCommit, bio: &str) -> Result<(), ProfileError> {
    if bio.chars().count() > MAX_BIO_CHARS {
        return Err(ProfileError::BioTooLong);
    }
    doc.put(automerge::ROOT, BIO, bio)?;
    Ok(())
}

pub fn name(doc: &AutoCommit) -> Option<String> {
    super::get_str(doc, &automerge::ROOT, NAME)
}

pub fn bio(doc: &AutoCommit) -> Option<String> {
    super::get_str(doc, &automerge::ROOT, BIO)
}

pub fn follow_key(who: &IdentityId) -> String {
    format!("{FOLLOW_PREFIX}{who}")
}

pub fn block_key(who: &IdentityId) -> String {
    format!("{BLOCK_PREFIX}{who}")
}

/// Adds `key` to a set (follow or block).
pub fn add(doc: &mut AutoCommit, key: &str) -> Result<(), ProfileError> {
    doc.put(automerge::ROOT, key, true)?;
    Ok(())
}

/// Removes `key` from a set; removing an absent key is a no-op.
pub fn remove(doc: &mut AutoCommit, key: &str) -> Result<(), ProfileError> {
    if contains(doc, key) {
        doc.delete(automerge::ROOT, key)?;
    }
    Ok(())
}

pub fn contains(doc: &AutoCommit, key: &str) -> bool {
    matches!(doc.get(automerge::ROOT, key), Ok(Some((automerge::Value::Scalar(s), _))) if s.as_ref() == &automerge::ScalarValue::Boolean(true))
}
