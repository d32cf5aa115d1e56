//! The profile & relations document: name, bio and follows. Public,
//! written only by its owner. Blocks live in the private document
//! ([`super::labels`]); `b/<did>` keys here are from earlier versions, which
//! published them: nothing indexes them, and a node moves its own to the
//! private document.
//!
//! ```text
//! "name" → str, "bio" → str, "f/<did>" → true (follows)
//! ```

use automerge::{AutoCommit, ReadDoc, transaction::Transactable};

use crate::IdentityId;
use crate::text::{self, NameError};

pub const NAME: &str = "name";
pub const BIO: &str = "bio";
pub const FOLLOW_PREFIX: &str = "f/";
/// Blocks as earlier versions published them (see the module documentation).
pub const LEGACY_BLOCK_PREFIX: &str = "b/";

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest bio, in characters.
pub const MAX_BIO_CHARS: usize = 1_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileError {
    #[error(transparent)]
    BadName(#[from] NameError),
    #[error("name is {0} characters; the limit is {MAX_NAME_CHARS}")]
    NameTooLong(usize),
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

/// Sets the display name, trimmed, if [`text::check_name`] accepts it and it
/// is at most [`MAX_NAME_CHARS`] long. Names that others signed are read as
/// they are, unchecked ([`crate::text`] says why).
pub fn set_name(doc: &mut AutoCommit, name: &str) -> Result<(), ProfileError> {
    let n = name.trim();
    text::check_name(n)?;
    let chars = n.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(ProfileError::NameTooLong(chars));
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

/// The identities of the blocks an earlier version published in `doc`.
pub fn legacy_blocks(doc: &AutoCommit) -> Vec<IdentityId> {
    doc.keys(automerge::ROOT)
        .filter(|k| contains(doc, k))
        .filter_map(|k| k.strip_prefix(LEGACY_BLOCK_PREFIX)?.parse().ok())
        .collect()
}

/// Adds `key` to a set of follows.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_name_trims_and_stores_a_plain_name() {
        let mut doc = AutoCommit::new();
        set_name(&mut doc, "  Ada Lovelace\n").unwrap();
        assert_eq!(name(&doc).as_deref(), Some("Ada Lovelace"));
    }

    #[test]
    fn set_name_refuses_a_name_that_hides_what_it_says_and_keeps_the_old_one() {
        let mut doc = AutoCommit::new();
        set_name(&mut doc, "Ada").unwrap();
        for (bad, error) in [
            ("Ada\nBob", NameError::ControlCharacter('\n')),
            (
                "Ada\u{1b}]52;c;aGk=\u{7}",
                NameError::ControlCharacter('\u{1b}'),
            ),
            ("Ada\u{202E}evoL", NameError::BidiControl('\u{202E}')),
            ("\u{200B}", NameError::NoVisibleText),
        ] {
            assert_eq!(
                set_name(&mut doc, bad),
                Err(ProfileError::BadName(error)),
                "{bad:?}"
            );
        }
        assert_eq!(name(&doc).as_deref(), Some("Ada"));
        assert_eq!(
            ProfileError::BadName(NameError::ControlCharacter('\n'))
                .to_string()
                .split(" (")
                .next(),
            Some("a name may not contain control characters")
        );
    }

    #[test]
    fn set_name_refuses_a_long_name() {
        let mut doc = AutoCommit::new();
        assert_eq!(set_name(&mut doc, &"é".repeat(MAX_NAME_CHARS)), Ok(()));
        assert_eq!(
            set_name(&mut doc, &"é".repeat(MAX_NAME_CHARS + 1)),
            Err(ProfileError::NameTooLong(MAX_NAME_CHARS + 1))
        );
    }
}
