//! Live events for the API's event stream (`GET /api/events`): what the
//! store's indexes changed, peers coming and going, sync progress.
//!
//! The service thread publishes on a bounded broadcast channel; a stream
//! that falls behind loses the oldest events and is sent `resync`, which
//! tells the app to fetch what it shows afresh. Nothing queues without bound.

use kith_core::{DeviceId, IdentityId, PostId, SpaceId};
use kith_store::Changed;
use serde::Serialize;

/// Events kept for streams that are behind; past this they get `resync`.
pub const EVENT_BUFFER: usize = 1024;

/// One live event, as JSON in the `data` of a server-sent event whose
/// `event` is the `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A new post (or reply), public or in a group.
    Post {
        id: PostId,
        space: SpaceId,
        author: IdentityId,
    },
    Edit {
        id: PostId,
        space: SpaceId,
    },
    Delete {
        id: PostId,
        space: SpaceId,
    },
    Reaction {
        post: PostId,
    },
    /// A profile, or its follows and blocks.
    Profile {
        who: IdentityId,
    },
    /// A group's members, roles, invites or name.
    Membership {
        group: SpaceId,
    },
    PeerUp {
        device: DeviceId,
        identity: Option<IdentityId>,
    },
    PeerDown {
        device: DeviceId,
    },
    /// Catch-up progress, summed over peers.
    Sync {
        syncing: bool,
        expected: u64,
        received: u64,
    },
    /// Events were lost: fetch what is shown afresh.
    Resync,
}

impl LiveEvent {
    /// The event's name in the stream.
    pub fn name(&self) -> &'static str {
        match self {
            LiveEvent::Post { .. } => "post",
            LiveEvent::Edit { .. } => "edit",
            LiveEvent::Delete { .. } => "delete",
            LiveEvent::Reaction { .. } => "reaction",
            LiveEvent::Profile { .. } => "profile",
            LiveEvent::Membership { .. } => "membership",
            LiveEvent::PeerUp { .. } => "peer_up",
            LiveEvent::PeerDown { .. } => "peer_down",
            LiveEvent::Sync { .. } => "sync",
            LiveEvent::Resync => "resync",
        }
    }
}

impl From<Changed> for LiveEvent {
    fn from(c: Changed) -> LiveEvent {
        match c {
            Changed::Post {
                id,
                space,
                deleted: true,
                ..
            } => LiveEvent::Delete { id, space },
            Changed::Post {
                id,
                space,
                author,
                created: true,
                ..
            } => LiveEvent::Post { id, space, author },
            Changed::Post { id, space, .. } => LiveEvent::Edit { id, space },
            Changed::Reaction { post } => LiveEvent::Reaction { post },
            Changed::Profile { who } => LiveEvent::Profile { who },
            Changed::Group { group } => LiveEvent::Membership { group },
        }
    }
}
