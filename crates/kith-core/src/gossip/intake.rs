//! Gossip intake: what a node does with a message a peer relayed to it, the
//! rules of proto/README.md §12 in the order a receiver applies them.
//!
//! 1. A group topic's message is opened under the group's epoch key. One
//!    under a key this device does not hold is ignored (an epoch not yet
//!    arrived, or one it was removed before); one that does not open under
//!    the key it names is the relay's offence.
//! 2. The envelope is read ([`GossipChange::decode`]): its length, fields,
//!    and that the certificate is the signer's.
//! 3. The certificate's two signatures are checked, once per certificate.
//! 4. The document must travel on this topic ([`Channel::of`]): a group's
//!    documents on its own topic, profiles and public feeds on the public
//!    topic, private documents on none. Every node applies the same rule,
//!    so no honest node forwards a misplaced change, and whoever relays one
//!    is at fault.
//! 5. A change this node keeps (its own and followed identities'
//!    documents, profiles of peers it is connected to, its groups') is
//!    verified and stored; any other change is only verified, so that the
//!    mesh carries valid changes, and nothing of it is kept.
//! 6. Blame: a change that fails verification is the relay's offence. An
//!    equivocation or a group's refusal is not, unless the relay signed it:
//!    an honest relay may hold one of two conflicting versions, or a post
//!    whose author's admission has not reached this node yet.

use std::collections::{BTreeSet, HashMap};

use super::channel::{Channel, Topic};
use super::envelope::{EnvelopeError, GossipChange};
use super::groups::{GroupChannels, TopicChanges};
use crate::group::secrets::OpenError;
use crate::sync::Replica;
use crate::{CertError, DeviceCert, DeviceId, DocKind, IdentityId};

/// Verified certificates remembered; past this the memory starts afresh (a
/// node hears from far fewer devices; an attacker cycling through
/// certificates only costs itself checks).
pub const VERIFIED_CERTS_KEPT: usize = 4096;

/// What gossipsub is told about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it.
    Accept,
    /// Invalid: do not forward it, and lower the relay's gossipsub score.
    Reject,
    /// Neither forwarded nor held against the relay.
    Ignore,
}

/// What a relay did wrong. Each is counted against it by the sync engine
/// (proto/README.md §13); gossipsub lowers its score too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Offence {
    #[error("relayed a group message that does not open: {0}")]
    Sealed(OpenError),
    #[error("relayed a bad envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("relayed a change with a certificate that does not verify: {0}")]
    Certificate(CertError),
    #[error("relayed a change of a document that travels on {channel:?} on {topic}")]
    WrongTopic { channel: Channel, topic: String },
    #[error("relayed an invalid change: {0}")]
    Invalid(String),
}

/// The intake's decision about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Counted against the relay, if the message was its fault.
    pub offence: Option<Offence>,
    /// The change was stored but waits for earlier ones: the node should
    /// compare versions with the relay, which has them.
    pub dependencies_missing: bool,
}

impl Decision {
    fn accept() -> Decision {
        Decision {
            verdict: Verdict::Accept,
            offence: None,
            dependencies_missing: false,
        }
    }
    fn ignore() -> Decision {
        Decision {
            verdict: Verdict::Ignore,
            offence: None,
            dependencies_missing: false,
        }
    }
    fn reject(offence: impl Into<Offence>) -> Decision {
        Decision {
            verdict: Verdict::Reject,
            offence: Some(offence.into()),
            dependencies_missing: false,
        }
    }
}

/// The intake's memory between messages.
#[derive(Debug, Default)]
pub struct Intake {
    /// Certificates whose signatures were checked (bounded).
    certificates: HashMap<DeviceId, DeviceCert>,
    /// Whose documents this node keeps, read from the replica once and
    /// again after [`Intake::interests_changed`].
    interests: Option<BTreeSet<IdentityId>>,
    channels: GroupChannels,
}

