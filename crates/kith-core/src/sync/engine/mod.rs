//! The sync state machine. It owns no sockets and no clock: the node feeds it
//! [`Input`]s with the current time and a [`Replica`] (the local store), and
//! carries out the [`Output`]s it returns.
//!
//! Message flow with one peer (both sides run the same flow):
//! - on connect: `Hello` → the peer's device certificate (its identity);
//! - then `Versions { owners: my interests, profiles: peers I met }` → the
//!   peer's documents of those identities with their version vectors;
//! - for each document where the peer is ahead: `Changes { doc, have }` →
//!   the missing changes, oldest first, a bounded number of bytes at a time,
//!   repeated while the peer says there are more;
//! - again every [`EngineConfig::resync_ms`], when interests change, and
//!   when a gossiped change from that peer waits for dependencies.
//!
//! Versions requests also name the groups this node belongs to, whose
//! documents only members receive. To join a group ([`Input::Join`]) the
//! engine asks each identified peer in turn to admit it (`Join`), until one
//! does; each answer is reported ([`Output::JoinAnswer`]).
//!
//! A peer whose responses carry changes the replica refuses, or that answer
//! out of turn, collects offences; past [`EngineConfig::max_offences`] the
//! engine asks for a disconnect and ignores the peer for a while.

mod answer;
mod fetch;
mod gossip;
mod join;
mod peer;

use std::collections::{BTreeMap, BTreeSet};

pub use join::{JOIN_RETRY_MS, MAX_JOINING};
pub use peer::PeerProgress;

use super::{Request, Response};
use crate::gossip::{Intake, Topic, Verdict};
use crate::sync::Replica;
use crate::{DeviceId, IdentityId, SignedChange, SpaceId};
use join::Joining;
use peer::{Asked, Peer};

/// Tunables, with the defaults a node uses.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Requests in flight to one peer at most.
    pub max_in_flight: usize,
    /// Change bytes asked for in one `Changes` request.
    pub batch_bytes: u32,
    /// How often to compare versions with each peer even without a reason.
    pub resync_ms: u64,
    /// Least time between two versions requests to one peer.
    pub min_versions_gap_ms: u64,
    /// Offences tolerated before disconnecting a peer.
    pub max_offences: u32,
    /// How long a disconnected offender is ignored.
    pub ban_ms: u64,
    /// Most peers tracked at once; further connections are refused.
    pub max_peers: usize,
    /// Most documents queued for fetching from one peer.
    pub max_queue: usize,
    /// A request not answered (nor reported failed) in this time is given up.
    pub request_timeout_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_in_flight: 4,
            batch_bytes: 2 * 1024 * 1024,
            resync_ms: 10_000,
            min_versions_gap_ms: 500,
            max_offences: 3,
            ban_ms: 10 * 60_000,
            max_peers: 256,
            max_queue: 100_000,
            request_timeout_ms: 60_000,
        }
    }
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    PeerConnected {
        peer: DeviceId,
    },
    PeerDisconnected {
        peer: DeviceId,
    },
    /// A peer asks something; answer with [`Output::Respond`] carrying `id`.
    RequestReceived {
        peer: DeviceId,
        id: u64,
        request: Request,
    },
    /// A peer answered our request `id`.
    ResponseReceived {
        peer: DeviceId,
        id: u64,
        response: Response,
    },
    /// Our request `id` failed (timeout, connection closed, bad bytes).
    RequestFailed {
        peer: DeviceId,
        id: u64,
    },
    /// A message arrived on a gossip topic, relayed by `relay`; answered
    /// by one [`Output::Validate`] carrying `message`.
    GossipReceived {
        relay: DeviceId,
        topic: Topic,
        message: MessageRef,
        data: Vec<u8>,
    },
    /// This device made changes: gossip each where its document travels.
    Publish(Vec<SignedChange>),
    /// A peer broke the protocol outside the engine's sight (bytes that are
    /// not a sync message).
    Offence {
        peer: DeviceId,
        reason: String,
    },
    /// The replica's groups or their keys changed: join and leave topics.
    GroupsChanged,
    /// The set of followed identities or of groups changed.
    InterestsChanged,
    /// Join `group`: ask peers to admit this node with an invite's proof.
    Join {
        group: SpaceId,
        invite: [u8; 32],
        proof: [u8; 64],
    },
    /// Time passed.
    Tick,
}

