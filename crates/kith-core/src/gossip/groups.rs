//! Group gossip, as one node takes part in it: which group topics it is on,
//! sealing its group changes under a group's current key, and opening what
//! arrives on a group topic (proto/README.md, "Group gossip").
//!
//! The keys come from the group's control document, where they are sealed to
//! this device; they are opened again only when the group's state changes.
//! A node listens on the topics of the two newest keys it holds, so that a
//! message sent under the previous key while a new epoch spreads still
//! arrives, and publishes under the newest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::group::secrets::{self, KEY_ID_LEN, OpenError};
use crate::group::{EpochKey, GroupState};
use crate::{DeviceKey, IdentityId, SpaceId};

/// Group topics a node is on at most (gossipsub refuses peers with more
/// than 100 topics; the public and probe topics take two).
pub const MAX_GROUP_TOPICS: usize = 64;

/// Keys a node listens with per group: the newest and the one before.
const TOPICS_PER_GROUP: usize = 2;

#[derive(Debug)]
struct Channel {
    /// The state the keys were opened from.
    state: Arc<GroupState>,
    keys: HashMap<[u8; KEY_ID_LEN], EpochKey>,
    current: Option<EpochKey>,
    topics: Vec<String>,
}

/// This node's group channels.
#[derive(Debug, Default)]
pub struct GroupChannels {
    groups: BTreeMap<SpaceId, Channel>,
    topics: HashMap<String, SpaceId>,
}

/// Topics to join and to leave after a refresh.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TopicChanges {
    pub join: Vec<String>,
    pub leave: Vec<String>,
}

impl GroupChannels {
    /// Brings the channels in line with the replica: of `states`, the
    /// groups `me` belongs to, and the keys sealed to `device`. A group
    /// whose state is the very same as before keeps its opened keys.
    pub fn refresh(
        &mut self,
        states: Vec<Arc<GroupState>>,
        me: &IdentityId,
        device: &DeviceKey,
    ) -> TopicChanges {
        let mut next: BTreeMap<SpaceId, Channel> = BTreeMap::new();
        for state in states.into_iter().filter(|s| s.is_member(me)) {
            let channel = match self.groups.remove(&state.id) {
                Some(c) if Arc::ptr_eq(&c.state, &state) => c,
                _ => open_channel(state, device),
            };
            next.insert(channel.state.id, channel);
        }
        let before: Vec<String> = self.topics.keys().cloned().collect();
        self.groups = next;
        self.topics.clear();
        for (group, c) in &self.groups {
            for t in &c.topics {
                if self.topics.len() < MAX_GROUP_TOPICS {
                    self.topics.insert(t.clone(), *group);
                }
            }
        }
        TopicChanges {
            join: self
                .topics
                .keys()
                .filter(|t| !before.contains(t))
                .cloned()
                .collect(),
            leave: before
                .into_iter()
                .filter(|t| !self.topics.contains_key(t))
                .collect(),
        }
    }

    /// The topic and the encrypted message for a change of `group`, if this
    /// device holds a key of the group.
    pub fn seal(&self, group: &SpaceId, plaintext: &[u8]) -> Option<(String, Vec<u8>)> {
        let key = self.groups.get(group)?.current.as_ref()?;
        let data = key.encrypt(group, plaintext).ok()?;
        Some((key.topic(), data))
    }

    /// The group whose topic this is.
    pub fn group_of(&self, topic: &str) -> Option<SpaceId> {
        self.topics.get(topic).copied()
    }

    /// Decrypts a message of `group`.
    pub fn open(&self, group: &SpaceId, data: &[u8]) -> Result<Vec<u8>, OpenError> {
        let channel = self.groups.get(group).ok_or(OpenError::UnknownKey)?;
        secrets::decrypt(group, data, |id| channel.keys.get(id).cloned())
    }
}

fn open_channel(state: Arc<GroupState>, device: &DeviceKey) -> Channel {
    let held = state.keys_for(device);
    let current = held.first().map(|(_, k)| k.clone());
    let topics = held
        .iter()
        .take(TOPICS_PER_GROUP)
        .map(|(_, k)| k.topic())
        .collect();
    Channel {
        keys: held.into_iter().map(|(_, k)| (k.id(), k)).collect(),
        current,
        topics,
        state,
    }
}