impl Intake {
    /// Decides about `data`, relayed by `relay` on `topic`. `met` says
    /// whether an identity is that of a connected peer.
    pub fn receive(
        &mut self,
        relay: DeviceId,
        topic: &Topic,
        data: &[u8],
        met: impl Fn(&IdentityId) -> bool,
        replica: &mut impl Replica,
    ) -> Decision {
        let (group, opened);
        let plain = match topic {
            Topic::Public => {
                group = None;
                data
            }
            Topic::Named(name) => {
                // A topic this node just left, or never joined.
                let Some(g) = self.channels.group_of(name) else {
                    return Decision::ignore();
                };
                group = Some(g);
                opened = match self.channels.open(&g, data) {
                    Ok(plain) => plain,
                    Err(OpenError::UnknownKey) => return Decision::ignore(),
                    Err(e) => return Decision::reject(Offence::Sealed(e)),
                };
                &opened
            }
        };
        let GossipChange {
            change,
            certificate,
        } = match GossipChange::decode(plain) {
            Ok(g) => g,
            Err(e) => return Decision::reject(e),
        };
        let certificate = match self.checked(certificate) {
            Ok(c) => c,
            Err(e) => return Decision::reject(Offence::Certificate(e)),
        };
        let channel = Channel::of(&change.doc);
        let expected = group.map_or(Channel::Public, Channel::Group);
        if channel != expected {
            return Decision::reject(Offence::WrongTopic {
                channel,
                topic: topic.name().to_owned(),
            });
        }
        let owner = change.doc.owner;
        let kept = group.is_some()
            || self.keeps(&owner, replica)
            || (change.doc.kind == DocKind::Profile && met(&owner));
        if !kept {
            return match replica.check(&certificate, change) {
                Ok(()) => Decision::accept(),
                Err(reason) => Decision::reject(Offence::Invalid(reason)),
            };
        }
        let signer = change.device;
        let ingested = match replica.ingest(vec![certificate], vec![change]) {
            Ok(i) => i,
            // This node's own failure: no verdict on the message.
            Err(_) => return Decision::ignore(),
        };
        match ingested.refused.first() {
            Some(r) if !r.blames_relay && signer != relay => Decision::ignore(),
            Some(r) => Decision::reject(Offence::Invalid(r.reason.clone())),
            None => Decision {
                dependencies_missing: ingested.pending > 0,
                ..Decision::accept()
            },
        }
    }

    /// The certificate, verified unless the very same one was before: every
    /// message carries its signer's certificate, and checking its two
    /// signatures each time would double the cost of a message.
    fn checked(&mut self, cert: DeviceCert) -> Result<DeviceCert, CertError> {
        if self.certificates.get(&cert.device) == Some(&cert) {
            return Ok(cert);
        }
        cert.verify()?;
        if self.certificates.len() >= VERIFIED_CERTS_KEPT {
            self.certificates.clear();
        }
        self.certificates.insert(cert.device, cert.clone());
        Ok(cert)
    }

    /// Whether this node keeps `owner`'s documents. A failed read is not
    /// remembered, and keeps nothing.
    fn keeps(&mut self, owner: &IdentityId, replica: &impl Replica) -> bool {
        if self.interests.is_none() {
            self.interests = replica.interests().ok();
        }
        self.interests.as_ref().is_some_and(|s| s.contains(owner))
    }

    /// Whom this node follows changed: read it again at the next message.
    pub fn interests_changed(&mut self) {
        self.interests = None;
    }

    /// Brings the group topics in line with the replica's groups and keys.
    pub fn refresh_groups(&mut self, replica: &impl Replica) -> TopicChanges {
        let Ok(states) = replica.group_states() else {
            return TopicChanges::default();
        };
        let me = replica.certificate().identity;
        self.channels.refresh(states, &me, replica.device_key())
    }

    /// The group channels, for publishing.
    pub fn channels(&self) -> &GroupChannels {
        &self.channels
    }
}
