//! Joins under way: a `kith group join` call waits here while the sync
//! engine asks peers to admit this identity, and is answered once a member
//! has (and, if asked, once the group's history has arrived), as soon as a
//! member refuses for a reason that asking others cannot change, or when its
//! time is up. Bounded like the engine's own list of groups being joined.

use std::time::{Duration, Instant};

use kith_core::SpaceId;
use kith_core::sync::{Input as SyncInput, MAX_JOINING, Refusal};
use kith_net::Multiaddr;
use tokio::sync::oneshot;

use crate::call::Reply;
use crate::groups::GroupView;
use crate::service::{ActionError, Service};

type ReplyTx = oneshot::Sender<Result<Reply, ActionError>>;

#[derive(Debug)]
struct PendingJoin {
    group: SpaceId,
    reply: ReplyTx,
    deadline: Instant,
    wait_history: bool,
    admitted: bool,
    refusals: Vec<String>,
}

/// A join begun: where to dial and what to ask the engine.
#[derive(Debug)]
pub struct Begun {
    pub group: SpaceId,
    pub dial: Vec<Multiaddr>,
    pub ask: SyncInput,
}

/// The join calls waiting.
#[derive(Debug, Default)]
pub struct Joins {
    pending: Vec<PendingJoin>,
}

impl Joins {
    /// Starts joining the group of an invite key: answers at once if the
    /// key is bad, this identity is a member already, or a join of the
    /// group is under way; else parks the call and says which addresses
    /// to dial (the key's) and what to ask the engine (to have every peer
    /// asked to admit this identity).
    pub fn begin(
        &mut self,
        service: &Service,
        key: &str,
        wait: bool,
        timeout: Duration,
        reply: ReplyTx,
    ) -> Option<Begun> {
        let key = match kith_core::InviteKey::decode(key) {
            Ok(k) => k,
            Err(e) => {
                let _ = reply.send(Err(ActionError::Invalid(e.to_string())));
                return None;
            }
        };
        if let Ok(view) = service.group_show(&key.group)
            && view.role.is_some()
        {
            let _ = reply.send(Ok(Reply::Group(view)));
            return None;
        }
        if self.is_joining(&key.group) {
            let _ = reply.send(Err(ActionError::Invalid(
                "this node is already joining that group".into(),
            )));
            return None;
        }
        let dial = key
            .addresses
            .iter()
            .filter_map(|address| match Multiaddr::try_from(address.clone()) {
                Ok(addr) => Some(addr),
                Err(e) => {
                    tracing::warn!(error = %e, "an invite key carries an unreadable address");
                    None
                }
            })
            .collect();
        self.start(key.group, wait, timeout, reply);
        Some(Begun {
            group: key.group,
            dial,
            ask: SyncInput::Join {
                group: key.group,
                invite: key.public_key(),
                proof: key.prove(&service.identity()),
            },
        })
    }

    /// Parks a join call; refused if as many joins are already under way as
    /// the engine tracks.
    pub fn start(&mut self, group: SpaceId, wait_history: bool, timeout: Duration, reply: ReplyTx) {
        if self.pending.len() >= MAX_JOINING {
            let _ = reply.send(Err(ActionError::Invalid(format!(
                "{MAX_JOINING} joins are already under way; try again later"
            ))));
            return;
        }
        self.pending.push(PendingJoin {
            group,
            reply,
            deadline: Instant::now() + timeout.min(crate::waiters::MAX_WAIT),
            wait_history,
            admitted: false,
            refusals: Vec::new(),
        });
    }

    /// Whether a join of `group` is under way.
    pub fn is_joining(&self, group: &SpaceId) -> bool {
        self.pending.iter().any(|p| p.group == *group)
    }

    /// The groups being joined.
    pub fn groups(&self) -> Vec<SpaceId> {
        self.pending.iter().map(|p| p.group).collect()
    }

    /// A peer's answer. A refusal that another member could answer
    /// differently (it is no member, or has not heard of the invite yet)
    /// leaves the wait to others; any other ends it: every member would say
    /// the same of this invite.
    pub fn answer(&mut self, group: SpaceId, peer: &str, answer: Result<(), Refusal>) {
        let mut still = Vec::with_capacity(self.pending.len());
        for mut p in std::mem::take(&mut self.pending) {
            if p.group != group {
                still.push(p);
                continue;
            }
            match &answer {
                Ok(()) => {
                    p.admitted = true;
                    still.push(p);
                }
                Err(why) if why.may_differ_elsewhere() || p.admitted => {
                    p.refusals.push(format!("{peer}: {why}"));
                    still.push(p);
                }
                Err(why) => {
                    let _ = p.reply.send(Err(ActionError::NotAdmitted(why.to_string())));
                }
            }
        }
        self.pending = still;
    }

    /// Answers the admitted joins that are complete: `done` gives the
    /// group's view once this node holds its log with itself as a member and
    /// (for joins that wait for it) its history has arrived.
    pub fn wake(&mut self, done: &mut dyn FnMut(&SpaceId, bool) -> Option<GroupView>) {
        let mut still = Vec::with_capacity(self.pending.len());
        for p in std::mem::take(&mut self.pending) {
            match p.admitted.then(|| done(&p.group, p.wait_history)).flatten() {
                Some(view) => {
                    let _ = p.reply.send(Ok(Reply::Group(view)));
                }
                None => still.push(p),
            }
        }
        self.pending = still;
    }

    /// Fails the joins whose time is up, saying what happened; returns
    /// their groups, which the engine should stop asking for.
    pub fn expire(&mut self, now: Instant) -> Vec<SpaceId> {
        let (late, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|p| !p.reply.is_closed())
            .partition(|p| p.deadline <= now);
        self.pending = still;
        let mut groups = Vec::new();
        for p in late {
            let error = if p.admitted {
                ActionError::Invalid(
                    "admitted, but the group's history has not all arrived yet; the node keeps syncing"
                        .to_owned(),
                )
            } else if p.refusals.is_empty() {
                ActionError::Invalid(
                    "no member of the group could be reached: is one online on this network, \
                     or at the addresses in the key?"
                        .to_owned(),
                )
            } else {
                ActionError::NotAdmitted(p.refusals.join("; "))
            };
            let _ = p.reply.send(Err(error));
            groups.push(p.group);
        }
        groups
    }
}