/// A request the engine sent, as returned in [`Output::Send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub peer: DeviceId,
    pub id: u64,
    pub request: Request,
}

/// Something the node must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(Sent),
    Respond {
        peer: DeviceId,
        id: u64,
        response: Response,
    },
    Disconnect {
        peer: DeviceId,
        reason: String,
    },
    /// A peer proved which identity it acts for.
    PeerIdentified {
        peer: DeviceId,
        identity: IdentityId,
    },
    /// A peer answered a join request: admitted, or refused.
    JoinAnswer {
        group: SpaceId,
        peer: DeviceId,
        answer: Result<(), super::Refusal>,
    },
    /// Tell gossipsub what to do with a message.
    Validate {
        message: MessageRef,
        relay: DeviceId,
        verdict: Verdict,
    },
    /// Publish `data` on `topic`.
    Gossip {
        topic: Topic,
        data: Vec<u8>,
    },
    /// Join a group's topic.
    Subscribe(String),
    /// Leave a group's topic.
    Unsubscribe(String),
}

/// The transport's id of a gossip message, handed back with its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageRef(pub Vec<u8>);

/// The sync engine of one node.
#[derive(Debug, Default)]
pub struct Engine {
    config: EngineConfig,
    peers: BTreeMap<DeviceId, Peer>,
    banned: BTreeMap<DeviceId, u64>,
    /// Identities banned with their device: an identity can certify any
    /// number of devices, so a new one must not start with a clean slate.
    banned_identities: BTreeMap<IdentityId, u64>,
    next_id: u64,
    joining: BTreeMap<SpaceId, Joining>,
    /// Groups a peer admitted this node to, until the replica's own copy
    /// of the group's log says so too.
    joined: BTreeSet<SpaceId>,
    /// What to do with gossiped messages.
    intake: Intake,
    /// This device's certificate as every gossiped change carries it,
    /// encoded once.
    own_certificate: Option<crate::proto::DeviceCertificate>,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine {
            config,
            ..Engine::default()
        }
    }

    /// Connected peers and the identities they proved.
    pub fn peers(&self) -> impl Iterator<Item = (DeviceId, Option<IdentityId>)> + '_ {
        self.peers.iter().map(|(d, p)| (*d, p.identity))
    }

    /// Catch-up progress per peer.
    pub fn progress(&self) -> impl Iterator<Item = (DeviceId, PeerProgress)> + '_ {
        self.peers.iter().map(|(d, p)| {
            let mut pr = p.progress;
            pr.docs_left = p.queue.len()
                + p.in_flight
                    .values()
                    .filter(|a| matches!(a, Asked::Changes(_)))
                    .count();
            (*d, pr)
        })
    }

    /// Whether documents are still being fetched from any peer.
    pub fn is_syncing(&self) -> bool {
        self.peers.values().any(|p| {
            !p.queue.is_empty() || p.in_flight.values().any(|a| matches!(a, Asked::Changes(_)))
        })
    }

    /// Handles one input at time `now_ms`.
    pub fn handle(&mut self, input: Input, now_ms: u64, replica: &mut impl Replica) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::PeerConnected { peer } => self.connected(peer, now_ms, &mut out),
            Input::PeerDisconnected { peer } => {
                self.peers.remove(&peer);
            }
            Input::RequestReceived { peer, id, request } => {
                if request == Request::Hello
                    && let Some(p) = self.peers.get_mut(&peer)
                {
                    p.greeted = true;
                }
                let response = self.answer(peer, request, replica);
                out.push(Output::Respond { peer, id, response });
            }
            Input::ResponseReceived { peer, id, response } => {
                self.response(peer, id, response, now_ms, replica, &mut out)
            }
            Input::RequestFailed { peer, id } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.failed(id);
                }
            }
            Input::GossipReceived {
                relay,
                topic,
                message,
                data,
            } => self.gossip_received(relay, &topic, message, &data, now_ms, replica, &mut out),
            Input::Publish(changes) => self.publish(&changes, replica, &mut out),
            Input::GroupsChanged => self.refresh_groups(replica, &mut out),
            Input::Offence { peer, reason } => self.offence(peer, reason, now_ms, &mut out),
            Input::InterestsChanged => {
                self.intake.interests_changed();
                for p in self.peers.values_mut() {
                    p.versions_wanted = true;
                }
            }
            Input::Join {
                group,
                invite,
                proof,
            } => {
                if self.joining.len() < MAX_JOINING || self.joining.contains_key(&group) {
                    self.joining.insert(
                        group,
                        Joining {
                            invite,
                            proof,
                            asked: BTreeSet::new(),
                            retry_at: BTreeMap::new(),
                        },
                    );
                }
            }
            Input::Tick => {
                self.refresh_groups(replica, &mut out);
                self.banned.retain(|_, until| *until > now_ms);
                self.banned_identities.retain(|_, until| *until > now_ms);
                let timeout = self.config.request_timeout_ms;
                for p in self.peers.values_mut() {
                    let expired: Vec<u64> = p
                        .sent_at
                        .iter()
                        .filter(|(_, sent)| now_ms.saturating_sub(**sent) >= timeout)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in expired {
                        p.failed(id);
                    }
                    let due = p
                        .last_versions_ms
                        .is_none_or(|t| now_ms.saturating_sub(t) >= self.config.resync_ms);
                    if due && p.identity.is_some() {
                        p.versions_wanted = true;
                    }
                }
            }
        }
        self.pump(now_ms, replica, &mut out);
        out
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn response(
        &mut self,
        peer: DeviceId,
        id: u64,
        response: Response,
        now_ms: u64,
        replica: &mut impl Replica,
        out: &mut Vec<Output>,
    ) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.sent_at.remove(&id);
        let Some(asked) = p.in_flight.remove(&id) else {
            return self.offence(
                peer,
                "answered a request it was never sent".into(),
                now_ms,
                out,
            );
        };
        match (asked, response) {
            (Asked::Hello, Response::Hello(cert)) => {
                self.hello_answered(peer, cert, now_ms, replica, out)
            }
            (Asked::Hello, Response::Refused(_)) => {
                // Every peer must say who it is: a peer that will not is
                // neither served by identity nor held to account by it.
                self.ban(
                    peer,
                    now_ms + self.config.ban_ms,
                    "refused to say who it is".into(),
                    out,
                );
            }
            (Asked::Join(group), answer @ (Response::Joined | Response::Refused(_))) => {
                self.join_answered(peer, group, answer, now_ms, out)
            }
            (Asked::Versions, Response::Versions(docs)) => {
                self.versions_answered(peer, docs, replica)
            }
            (Asked::Changes(doc), Response::Changes(batch)) => {
                self.changes_answered(peer, doc, batch, now_ms, replica, out)
            }
            (asked, Response::Refused(_)) => {
                // Not an offence (the peer may lack the document or be busy), but
                // forget the fetch so a later versions exchange can queue it again.
                if let (Asked::Changes(doc), Some(p)) = (asked, self.peers.get_mut(&peer)) {
                    p.queued.remove(&doc);
                }
            }
            (asked, _) => {
                if let (Asked::Changes(doc), Some(p)) = (asked, self.peers.get_mut(&peer)) {
                    p.queued.remove(&doc);
                }
                self.offence(
                    peer,
                    "answered with the wrong kind of response".into(),
                    now_ms,
                    out,
                );
            }
        }
    }
}
