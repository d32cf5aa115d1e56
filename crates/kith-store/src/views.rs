//! What queries return: plain values with printable ids, ready for the CLI
//! and the API to serialise.

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
    /// Whether the viewer mutes the author. Their posts are left out of the
    /// viewer's timelines; where they are still shown (the author's own
    /// posts, a thread) this marks them.
    #[serde(default)]
    pub author_muted: bool,
}

/// A post inside a thread, with its depth below the thread's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadEntry {
    pub depth: u32,
    #[serde(flatten)]
    pub post: PostView,
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
    /// Whether the viewer mutes them: their posts leave the viewer's
    /// timelines, and nothing else changes.
    #[serde(default)]
    pub muted: bool,
    /// The viewer's private labels on them.
    pub labels: Vec<String>,
    /// Whom they follow, as their profile says.
    pub follows: Vec<IdentityId>,
    pub posts: u64,
}
