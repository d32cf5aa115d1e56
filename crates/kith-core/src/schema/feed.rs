//! The feed document: one identity's posts, replies, reactions, edits and
//! deletions in one space.
//!
//! ```text
//! "p/<key>" → map { "body": bytes(32), "at": int (ms), "reply": bytes(16)?, "deleted": true? }
//! "r/<post id>/<emoji>" → true        (a reaction by the feed's owner)
//! ```
//! `body` is the hash of the post's [`Body`], which travels beside the
//! change ([`crate::body`] says why). Posts written before bodies hold their
//! text inline, as `"text": str`; readers still read them.
//! A deleted post keeps its map (so replies still have a parent) but loses its
//! body and gains `"deleted": true`.

use automerge::{
    AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef,
    transaction::Transactable,
};

use crate::PostId;
use crate::body::{Body, BodyHash};

pub const POST_PREFIX: &str = "p/";
pub const REACTION_PREFIX: &str = "r/";
pub const TEXT: &str = "text";
pub const BODY: &str = "body";
const AT: &str = "at";
const REPLY: &str = "reply";
const DELETED: &str = "deleted";

/// Longest post, in characters.
pub const MAX_POST_CHARS: usize = 10_000;
/// Longest reaction, in bytes (an emoji sequence or a short word).
pub const MAX_REACTION_BYTES: usize = 32;

/// Why a feed edit was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedError {
    #[error("a post needs visible text: this one is empty or only spaces and invisible characters")]
    NoVisibleText,
    #[error("post text is {0} characters; the limit is {MAX_POST_CHARS}")]
    TextTooLong(usize),
    #[error("reaction must be 1 to {MAX_REACTION_BYTES} bytes with no spaces")]
    BadReaction,
    #[error("no post with key {0} in this feed")]
    NoSuchPost(String),
    #[error("post {0} is deleted")]
    Deleted(String),
    #[error("automerge refused the edit: {0}")]
    Automerge(String),
    #[error("no randomness for the post's body: {0}")]
    Random(String),
}

impl From<crate::RandomError> for FeedError {
    fn from(e: crate::RandomError) -> Self {
        FeedError::Random(e.to_string())
    }
}

impl From<automerge::AutomergeError> for FeedError {
    fn from(e: automerge::AutomergeError) -> Self {
        FeedError::Automerge(e.to_string())
    }
}

/// Checks post text as its author writes it: something visible in it
/// ([`crate::text::has_visible_text`]), at most [`MAX_POST_CHARS`]
/// characters. Posts that others signed are read as they are, unchecked
/// ([`crate::text`] says why).
pub fn check_text(text: &str) -> Result<(), FeedError> {
    if !crate::text::has_visible_text(text) {
        return Err(FeedError::NoVisibleText);
    }
    let n = text.chars().count();
    if n > MAX_POST_CHARS {
        return Err(FeedError::TextTooLong(n));
    }
    Ok(())
}

/// Checks a reaction: short, no whitespace.
pub fn check_reaction(emoji: &str) -> Result<(), FeedError> {
    if emoji.is_empty()
        || emoji.len() > MAX_REACTION_BYTES
        || emoji.chars().any(char::is_whitespace)
        || emoji.contains('/')
    {
        return Err(FeedError::BadReaction);
    }
    Ok(())
}

/// Where a post's current text is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostText {
    /// In a body beside the change that put this hash.
    Body(BodyHash),
    /// Inline in the change: a post written before bodies.
    Inline(String),
}

/// A post as the document holds it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostState {
    /// The current text and the id of the op that put it; `None` once deleted.
    pub text: Option<(PostText, ObjId)>,
    pub at_ms: u64,
    pub reply_to: Option<PostId>,
    pub deleted: bool,
    /// The post's map object: its id names the op that created the post.
    pub obj: ObjId,
}

