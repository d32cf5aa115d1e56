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

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{ChangeBatch, Request, Response, VersionVector, missing};
use crate::{DeviceCert, DeviceId, DocId, DocKind, IdentityId, SignedChange, SpaceId};

/// Most groups being joined at once.
pub const MAX_JOINING: usize = 16;

/// A member's refusal of a join request from a peer whose certificate it
/// has not yet had (its hello request is still under way): not an answer
/// about the invite, and the joiner asks again.
pub const UNIDENTIFIED: &str = "say who you are (hello) first";

/// How long a joiner waits before asking a member again that did not know
/// it yet.
pub const JOIN_RETRY_MS: u64 = 250;

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

/// A failure inside the replica; the engine logs it and goes on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ReplicaError(pub String);

/// What the engine needs from the local store.
pub trait Replica {
    /// This device's certificate, handed to peers that say hello.
    fn certificate(&self) -> DeviceCert;
    /// Identities whose documents this node wants: itself and whom it follows.
    fn interests(&self) -> Result<BTreeSet<IdentityId>, ReplicaError>;
    /// Groups this node's identity is a member of.
    fn groups(&self) -> Result<BTreeSet<SpaceId>, ReplicaError>;
    /// The identity that certified `device`, if known.
    fn identity_of(&self, device: &DeviceId) -> Result<Option<IdentityId>, ReplicaError>;
    /// Records a verified certificate.
    fn add_certificate(&mut self, cert: &DeviceCert) -> Result<(), ReplicaError>;
    /// Version vectors of the documents of `owners` (and the profiles of
    /// `profiles`) that `asker` may receive.
    fn versions(
        &self,
        owners: &BTreeSet<IdentityId>,
        profiles: &BTreeSet<IdentityId>,
        groups: &BTreeSet<SpaceId>,
        asker: Option<IdentityId>,
    ) -> Result<Vec<(DocId, VersionVector)>, ReplicaError>;
    /// Admits `joiner`, asking from `device`, to `group` if `proof` shows
    /// it holds the secret of an open invite: records the join; or says why
    /// not.
    fn admit(
        &mut self,
        group: &SpaceId,
        invite: &[u8; 32],
        proof: &[u8; 64],
        joiner: IdentityId,
        device: DeviceId,
    ) -> Result<(), String>;
    /// This replica's version vector of `doc`.
    fn version(&self, doc: &DocId) -> Result<VersionVector, ReplicaError>;
    /// The changes of `doc` beyond `have` that `asker` may receive.
    fn changes_since(
        &self,
        doc: &DocId,
        have: &VersionVector,
        asker: Option<IdentityId>,
        max_bytes: usize,
    ) -> Result<ChangeBatch, ReplicaError>;
    /// Verifies and applies changes, keeping the certificates of devices
    /// whose changes pass; returns how many changes were refused.
    fn ingest(
        &mut self,
        certificates: Vec<DeviceCert>,
        changes: Vec<SignedChange>,
    ) -> Result<usize, ReplicaError>;
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
    /// A gossiped change from `peer` waits for dependencies: sync with it.
    DependenciesMissing {
        peer: DeviceId,
    },
    /// A peer relayed a change that failed verification.
    Offence {
        peer: DeviceId,
        reason: String,
    },
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
    /// A peer answered a join request: admitted, or refused with a reason.
    JoinAnswer {
        group: SpaceId,
        peer: DeviceId,
        answer: Result<(), String>,
    },
}

/// Catch-up progress with one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerProgress {
    /// Changes the peer had that we lacked when versions were last compared.
    pub expected: u64,
    /// Changes received from the peer since then.
    pub received: u64,
    /// Documents still to fetch, including those in flight.
    pub docs_left: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    Hello,
    Versions,
    Changes(DocId),
    Join(SpaceId),
}

/// A group being joined: the proof, and the peers already asked.
#[derive(Debug, Clone)]
struct Joining {
    invite: [u8; 32],
    proof: [u8; 64],
    asked: BTreeSet<DeviceId>,
    /// Peers that did not know us yet, and when to ask them again.
    retry_at: BTreeMap<DeviceId, u64>,
}

#[derive(Debug, Default)]
struct Peer {
    identity: Option<IdentityId>,
    in_flight: BTreeMap<u64, Asked>,
    /// When each request in flight was sent, to expire those never answered.
    sent_at: BTreeMap<u64, u64>,
    queue: VecDeque<DocId>,
    queued: BTreeSet<DocId>,
    last_versions_ms: Option<u64>,
    hello_wanted: bool,
    /// The peer asked for our certificate and was answered: it knows, or
    /// is about to know, who we are. A join request waits for this.
    greeted: bool,
    versions_wanted: bool,
    offences: u32,
    progress: PeerProgress,
}

