//! Reads, answered from the indexes (DESIGN.md decision 5). Post texts are
//! read from the stored change that the index points at.
//!
//! - [`timelines`]: feeds and the home timeline;
//! - [`posts`]: one post, its thread and its history;
//! - [`people`]: people as a viewer knows them;
//! - `visibility`: the group posts a read hides;
//! - `reader`: the tables of one read transaction;
//! - `dump`: the indexes as text.

mod dump;
mod people;
mod posts;
mod reader;
mod timelines;
mod visibility;

use reader::{Reader, pairs_from};
use visibility::Removals;

use kith_core::{IdentityId, PostId, SpaceId};

/// Which posts `Store::feed` returns.
#[derive(Debug, Clone)]
pub struct FeedQuery {
    pub space: SpaceId,
    /// Only this author's posts.
    pub author: Option<IdentityId>,
    /// Leave out authors this person blocks, and, unless `author` is
    /// given, those this person mutes (whose posts are then marked).
    pub viewer: Option<IdentityId>,
    /// Only posts older than this one (the previous page's last post).
    pub before: Option<(u64, PostId)>,
    pub limit: usize,
}

impl Default for FeedQuery {
    fn default() -> Self {
        FeedQuery {
            space: SpaceId::PUBLIC,
            author: None,
            viewer: None,
            before: None,
            limit: 20,
        }
    }
}

/// Most replies a thread view walks, so a huge thread cannot make one read unbounded.
pub const MAX_THREAD_POSTS: usize = 10_000;
