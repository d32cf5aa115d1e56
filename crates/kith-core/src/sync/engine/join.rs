//! Joining a group: the engine asks each identified peer in turn to admit
//! this identity with an invite's proof, until one does, and reports each
//! answer.

use std::collections::{BTreeMap, BTreeSet};

use super::peer::Asked;
use super::{Engine, Output, Sent};
use crate::sync::{Refusal, Request, Response};
use crate::{DeviceId, SpaceId};

/// Most groups being joined at once.
pub const MAX_JOINING: usize = 16;

/// How long a joiner waits before asking a member again that did not know
/// it yet.
pub const JOIN_RETRY_MS: u64 = 250;

/// A group being joined: the proof, and the peers already asked.
#[derive(Debug, Clone)]
pub(super) struct Joining {
    pub(super) invite: [u8; 32],
    pub(super) proof: [u8; 64],
    pub(super) asked: BTreeSet<DeviceId>,
    /// Peers that did not know us yet, and when to ask them again.
    pub(super) retry_at: BTreeMap<DeviceId, u64>,
}

impl Engine {
    /// Asks every identified peer not yet asked to admit this node to each
    /// group being joined.
    pub(super) fn ask_to_join(&mut self, now_ms: u64, out: &mut Vec<Output>) {
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

    /// A peer answered a join request (`Joined` or `Refused`).
    pub(super) fn join_answered(
        &mut self,
        peer: DeviceId,
        group: SpaceId,
        answer: Response,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        match answer {
            Response::Joined => {
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
            // The member has not had our certificate yet (our hello to
            // it is under way): no answer about the invite; ask again.
            Response::Refused(Refusal::Unidentified) => {
                if let Some(j) = self.joining.get_mut(&group) {
                    j.asked.remove(&peer);
                    j.retry_at.insert(peer, now_ms + JOIN_RETRY_MS);
                }
            }
            Response::Refused(why) => out.push(Output::JoinAnswer {
                group,
                peer,
                answer: Err(why),
            }),
            _ => unreachable!("only join answers are passed here"),
        }
    }
}
