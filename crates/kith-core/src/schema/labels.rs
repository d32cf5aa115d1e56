//! The private document: labels on people (colleague, customer, vendor,
//! friend, any word), blocks and mutes. Replicated only among the owner's
//! own devices: nobody else learns whom you label, block or mute.
//!
//! ```text
//! "l/<did>/<label>" → true
//! "b/<did>"         → true (blocks)
//! "m/<did>"         → true (mutes)
//! ```

use automerge::{AutoCommit, transaction::Transactable};

use crate::IdentityId;

pub const LABEL_PREFIX: &str = "l/";
pub const BLOCK_PREFIX: &str = "b/";
/// A mute hides a person's posts from the owner's timelines without
/// stopping anything else: unlike a block, the owner may still follow them.
pub const MUTE_PREFIX: &str = "m/";
/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LabelError {
    #[error("label `{0}` must be 1 to {MAX_LABEL_CHARS} characters: letters, digits, `-` or `_`")]
    BadLabel(String),
    #[error("automerge refused the edit: {0}")]
    Automerge(String),
}

impl From<automerge::AutomergeError> for LabelError {
    fn from(e: automerge::AutomergeError) -> Self {
        LabelError::Automerge(e.to_string())
    }
}

/// Normalises a label to lower case, refusing anything but a single word.
pub fn normalise(label: &str) -> Result<String, LabelError> {
    let l = label.trim().to_lowercase();
    let ok = !l.is_empty()
        && l.chars().count() <= MAX_LABEL_CHARS
        && l.chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(l)
    } else {
        Err(LabelError::BadLabel(label.to_owned()))
    }
}

pub fn label_key(who: &IdentityId, label: &str) -> String {
    format!("{LABEL_PREFIX}{who}/{label}")
}

pub fn parse_label_key(key: &str) -> Option<(IdentityId, &str)> {
    let rest = key.strip_prefix(LABEL_PREFIX)?;
    let (who, label) = rest.rsplit_once('/')?;
    Some((who.parse().ok()?, label))
}

pub fn add(doc: &mut AutoCommit, who: &IdentityId, label: &str) -> Result<(), LabelError> {
    let l = normalise(label)?;
    doc.put(automerge::ROOT, label_key(who, &l), true)?;
    Ok(())
}

pub fn block_key(who: &IdentityId) -> String {
    format!("{BLOCK_PREFIX}{who}")
}

/// The identity a block key names.
pub fn parse_block_key(key: &str) -> Option<IdentityId> {
    key.strip_prefix(BLOCK_PREFIX)?.parse().ok()
}

/// Blocks (`on`) or unblocks `who`; unblocking someone not blocked changes
/// nothing.
pub fn set_block(doc: &mut AutoCommit, who: &IdentityId, on: bool) -> Result<(), LabelError> {
    let key = block_key(who);
    if on {
        doc.put(automerge::ROOT, key, true)?;
    } else if contains(doc, &key) {
        doc.delete(automerge::ROOT, key)?;
    }
    Ok(())
}

pub fn mute_key(who: &IdentityId) -> String {
    format!("{MUTE_PREFIX}{who}")
}

/// The identity a mute key names.
pub fn parse_mute_key(key: &str) -> Option<IdentityId> {
    key.strip_prefix(MUTE_PREFIX)?.parse().ok()
}

/// Mutes (`on`) or unmutes `who`; unmuting someone not muted changes
/// nothing.
pub fn set_mute(doc: &mut AutoCommit, who: &IdentityId, on: bool) -> Result<(), LabelError> {
    let key = mute_key(who);
    if on {
        doc.put(automerge::ROOT, key, true)?;
    } else if contains(doc, &key) {
        doc.delete(automerge::ROOT, key)?;
    }
    Ok(())
}

pub fn contains(doc: &AutoCommit, key: &str) -> bool {
    super::profile::contains(doc, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdentityKey;

    fn mallory() -> IdentityId {
        IdentityKey::from_secret_bytes(&[13; 32]).id()
    }

    #[test]
    fn a_mute_is_its_own_key_beside_a_block() {
        let mut doc = AutoCommit::new();
        set_mute(&mut doc, &mallory(), true).unwrap();
        let key = mute_key(&mallory());
        assert!(contains(&doc, &key));
        assert!(
            !contains(&doc, &block_key(&mallory())),
            "muting is not blocking"
        );
        assert_eq!(parse_mute_key(&key), Some(mallory()));
        assert_eq!(parse_block_key(&key), None);
        assert_eq!(parse_mute_key(&block_key(&mallory())), None);
        assert!(parse_label_key(&key).is_none());
    }

    #[test]
    fn unmuting_removes_the_key_and_is_idempotent() {
        let mut doc = AutoCommit::new();
        set_mute(&mut doc, &mallory(), false).unwrap();
        assert!(!contains(&doc, &mute_key(&mallory())));
        set_mute(&mut doc, &mallory(), true).unwrap();
        set_mute(&mut doc, &mallory(), false).unwrap();
        assert!(!contains(&doc, &mute_key(&mallory())));
    }
}
