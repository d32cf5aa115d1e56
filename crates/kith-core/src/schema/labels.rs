//! The private document: labels on people (colleague, customer, vendor,
//! friend, any word) and blocks. Replicated only among the owner's own
//! devices: nobody else learns whom you label or block.
//!
//! ```text
//! "l/<did>/<label>" → true
//! "b/<did>"         → true (blocks)
//! ```

use automerge::{AutoCommit, transaction::Transactable};

use crate::IdentityId;

pub const LABEL_PREFIX: &str = "l/";
pub const BLOCK_PREFIX: &str = "b/";
/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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

pub fn contains(doc: &AutoCommit, key: &str) -> bool {
    super::profile::contains(doc, key)
}
