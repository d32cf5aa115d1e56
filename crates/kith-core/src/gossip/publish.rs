//! Publishing a local change: one route for every change, the topic chosen
//! by [`Channel::of`].

use super::channel::{Channel, Topic};
use super::envelope::GossipChange;
use super::groups::GroupChannels;
use crate::{SignedChange, proto};

/// The topic and the message bytes that carry `change`, signed by the
/// device whose `certificate` this is; `None` for a change that travels by
/// sync alone, or of a group whose key this device does not hold.
///
/// A group's change goes out under the key members hold now: one that
/// starts a new epoch is sealed under the old key, which they can open.
pub fn outgoing(
    change: &SignedChange,
    certificate: &proto::DeviceCertificate,
    channels: &GroupChannels,
) -> Option<(Topic, Vec<u8>)> {
    let channel = Channel::of(&change.doc);
    if channel == Channel::SyncOnly {
        return None;
    }
    let message = GossipChange::encode_parts(change, certificate);
    match channel {
        Channel::Public => Some((Topic::Public, message)),
        Channel::Group(group) => {
            let (topic, data) = channels.seal(&group, &message)?;
            Some((Topic::Named(topic), data))
        }
        Channel::SyncOnly => None,
    }
}
