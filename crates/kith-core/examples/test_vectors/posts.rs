//! Replies, reactions, and a post whose text is a Text object: more changes
//! of the public feed of `proto/README.md` section 9.1.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ScalarValue};
use kith_core::schema::feed;
use kith_core::{Body, DocId, PostId, SignedChange, SpaceId};

use crate::{Base, ChangeVector, commit, sign, sign_with};

pub const REPLY_KEY: &str = "vectorreply";
pub const REPLY_TEXT: &str = "hello back";
pub const REPLY_AT_MS: u64 = 1_700_000_060_000;
pub const REPLY_SALT: [u8; kith_core::body::SALT_LEN] = [0x05; 16];
pub const DELETION_TIME_MS: i64 = 1_700_000_240_000;
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
    salt: String,
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

/// The first post deleted (a fifth change of the feed, after the reaction's
/// removal), and the first post's envelope as a node serves it afterwards:
/// the same signed change, without its body.
#[derive(Debug, serde::Serialize)]
pub struct Deletion {
    commit_time_ms: i64,
    signed: ChangeVector,
    erased_post: String,
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
    let body = Body::with_salt(REPLY_SALT, REPLY_TEXT);
    feed::create_post_with(
        &mut base.feed,
        REPLY_KEY,
        &body,
        REPLY_AT_MS,
        Some(base.post_id),
    )?;
    let change = commit(&mut base.feed, at)?;
    let (reply_signed, reply_change) = sign_with(base, base.doc_id, &change, vec![body])?;
    let reply = Reply {
        post_key: REPLY_KEY,
        text: REPLY_TEXT,
        salt: hex::encode(REPLY_SALT),
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

/// Deletes the first post on a copy of the feed (the later vectors build
/// on the feed without it).
pub fn deletion(base: &mut Base) -> Result<Deletion, Box<dyn std::error::Error>> {
    let mut feed = base.feed.fork().with_actor(base.feed.get_actor().clone());
    feed::delete_post(&mut feed, crate::POST_KEY)?;
    let change = commit(&mut feed, DELETION_TIME_MS)?;
    let (_, signed) = sign(base, base.doc_id, &change)?;
    let mut erased = base.post.clone();
    erased.bodies.clear();
    Ok(Deletion {
        commit_time_ms: DELETION_TIME_MS,
        signed,
        erased_post: hex::encode(erased.encode()),
    })
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
