//! What the control API shows of posts and people: the JSON shapes that the
//! CLI, the web app and scripts read. They are made from the store's
//! records (`kith_store::{Post, Person, …}`) at this boundary, so the store
//! can change without changing what a program reading the API sees.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use kith_core::{IdentityId, PostId, SpaceId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serialises milliseconds since the epoch as an RFC 3339 timestamp.
pub fn rfc3339<S: Serializer>(ms: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(
        UNIX_EPOCH + Duration::from_millis(*ms),
    ))
}

/// Reads an RFC 3339 timestamp back into milliseconds since the epoch.
pub fn from_rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    let t = humantime::parse_rfc3339(&s).map_err(serde::de::Error::custom)?;
    Ok(t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64))
}

/// One post as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostView {
    pub id: PostId,
    /// Where it was posted: `public`, or the group's id.
    pub space: SpaceId,
    pub author: IdentityId,
    pub author_name: Option<String>,
    /// `None` once the post is deleted.
    pub text: Option<String>,
    #[serde(
        rename = "created_at",
        serialize_with = "rfc3339",
        deserialize_with = "from_rfc3339"
    )]
    pub created_at_ms: u64,
    pub reply_to: Option<PostId>,
    pub edited: bool,
    pub deleted: bool,
    /// Reaction → how many people reacted with it.
    pub reactions: BTreeMap<String, u32>,
    pub replies: u32,
    /// Whether the viewer mutes the author (see `kith_store::Post`).
    #[serde(default)]
    pub author_muted: bool,
}

impl From<kith_store::Post> for PostView {
    fn from(p: kith_store::Post) -> PostView {
        PostView {
            id: p.id,
            space: p.space,
            author: p.author,
            author_name: p.author_name,
            text: p.text,
            created_at_ms: p.created_at_ms,
            reply_to: p.reply_to,
            edited: p.edited,
            deleted: p.deleted,
            reactions: p.reactions,
            replies: p.replies,
            author_muted: p.author_muted,
        }
    }
}

/// A post inside a thread, with its depth below the thread's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadEntry {
    pub depth: u32,
    #[serde(flatten)]
    pub post: PostView,
}

impl From<kith_store::ThreadPost> for ThreadEntry {
    fn from(t: kith_store::ThreadPost) -> ThreadEntry {
        ThreadEntry {
            depth: t.depth,
            post: t.post.into(),
        }
    }
}

/// One text a post has had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    #[serde(
        rename = "at",
        serialize_with = "rfc3339",
        deserialize_with = "from_rfc3339"
    )]
    pub at_ms: u64,
    pub text: String,
}

impl From<kith_store::PostVersion> for Version {
    fn from(v: kith_store::PostVersion) -> Version {
        Version {
            at_ms: v.at_ms,
            text: v.text,
        }
    }
}

/// A person as the viewer knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonView {
    pub id: IdentityId,
    pub name: Option<String>,
    pub bio: Option<String>,
    /// Whether the viewer follows them.
    pub following: bool,
    /// Whether the viewer blocks them.
    pub blocked: bool,
    /// Whether the viewer mutes them.
    #[serde(default)]
    pub muted: bool,
    /// The viewer's private labels on them.
    pub labels: Vec<String>,
    /// Whom they follow, as their profile says.
    pub follows: Vec<IdentityId>,
    pub posts: u64,
}

impl PersonView {
    /// Someone of whom nothing is stored yet: no profile, no posts, no
    /// relationship.
    pub fn unknown(id: IdentityId) -> PersonView {
        PersonView {
            id,
            name: None,
            bio: None,
            following: false,
            blocked: false,
            muted: false,
            labels: Vec::new(),
            follows: Vec::new(),
            posts: 0,
        }
    }
}

impl From<kith_store::Person> for PersonView {
    fn from(p: kith_store::Person) -> PersonView {
        PersonView {
            id: p.id,
            name: p.name,
            bio: p.bio,
            following: p.following,
            blocked: p.blocked,
            muted: p.muted,
            labels: p.labels,
            follows: p.follows,
            posts: p.posts,
        }
    }
}

/// Converts each of a query's records into its view.
pub(crate) fn all<R, V: From<R>>(records: Vec<R>) -> Vec<V> {
    records.into_iter().map(V::from).collect()
}
