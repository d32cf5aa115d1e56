//! One connected peer as the engine tracks it: what was asked of it, what
//! is queued to fetch from it, and the offences it collected. A peer past
//! [`EngineConfig::max_offences`] is banned, and so are the other devices
//! of its identity.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{Engine, Output, Sent};
use crate::sync::Request;
use crate::{DeviceId, DocId, IdentityId, SpaceId};

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
pub(super) enum Asked {
    Hello,
    Versions,
    Changes(DocId),
    Join(SpaceId),
}

#[derive(Debug, Default)]
pub(super) struct Peer {
    pub(super) identity: Option<IdentityId>,
    pub(super) in_flight: BTreeMap<u64, Asked>,
    /// When each request in flight was sent, to expire those never answered.
    pub(super) sent_at: BTreeMap<u64, u64>,
    pub(super) queue: VecDeque<DocId>,
    pub(super) queued: BTreeSet<DocId>,
    pub(super) last_versions_ms: Option<u64>,
    pub(super) hello_wanted: bool,
    /// The peer asked for our certificate and was answered: it knows, or
    /// is about to know, who we are. A join request waits for this.
    pub(super) greeted: bool,
    pub(super) versions_wanted: bool,
    pub(super) offences: u32,
    pub(super) progress: PeerProgress,
}

impl Peer {
    /// Request `id` will never be answered: arrange to try again.
    pub(super) fn failed(&mut self, id: u64) {
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

impl Engine {
    pub(super) fn connected(&mut self, peer: DeviceId, now_ms: u64, out: &mut Vec<Output>) {
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

    pub(super) fn offence(
        &mut self,
        peer: DeviceId,
        reason: String,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
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
    pub(super) fn ban(
        &mut self,
        peer: DeviceId,
        until: u64,
        reason: String,
        out: &mut Vec<Output>,
    ) {
        self.peers.remove(&peer);
        self.banned.insert(peer, until);
        out.push(Output::Disconnect { peer, reason });
    }

    /// The peer said who it is: a certificate for its own device, of an
    /// identity not banned, that verifies.
    pub(super) fn hello_answered(
        &mut self,
        peer: DeviceId,
        cert: crate::DeviceCert,
        now_ms: u64,
        replica: &mut impl crate::sync::Replica,
        out: &mut Vec<Output>,
    ) {
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
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.identity = Some(cert.identity);
        p.versions_wanted = true;
        out.push(Output::PeerIdentified {
            peer,
            identity: cert.identity,
        });
    }
}