fn post_obj(doc: &AutoCommit, key: &str) -> Option<ObjId> {
    match doc
        .get(automerge::ROOT, format!("{POST_PREFIX}{key}"))
        .ok()??
    {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// Adds a post under `key` (fresh and random, chosen by the caller).
/// Returns its body, which must travel with the change.
pub fn create_post(
    doc: &mut AutoCommit,
    key: &str,
    text: &str,
    at_ms: u64,
    reply_to: Option<PostId>,
) -> Result<Body, FeedError> {
    check_text(text)?;
    let body = Body::new(text)?;
    create_post_with(doc, key, &body, at_ms, reply_to)?;
    Ok(body)
}

/// [`create_post`] with a body the caller made.
pub fn create_post_with(
    doc: &mut AutoCommit,
    key: &str,
    body: &Body,
    at_ms: u64,
    reply_to: Option<PostId>,
) -> Result<(), FeedError> {
    check_text(body.text())?;
    let obj = doc.put_object(automerge::ROOT, format!("{POST_PREFIX}{key}"), ObjType::Map)?;
    doc.put(&obj, BODY, ScalarValue::Bytes(body.hash().to_vec()))?;
    doc.put(&obj, AT, ScalarValue::Int(at_ms as i64))?;
    if let Some(parent) = reply_to {
        doc.put(&obj, REPLY, ScalarValue::Bytes(parent.0.to_vec()))?;
    }
    Ok(())
}

/// Gives a post a new text. The old body stays (the post's edit history)
/// until the post is deleted. Returns the new body, which must travel with
/// the change.
pub fn edit_post(doc: &mut AutoCommit, key: &str, text: &str) -> Result<Body, FeedError> {
    check_text(text)?;
    let body = Body::new(text)?;
    edit_post_with(doc, key, &body)?;
    Ok(body)
}

/// [`edit_post`] with a body the caller made.
pub fn edit_post_with(doc: &mut AutoCommit, key: &str, body: &Body) -> Result<(), FeedError> {
    check_text(body.text())?;
    let state = post_state(doc, key).ok_or_else(|| FeedError::NoSuchPost(key.to_owned()))?;
    if state.deleted {
        return Err(FeedError::Deleted(key.to_owned()));
    }
    let obj = post_obj(doc, key).expect("post_state found it");
    doc.put(&obj, BODY, ScalarValue::Bytes(body.hash().to_vec()))?;
    if doc.get(&obj, TEXT)?.is_some() {
        // A post from before bodies: its inline text must not outlive the edit.
        doc.delete(&obj, TEXT)?;
    }
    Ok(())
}

/// Marks a post deleted and removes its text from the current state. Every
/// node that applies this drops the bodies of all the post's versions.
pub fn delete_post(doc: &mut AutoCommit, key: &str) -> Result<(), FeedError> {
    let state = post_state(doc, key).ok_or_else(|| FeedError::NoSuchPost(key.to_owned()))?;
    if state.deleted {
        return Err(FeedError::Deleted(key.to_owned()));
    }
    let obj = post_obj(doc, key).expect("post_state found it");
    doc.put(&obj, DELETED, true)?;
    for field in [BODY, TEXT] {
        if doc.get(&obj, field)?.is_some() {
            doc.delete(&obj, field)?;
        }
    }
    Ok(())
}

/// The root key of a reaction.
pub fn reaction_key(post: &PostId, emoji: &str) -> String {
    format!("{REACTION_PREFIX}{post}/{emoji}")
}

/// Splits a reaction key into its post and emoji.
pub fn parse_reaction_key(key: &str) -> Option<(PostId, &str)> {
    let rest = key.strip_prefix(REACTION_PREFIX)?;
    let (post, emoji) = rest.split_once('/')?;
    Some((post.parse().ok()?, emoji))
}

/// Adds a reaction; idempotent.
pub fn react(doc: &mut AutoCommit, post: &PostId, emoji: &str) -> Result<(), FeedError> {
    check_reaction(emoji)?;
    doc.put(automerge::ROOT, reaction_key(post, emoji), true)?;
    Ok(())
}

/// Removes a reaction; idempotent.
pub fn unreact(doc: &mut AutoCommit, post: &PostId, emoji: &str) -> Result<(), FeedError> {
    doc.delete(automerge::ROOT, reaction_key(post, emoji))?;
    Ok(())
}

/// Whether the reaction is present.
pub fn has_reaction(doc: &AutoCommit, key: &str) -> bool {
    matches!(doc.get(automerge::ROOT, key), Ok(Some((Value::Scalar(s), _))) if s.as_ref() == &ScalarValue::Boolean(true))
}

/// Reads the post under `key`, if there is one.
pub fn post_state(doc: &AutoCommit, key: &str) -> Option<PostState> {
    let obj = post_obj(doc, key)?;
    // One pass over the post's few fields: each `get` would seek through
    // automerge's op set anew, and the indexer reads every post it touches.
    let mut state = PostState {
        text: None,
        at_ms: 0,
        reply_to: None,
        deleted: false,
        obj: obj.clone(),
    };
    for item in doc.map_range(&obj, ..) {
        let ValueRef::Scalar(value) = &item.value else {
            continue;
        };
        match (item.key.as_ref(), value) {
            (BODY, ScalarValueRef::Bytes(b)) => {
                if let Ok(hash) = <BodyHash>::try_from(b.as_ref()) {
                    state.text = Some((PostText::Body(hash), item.id()));
                }
            }
            // A body wins over inline text, wherever the map lists it.
            (TEXT, ScalarValueRef::Str(t))
                if !matches!(state.text, Some((PostText::Body(_), _))) =>
            {
                state.text = Some((PostText::Inline(t.to_string()), item.id()));
            }
            (AT, ScalarValueRef::Int(i)) => state.at_ms = u64::try_from(*i).unwrap_or(0),
            (AT, ScalarValueRef::Uint(u)) => state.at_ms = *u,
            (REPLY, ScalarValueRef::Bytes(b)) => state.reply_to = PostId::from_slice(b),
            (DELETED, ScalarValueRef::Boolean(true)) => state.deleted = true,
            _ => {}
        }
    }
    if state.deleted {
        state.text = None;
    }
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_removes_text_from_the_current_state() {
        let mut doc = AutoCommit::new();
        let body = create_post(&mut doc, "k", "secret", 1, None).unwrap();
        assert_eq!(
            post_state(&doc, "k").unwrap().text.map(|t| t.0),
            Some(PostText::Body(body.hash())),
            "the change holds the body's hash, not the text"
        );
        delete_post(&mut doc, "k").unwrap();
        let s = post_state(&doc, "k").unwrap();
        assert!(s.deleted);
        assert_eq!(s.text, None);
        assert_eq!(
            edit_post(&mut doc, "k", "x"),
            Err(FeedError::Deleted("k".into()))
        );
    }

    #[test]
    fn post_state_reads_the_winner_of_concurrent_edits() {
        let parent = PostId([9; 16]);
        let mut laptop = AutoCommit::new().with_actor(automerge::ActorId::from(vec![1u8; 40]));
        let _first = create_post(&mut laptop, "k", "first", 7, Some(parent)).unwrap();
        let mut phone = laptop
            .fork()
            .with_actor(automerge::ActorId::from(vec![2u8; 40]));
        let _laptop = edit_post(&mut laptop, "k", "from the laptop").unwrap();
        let _phone = edit_post(&mut phone, "k", "from the phone").unwrap();
        laptop.merge(&mut phone).unwrap();
        let obj = post_obj(&laptop, "k").unwrap();
        let (winner, winner_id) = match laptop.get(&obj, BODY).unwrap().unwrap() {
            (Value::Scalar(s), id) => match s.as_ref() {
                ScalarValue::Bytes(b) => (PostText::Body(b.as_slice().try_into().unwrap()), id),
                other => panic!("body is not bytes: {other:?}"),
            },
            other => panic!("body is not a scalar: {other:?}"),
        };
        let s = post_state(&laptop, "k").unwrap();
        assert_eq!(s.text, Some((winner, winner_id)));
        assert_eq!((s.at_ms, s.reply_to, s.deleted), (7, Some(parent), false));
    }

    #[test]
    fn a_post_of_only_invisible_characters_is_refused() {
        for text in [
            "",
            "\u{200B}",
            "\u{200C}\u{200D}",
            " \u{2060} \u{FEFF}\n",
            "\u{202E}\u{2066}",
            "\u{00AD}\u{E0041}",
        ] {
            assert_eq!(check_text(text), Err(FeedError::NoVisibleText), "{text:?}");
        }
        let mut doc = AutoCommit::new();
        assert_eq!(
            create_post(&mut doc, "k", "\u{200B}\u{200B}", 1, None),
            Err(FeedError::NoVisibleText)
        );
        assert_eq!(post_state(&doc, "k"), None, "nothing was written");
        let _visible = create_post(&mut doc, "k", "visible", 1, None).unwrap();
        assert_eq!(
            edit_post(&mut doc, "k", "\u{FEFF}"),
            Err(FeedError::NoVisibleText)
        );
        assert_eq!(
            FeedError::NoVisibleText.to_string().split(':').next(),
            Some("a post needs visible text")
        );
    }

    #[test]
    fn a_post_with_visible_text_may_hold_invisible_characters_too() {
        assert_eq!(check_text("\u{200B}hi\u{200B}"), Ok(()));
        assert_eq!(check_text("👩\u{200D}👩\u{200D}👧"), Ok(()));
    }

    #[test]
    fn text_limits_are_enforced() {
        assert_eq!(check_text("  \n"), Err(FeedError::NoVisibleText));
        assert_eq!(check_text(&"é".repeat(MAX_POST_CHARS)), Ok(()));
        assert_eq!(
            check_text(&"a".repeat(MAX_POST_CHARS + 1)),
            Err(FeedError::TextTooLong(MAX_POST_CHARS + 1))
        );
    }
}

#[cfg(test)]
mod legacy_tests {
    use super::*;

    /// A post written before bodies, with its text inline.
    fn legacy_post(doc: &mut AutoCommit, key: &str, text: &str) {
        let obj = doc
            .put_object(automerge::ROOT, format!("{POST_PREFIX}{key}"), ObjType::Map)
            .unwrap();
        doc.put(&obj, TEXT, text).unwrap();
        doc.put(&obj, AT, ScalarValue::Int(3)).unwrap();
    }

    #[test]
    fn inline_text_is_read_and_an_edit_or_delete_removes_it() {
        let mut doc = AutoCommit::new();
        legacy_post(&mut doc, "old", "written long ago");
        assert_eq!(
            post_state(&doc, "old").unwrap().text.map(|t| t.0),
            Some(PostText::Inline("written long ago".into()))
        );
        let body = edit_post(&mut doc, "old", "edited").unwrap();
        let obj = post_obj(&doc, "old").unwrap();
        assert!(
            doc.get(&obj, TEXT).unwrap().is_none(),
            "the inline text is gone"
        );
        assert_eq!(
            post_state(&doc, "old").unwrap().text.map(|t| t.0),
            Some(PostText::Body(body.hash()))
        );
        legacy_post(&mut doc, "other", "also old");
        delete_post(&mut doc, "other").unwrap();
        let obj = post_obj(&doc, "other").unwrap();
        assert!(doc.get(&obj, TEXT).unwrap().is_none());
        assert!(post_state(&doc, "other").unwrap().deleted);
    }
}
