//! Catching up with a peer: comparing versions, queueing the documents it
//! is ahead on, and fetching their changes a bounded batch at a time.

use super::peer::Asked;
use super::peer::PeerProgress;
use super::{Engine, Output, Sent};
use crate::sync::{ChangeBatch, Replica, Request, VersionVector, missing};
use crate::{DeviceId, DocId, DocKind, IdentityId, SpaceId};

impl Engine {
    /// in-flight limit.
    pub(super) fn pump(&mut self, now_ms: u64, replica: &mut impl Replica, out: &mut Vec<Output>) {
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

    /// The peer's versions: queue each wanted document it is ahead on.
    pub(super) fn versions_answered(
        &mut self,
        peer: DeviceId,
        docs: Vec<(DocId, VersionVector)>,
        replica: &mut impl Replica,
    ) {
        let Ok(interests) = replica.interests() else {
            return;
        };
        let Ok(mut groups) = replica.groups() else {
            return;
        };
        self.joined.retain(|g| !groups.contains(g));
        groups.extend(self.joined.iter().copied());
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
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
            if !wanted || p.queued.contains(&doc) || p.queue.len() >= self.config.max_queue {
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

    /// A batch of `doc`'s changes: ingest it, and ask for more while the
    /// peer has more and sends only valid changes.
    pub(super) fn changes_answered(
        &mut self,
        peer: DeviceId,
        doc: DocId,
        batch: ChangeBatch,
        now_ms: u64,
        replica: &mut impl Replica,
        out: &mut Vec<Output>,
    ) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
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
            Ok(ingested) => ingested.relay_faults(),
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
}
