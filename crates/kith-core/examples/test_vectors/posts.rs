//! Replies, reactions, and a post whose text is a Text object: more changes
//! of the public feed of `proto/README.md` section 9.1.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ScalarValue};
use kith_core::schema::feed;
use kith_core::{DocId, PostId, SignedChange, SpaceId};

use crate::{Base, ChangeVector, commit, sign};

pub const REPLY_KEY: &str = "vectorreply";
pub const REPLY_TEXT: &str = "hello back";
pub const REPLY_AT_MS: u64 = 1_700_000_060_000;
pub const REACTION: &str = "👍";
pub const REACTION_TIME_MS: i64 = 1_700_000_120_000;
pub const UNREACTION_TIME_MS: i64 = 1_700_000_180_000;
pub const TEXT_OBJECT_KEY: &str = "textobject";
pub const TEXT_OBJECT_TEXT: &str = "written as automerge-js writes a string";
pub const TEXT_OBJECT_AT_MS: i64 = 1_700_000_000_000;

/// A reply to the first post, in the same feed (its second change).
#[derive(Debug, serde::Serialize)]
pub struct Reply {
    post_key: &'static str,
    text: &'static str,
    at_ms: u64,
    commit_time_ms: i64,
    parent: String,
    post_id: String,
    signed: ChangeVector,
}

/// The feed owner's reaction to the first post, then its removal (the
/// feed's third and fourth changes).
#[derive(Debug, serde::Serialize)]
pub struct Reaction {
    emoji: &'static str,
    key: String,
    commit_time_ms: i64,
    signed: ChangeVector,
    removal_commit_time_ms: i64,
    removal: ChangeVector,
}

/// A post whose `text` is an automerge Text object, in shard 1 of the
/// feed: a valid change, read as a post without text.
#[derive(Debug, serde::Serialize)]
pub struct TextObjectPost {
    doc_id: String,
    post_key: &'static str,
    text: &'static str,
    at_ms: i64,
    commit_time_ms: i64,
    signed: ChangeVector,
}

/// The reply, the reaction and the feed's changes after the first post,
/// in order (what a sync response sends after the first).
pub fn replies_and_reactions(
    base: &mut Base,
) -> Result<(Reply, Reaction, Vec<SignedChange>), Box<dyn std::error::Error>> {
    let at = REPLY_AT_MS as i64;
    feed::create_post(
        &mut base.feed,
        REPLY_KEY,
        REPLY_TEXT,
        REPLY_AT_MS,
        Some(base.post_id),
    )?;
    let change = commit(&mut base.feed, at)?;
    let (reply_signed, reply_change) = sign(base, base.doc_id, &change)?;
    let reply = Reply {
        post_key: REPLY_KEY,
        text: REPLY_TEXT,
        at_ms: REPLY_AT_MS,
        commit_time_ms: at,
        parent: base.post_id.to_string(),
        post_id: PostId::derive(&base.doc_id, REPLY_KEY).to_string(),
        signed: reply_change,
    };

    feed::react(&mut base.feed, &base.post_id, REACTION)?;
    let change = commit(&mut base.feed, REACTION_TIME_MS)?;
    let (react_signed, react_change) = sign(base, base.doc_id, &change)?;
    feed::unreact(&mut base.feed, &base.post_id, REACTION)?;
    let change = commit(&mut base.feed, UNREACTION_TIME_MS)?;
    let (unreact_signed, unreact_change) = sign(base, base.doc_id, &change)?;
    let reaction = Reaction {
        emoji: REACTION,
        key: feed::reaction_key(&base.post_id, REACTION),
        commit_time_ms: REACTION_TIME_MS,
        signed: react_change,
        removal_commit_time_ms: UNREACTION_TIME_MS,
        removal: unreact_change,
    };
    Ok((
        reply,
        reaction,
        vec![reply_signed, react_signed, unreact_signed],
    ))
}

/// Builds the post as automerge-js builds `{text: "…", at: …}`: `text` a
/// Text object. kith's own writer never does this.
pub fn text_object_post(base: &Base) -> Result<TextObjectPost, Box<dyn std::error::Error>> {
    let doc_id = DocId::feed(base.identity.id(), SpaceId::PUBLIC, 1);
    let actor: ActorId = base.feed.get_actor().clone();
    let mut doc = AutoCommit::new().with_actor(actor);
    let post = doc.put_object(
        automerge::ROOT,
        format!("{}{TEXT_OBJECT_KEY}", feed::POST_PREFIX),
        ObjType::Map,
    )?;
    let text = doc.put_object(&post, feed::TEXT, ObjType::Text)?;
    doc.splice_text(&text, 0, 0, TEXT_OBJECT_TEXT)?;
    doc.put(&post, "at", ScalarValue::Int(TEXT_OBJECT_AT_MS))?;
    let change = commit(&mut doc, TEXT_OBJECT_AT_MS)?;
    let (_, change) = sign(base, doc_id, &change)?;
    Ok(TextObjectPost {
        doc_id: hex::encode(doc_id.to_bytes()),
        post_key: TEXT_OBJECT_KEY,
        text: TEXT_OBJECT_TEXT,
        at_ms: TEXT_OBJECT_AT_MS,
        commit_time_ms: TEXT_OBJECT_AT_MS,
        signed: change,
    })
}
