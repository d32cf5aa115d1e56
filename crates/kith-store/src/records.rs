//! What queries return: the store's facts about posts and people, as plain
//! values. How they are shown (JSON field names, timestamps as text) is the
//! control API's business (`kith_node::views`), so the store and its
//! readers can change apart.

use std::collections::BTreeMap;

use kith_core::{DocId, IdentityId, PostId, SpaceId};

/// One post as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub id: PostId,
    /// Where it was posted: the public space, or a group's.
    pub space: SpaceId,
    pub author: IdentityId,
    /// The author's name, as their profile says.
    pub author_name: Option<String>,
    /// `None` once the post is deleted.
    pub text: Option<String>,
    pub created_at_ms: u64,
    pub reply_to: Option<PostId>,
    pub edited: bool,
    pub deleted: bool,
    /// Reaction → how many people reacted with it.
    pub reactions: BTreeMap<String, u32>,
    pub replies: u32,
    /// Whether the viewer mutes the author. Their posts are left out of the
    /// viewer's timelines; where they are still shown (the author's own
    /// posts, a thread) this marks them.
    pub author_muted: bool,
}

/// A post as acting on it needs it: where it lives and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRef {
    /// The feed shard that holds it.
    pub doc: DocId,
    /// Its key in that document.
    pub key: String,
    pub author: IdentityId,
    pub at_ms: u64,
    pub deleted: bool,
}

/// A post inside a thread, with its depth below the thread's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadPost {
    pub depth: u32,
    pub post: Post,
}

/// One text a post has had, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostVersion {
    pub at_ms: u64,
    pub text: String,
}

/// A person as the viewer knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: IdentityId,
    pub name: Option<String>,
    pub bio: Option<String>,
    /// Whether the viewer follows them.
    pub following: bool,
    /// Whether the viewer blocks them.
    pub blocked: bool,
    /// Whether the viewer mutes them: their posts leave the viewer's
    /// timelines, and nothing else changes.
    pub muted: bool,
    /// The viewer's private labels on them.
    pub labels: Vec<String>,
    /// Whom they follow, as their profile says.
    pub follows: Vec<IdentityId>,
    pub posts: u64,
}
