//! What the indexes changed: a bounded log of the posts, reactions, people
//! and groups that applied changes touched, for the node to turn into live
//! events. It is filled inside the write transaction and kept only once the
//! transaction commits; a consumer that falls behind gets told so instead of
//! the log growing without bound.

use std::collections::VecDeque;

use kith_core::{IdentityId, PostId, SpaceId};

/// Most entries kept between two reads; beyond this the oldest go.
pub const MAX_CHANGED: usize = 4096;

/// One thing an applied change altered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// A post was created, edited or deleted.
    Post {
        id: PostId,
        space: SpaceId,
        author: IdentityId,
        /// This change created it.
        created: bool,
        deleted: bool,
    },
    /// Someone reacted to a post or took a reaction back.
    Reaction { post: PostId },
    /// A profile or the follows and blocks in it.
    Profile { who: IdentityId },
    /// A group's log: members, roles, invites, keys, name.
    Group { group: SpaceId },
}

/// The log.
#[derive(Debug, Default)]
pub(crate) struct ChangedLog {
    entries: VecDeque<Changed>,
    /// Entries were dropped since the last read.
    lost: bool,
}

impl ChangedLog {
    pub fn extend(&mut self, more: Vec<Changed>) {
        for c in more {
            if self.entries.len() >= MAX_CHANGED {
                self.entries.pop_front();
                self.lost = true;
            }
            self.entries.push_back(c);
        }
    }

    /// Everything since the last call, and whether some was lost.
    pub fn take(&mut self) -> (Vec<Changed>, bool) {
        let lost = std::mem::take(&mut self.lost);
        (self.entries.drain(..).collect(), lost)
    }
}