impl Peer {
    /// Request `id` will never be answered: arrange to try again.
    fn failed(&mut self, id: u64) {
        self.sent_at.remove(&id);
        match self.in_flight.remove(&id) {
            Some(Asked::Hello) => self.hello_wanted = true,
            Some(Asked::Versions) => self.versions_wanted = true,
            Some(Asked::Changes(doc)) => {
                // Compare versions again and go on from wherever we got to.
                self.queued.remove(&doc);
                self.versions_wanted = true;
            }
            // The peer counts as asked: it could not be reached.
            Some(Asked::Join(_)) | None => {}
        }
    }
}

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
            Input::DependenciesMissing { peer } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.versions_wanted = true;
                }
            }
            Input::Offence { peer, reason } => self.offence(peer, reason, now_ms, &mut out),
            Input::InterestsChanged => {
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

    fn connected(&mut self, peer: DeviceId, now_ms: u64, out: &mut Vec<Output>) {
        if self.banned.get(&peer).is_some_and(|until| *until > now_ms) {
            out.push(Output::Disconnect {
                peer,
                reason: "banned for earlier offences".into(),
            });
            return;
        }
        if self.peers.contains_key(&peer) {
            return;
        }
        if self.peers.len() >= self.config.max_peers {
            out.push(Output::Disconnect {
                peer,
                reason: "too many peers".into(),
            });
            return;
        }
        let mut p = Peer::default();
        let id = self.next_id();
        p.in_flight.insert(id, Asked::Hello);
        p.sent_at.insert(id, now_ms);
        self.peers.insert(peer, p);
        out.push(Output::Send(Sent {
            peer,
            id,
            request: Request::Hello,
        }));
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Answers a peer's request from the replica.
    fn answer(&mut self, peer: DeviceId, request: Request, replica: &mut impl Replica) -> Response {
        let asker = replica.identity_of(&peer).ok().flatten();
        let result = match request {
            Request::Hello => return Response::Hello(replica.certificate()),
            Request::Join {
                group,
                invite,
                proof,
            } => {
                let Some(joiner) = asker else {
                    return Response::Refused(UNIDENTIFIED.into());
                };
                return match replica.admit(&group, &invite, &proof, joiner, peer) {
                    Ok(()) => Response::Joined,
                    Err(why) => Response::Refused(why),
                };
            }
            Request::Versions {
                owners,
                profiles,
                groups,
            } => replica
                .versions(
                    &owners.into_iter().collect(),
                    &profiles.into_iter().collect(),
                    &groups.into_iter().collect(),
                    asker,
                )
                .map(Response::Versions),
            Request::Changes {
                doc,
                have,
                max_bytes,
            } => {
                let max = (max_bytes as usize)
                    .min(self.config.batch_bytes as usize)
                    .max(1);
                replica
                    .changes_since(&doc, &have, asker, max)
                    .map(Response::Changes)
            }
        };
        result.unwrap_or_else(|e| Response::Refused(e.0))
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
                if cert.device != peer {
                    return self.offence(
                        peer,
                        "hello certificate names another device".into(),
                        now_ms,
                        out,
                    );
                }
                if self
                    .banned_identities
                    .get(&cert.identity)
                    .is_some_and(|until| *until > now_ms)
                {
                    return self.ban(
                        peer,
                        now_ms + self.config.ban_ms,
                        "a device of an identity banned for earlier offences".into(),
                        out,
                    );
                }
                if replica.add_certificate(&cert).is_err() {
                    return self.offence(
                        peer,
                        "hello with a certificate that does not verify".into(),
                        now_ms,
                        out,
                    );
                }
                p.identity = Some(cert.identity);
                p.versions_wanted = true;
                out.push(Output::PeerIdentified {
                    peer,
                    identity: cert.identity,
                });
            }
            (Asked::Join(group), Response::Joined) => {
                self.joining.remove(&group);
                self.joined.insert(group);
                for q in self.peers.values_mut() {
                    q.versions_wanted = true;
                }
                out.push(Output::JoinAnswer {
                    group,
                    peer,
                    answer: Ok(()),
                });
            }
            (Asked::Join(group), Response::Refused(why)) if why == UNIDENTIFIED => {
                if let Some(j) = self.joining.get_mut(&group) {
                    j.asked.remove(&peer);
                    j.retry_at.insert(peer, now_ms + JOIN_RETRY_MS);
                }
            }
            (Asked::Join(group), Response::Refused(why)) => {
                out.push(Output::JoinAnswer {
                    group,
                    peer,
                    answer: Err(why),
                });
            }
            (Asked::Versions, Response::Versions(docs)) => {
                let Ok(interests) = replica.interests() else {
                    return;
                };
                let Ok(mut groups) = replica.groups() else {
                    return;
                };
                self.joined.retain(|g| !groups.contains(g));
                groups.extend(self.joined.iter().copied());
                p.progress = PeerProgress::default();
                for (doc, theirs) in docs {
                    // Followed identities' public documents, the peer's own
                    // profile (people met) and the documents of our groups;
                    // nothing else, whatever the peer offers.
                    let wanted = match doc.kind {
                        DocKind::GroupControl => groups.contains(&doc.space),
                        DocKind::Feed if !doc.space.is_public() => groups.contains(&doc.space),
                        _ => {
                            interests.contains(&doc.owner)
                                || (doc.kind == DocKind::Profile && Some(doc.owner) == p.identity)
                        }
                    };
                    if !wanted || p.queued.contains(&doc) || p.queue.len() >= self.config.max_queue
                    {
                        continue;
                    }
                    let Ok(ours) = replica.version(&doc) else {
                        continue;
                    };
                    let lacking = missing(&ours, &theirs);
                    if lacking > 0 {
                        p.progress.expected += lacking;
                        // A group's log first: it says whose posts count.
                        if doc.kind == DocKind::GroupControl {
                            p.queue.push_front(doc);
                        } else {
                            p.queue.push_back(doc);
                        }
                        p.queued.insert(doc);
                    }
                }
            }
            (Asked::Changes(doc), Response::Changes(batch)) => {
                if batch.changes.iter().any(|c| c.doc != doc) {
                    p.queued.remove(&doc);
                    return self.offence(
                        peer,
                        "sent changes of a document it was not asked for".into(),
                        now_ms,
                        out,
                    );
                }
                let n = batch.changes.len() as u64;
                let refused = match replica.ingest(batch.certificates, batch.changes) {
                    Ok(refused) => refused,
                    Err(_) => {
                        // A local failure: not the peer's fault; try again later.
                        p.queued.remove(&doc);
                        p.versions_wanted = true;
                        return;
                    }
                };
                p.progress.received += n;
                if batch.more && n > 0 && refused == 0 {
                    p.queue.push_front(doc);
                } else {
                    p.queued.remove(&doc);
                }
                if refused > 0 {
                    let reason = format!("sent {refused} changes that failed verification");
                    self.offence(peer, reason, now_ms, out);
                }
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
            (asked, Response::Refused(_)) => {
                // Not an offence (the peer may lack the document or be busy), but
                // forget the fetch so a later versions exchange can queue it again.
                if let Asked::Changes(doc) = asked {
                    p.queued.remove(&doc);
                }
            }
            (Asked::Changes(doc), _) => {
                p.queued.remove(&doc);
                self.offence(
                    peer,
                    "answered with the wrong kind of response".into(),
                    now_ms,
                    out,
                );
            }
            _ => self.offence(
                peer,
                "answered with the wrong kind of response".into(),
                now_ms,
                out,
            ),
        }
    }

    fn offence(&mut self, peer: DeviceId, reason: String, now_ms: u64, out: &mut Vec<Output>) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.offences += 1;
        if p.offences >= self.config.max_offences {
            let until = now_ms + self.config.ban_ms;
            if let Some(identity) = p.identity {
                self.banned_identities.insert(identity, until);
                // Its other devices connected now go too.
                let others: Vec<DeviceId> = self
                    .peers
                    .iter()
                    .filter(|(d, q)| **d != peer && q.identity == Some(identity))
                    .map(|(d, _)| *d)
                    .collect();
                for other in others {
                    let why = "another device of its identity was banned".into();
                    self.ban(other, until, why, out);
                }
            }
            self.ban(peer, until, reason, out);
        }
    }

    /// Drops `peer` and refuses it until `until`.
    fn ban(&mut self, peer: DeviceId, until: u64, reason: String, out: &mut Vec<Output>) {
        self.peers.remove(&peer);
        self.banned.insert(peer, until);
        out.push(Output::Disconnect { peer, reason });
    }

    /// Asks every identified peer not yet asked to admit this node to each
    /// group being joined.
    fn ask_to_join(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        // Peers that know who we are, and whom we know.
        let identified: Vec<DeviceId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.identity.is_some() && p.greeted)
            .map(|(d, _)| *d)
            .collect();
        let groups: Vec<SpaceId> = self.joining.keys().copied().collect();
        for group in groups {
            for peer in &identified {
                let j = self.joining.get_mut(&group).expect("listed above");
                if j.retry_at.get(peer).is_some_and(|at| *at > now_ms) || !j.asked.insert(*peer) {
                    continue;
                }
                let request = Request::Join {
                    group,
                    invite: j.invite,
                    proof: j.proof,
                };
                self.next_id += 1;
                let id = self.next_id;
                let p = self.peers.get_mut(peer).expect("listed above");
                p.in_flight.insert(id, Asked::Join(group));
                p.sent_at.insert(id, now_ms);
                out.push(Output::Send(Sent {
                    peer: *peer,
                    id,
                    request,
                }));
            }
        }
    }

    /// Stops trying to join `group` (the caller gave up or was admitted).
    pub fn stop_joining(&mut self, group: &SpaceId) {
        self.joining.remove(group);
    }

    /// Sends what is due: versions requests, then changes requests up to the
    /// in-flight limit.
    fn pump(&mut self, now_ms: u64, replica: &mut impl Replica, out: &mut Vec<Output>) {
        let peers: Vec<DeviceId> = self.peers.keys().copied().collect();
        self.ask_to_join(now_ms, out);
        let mut interests: Option<Vec<IdentityId>> = None;
        let mut groups: Option<Vec<SpaceId>> = None;
        for peer in peers {
            let gap = self.config.min_versions_gap_ms;
            let Some(p) = self.peers.get_mut(&peer) else {
                continue;
            };
            if p.identity.is_none()
                && p.hello_wanted
                && !p.in_flight.values().any(|a| *a == Asked::Hello)
            {
                p.hello_wanted = false;
                self.next_id += 1;
                let id = self.next_id;
                p.in_flight.insert(id, Asked::Hello);
                p.sent_at.insert(id, now_ms);
                out.push(Output::Send(Sent {
                    peer,
                    id,
                    request: Request::Hello,
                }));
            }
            let Some(p) = self.peers.get(&peer) else {
                continue;
            };
            let asking_versions = p.in_flight.values().any(|a| *a == Asked::Versions);
            let recent = p
                .last_versions_ms
                .is_some_and(|t| now_ms.saturating_sub(t) < gap);
            if p.identity.is_some() && p.versions_wanted && !asking_versions && !recent {
                let owners = match &interests {
                    Some(i) => i.clone(),
                    None => match replica.interests() {
                        Ok(i) => interests.insert(i.into_iter().collect()).clone(),
                        Err(_) => continue,
                    },
                };
                let groups = match &groups {
                    Some(g) => g.clone(),
                    None => match replica.groups() {
                        Ok(mut g) => {
                            g.extend(self.joined.iter().copied());
                            groups.insert(g.into_iter().collect()).clone()
                        }
                        Err(_) => continue,
                    },
                };
                let profiles: Vec<IdentityId> =
                    self.peers.values().filter_map(|q| q.identity).collect();
                let id = self.next_id();
                let p = self.peers.get_mut(&peer).expect("peer exists");
                p.versions_wanted = false;
                p.last_versions_ms = Some(now_ms);
                p.in_flight.insert(id, Asked::Versions);
                p.sent_at.insert(id, now_ms);
                out.push(Output::Send(Sent {
                    peer,
                    id,
                    request: Request::Versions {
                        owners,
                        profiles,
                        groups,
                    },
                }));
            }
            loop {
                let p = self.peers.get(&peer).expect("peer exists");
                if p.in_flight.len() >= self.config.max_in_flight {
                    break;
                }
                // A group feed waits while its group's log is still being
                // fetched: its authors' admissions may be in it.
                let log_pending = |space: &SpaceId| {
                    let control = DocId::group_control(*space);
                    p.queued.contains(&control)
                        || p.in_flight.values().any(|a| *a == Asked::Changes(control))
                };
                let Some(at) = p.queue.iter().position(|d| {
                    d.kind != DocKind::Feed || d.space.is_public() || !log_pending(&d.space)
                }) else {
                    break;
                };
                let doc = p.queue[at];
                let have = match replica.version(&doc) {
                    Ok(v) => v,
                    Err(_) => break,
                };
                let id = self.next_id();
                let p = self.peers.get_mut(&peer).expect("peer exists");
                p.queue.remove(at);
                p.in_flight.insert(id, Asked::Changes(doc));
                p.sent_at.insert(id, now_ms);
                let request = Request::Changes {
                    doc,
                    have,
                    max_bytes: self.config.batch_bytes,
                };
                out.push(Output::Send(Sent { peer, id, request }));
            }
        }
    }
}
