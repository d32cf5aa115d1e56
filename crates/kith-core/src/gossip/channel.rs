//! Which document travels on which gossip topic (proto/README.md §12): the
//! one rule both for publishing a local change and for what a topic may
//! carry.

use crate::{DocId, DocKind, SpaceId};

/// The public gossip topic: profiles and public feeds.
pub const PUBLIC_TOPIC: &str = "kith/public/v1";

/// Where a document's changes travel live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The public topic.
    Public,
    /// The group's own topic, encrypted under its current epoch key: its
    /// control log and its feeds.
    Group(SpaceId),
    /// No topic: private documents reach the owner's other devices by sync,
    /// which checks who asks.
    SyncOnly,
}

impl Channel {
    /// The channel of `doc`'s changes.
    pub fn of(doc: &DocId) -> Channel {
        match doc.kind {
            DocKind::Profile => Channel::Public,
            DocKind::Feed if doc.space.is_public() => Channel::Public,
            DocKind::Feed | DocKind::GroupControl => Channel::Group(doc.space),
            DocKind::Private => Channel::SyncOnly,
        }
    }
}

/// The topic a gossip message arrived on, as the intake knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// [`PUBLIC_TOPIC`].
    Public,
    /// Any other topic, by name: a group's, if this node holds its key.
    Named(String),
}

impl Topic {
    /// The topic called `name`.
    pub fn from_name(name: &str) -> Topic {
        if name == PUBLIC_TOPIC {
            Topic::Public
        } else {
            Topic::Named(name.to_owned())
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Topic::Public => PUBLIC_TOPIC,
            Topic::Named(n) => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdentityId;

    #[test]
    fn every_kind_has_its_channel() {
        let who = IdentityId([4; 32]);
        let group = SpaceId([5; 32]);
        assert_eq!(Channel::of(&DocId::profile(who)), Channel::Public);
        assert_eq!(
            Channel::of(&DocId::feed(who, SpaceId::PUBLIC, 0)),
            Channel::Public
        );
        assert_eq!(
            Channel::of(&DocId::feed(who, group, 0)),
            Channel::Group(group)
        );
        assert_eq!(
            Channel::of(&DocId::group_control(group)),
            Channel::Group(group)
        );
        assert_eq!(Channel::of(&DocId::private(who)), Channel::SyncOnly);
    }
}
