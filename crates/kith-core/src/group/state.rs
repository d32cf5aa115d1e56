//! Who belongs to a group: the control log replayed in canonical order.
//!
//! The rules (proto/README.md, "Groups"), applied record by record in the
//! order of [`History`], each with the author and the time of its change:
//!
//! - `Genesis` counts only as the first record, written by the creator it
//!   names, whose hash with the nonce is the group id. The creator is the
//!   first admin.
//! - `Info`, `Invite`, `Revoke`, `Promote` and `Remove` need an admin; a
//!   member may also `Remove` itself (leaving).
//! - `Keys` of a new epoch (one past the newest) needs an admin; seals of an
//!   epoch that exists may come from any member (who admits someone seals
//!   the key it holds to the joiner's device).
//! - `Join` needs a member (any role) as author, and an invite that exists,
//!   is not revoked, has uses left and had not expired at the change's time,
//!   and a proof by the invite's secret for the joining identity. Joins of a
//!   single-use invite made concurrently are decided by the canonical order:
//!   the first one wins, everywhere.
//! - A member an admin removed comes back only with an invite made after the
//!   removal (later in the order): every invite they could have held is
//!   closed to them. A member who left may rejoin with any open invite.
//! - Removal wins: every change by a removed identity made concurrently with
//!   its removal (neither knew of the other) counts for nothing, wherever the
//!   canonical order placed it. Replaying is repeated until no more changes
//!   are voided; the voided set only grows, so this ends.
//!
//! Records that break a rule are ignored, not errors: the same log gives
//! every member the same state.

use std::collections::{BTreeMap, BTreeSet};

use automerge::Change;

use super::history::History;
use super::records::{Record, Role, records_of};
use super::secrets::EpochKey;
use crate::invite::verify_proof;
use crate::{DeviceId, DeviceKey, IdentityId, SpaceId};

/// A current member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub role: Role,
    /// Who admitted the member (`None` for the creator).
    pub admitted_by: Option<IdentityId>,
    /// The admin who made the invite the member joined with.
    pub invited_by: Option<IdentityId>,
    pub since_ms: u64,
}

/// An invite as the log describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteState {
    pub by: IdentityId,
    pub created_ms: u64,
    pub expires_at_ms: u64,
    pub uses: u32,
    pub used: u32,
    pub role: Role,
    pub revoked: bool,
    /// Where in the replay the invite was made (records applied before it).
    pub made_at: u64,
}

impl InviteState {
    /// Whether the invite could still admit someone at `now_ms`.
    pub fn is_open(&self, now_ms: u64) -> bool {
        !self.revoked && self.used < self.uses && now_ms <= self.expires_at_ms
    }
}

/// A former member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    pub by: IdentityId,
    pub at_ms: u64,
    /// Per actor: the last change of its group feeds that still counts.
    pub cutoff: BTreeMap<Vec<u8>, u32>,
    /// Where in the replay the removal happened (records applied before it).
    pub applied_at: u64,
}

/// One key record: an epoch's key sealed to some devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySeals {
    pub epoch: u32,
    pub by: IdentityId,
    pub seals: BTreeMap<DeviceId, Vec<u8>>,
}

/// Why a join cannot be admitted, as the joiner is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinRefusal {
    #[error("this node does not know the group (it is not a member)")]
    UnknownGroup,
    #[error("the group has no such invite (was it made in another group?)")]
    UnknownInvite,
    #[error("the invite has been revoked")]
    Revoked,
    #[error("the invite has expired")]
    Expired,
    #[error("the invite has been used up")]
    UsedUp,
    #[error("the proof was not made with this invite for this identity")]
    BadProof,
    #[error("already a member of the group")]
    AlreadyMember,
    #[error(
        "an admin removed this identity from the group after the invite was made; only an invite made since can bring it back"
    )]
    RemovedSince,
}

/// A group's membership and settings at some point of its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupState {
    pub id: SpaceId,
    /// `None` until the genesis record is known.
    pub creator: Option<IdentityId>,
    pub name: String,
    pub about: String,
    pub members: BTreeMap<IdentityId, Member>,
    pub removed: BTreeMap<IdentityId, Removal>,
    pub invites: BTreeMap<[u8; 32], InviteState>,
    /// Key records, in log order.
    pub keys: Vec<KeySeals>,
    /// Records applied so far: the position of the next one.
    applied: u64,
}

impl GroupState {
    fn empty(id: SpaceId) -> GroupState {
        GroupState {
            id,
            creator: None,
            name: String::new(),
            about: String::new(),
            members: BTreeMap::new(),
            removed: BTreeMap::new(),
            invites: BTreeMap::new(),
            keys: Vec::new(),
            applied: 0,
        }
    }

    /// The newest key epoch, if any key was recorded.
    pub fn epoch(&self) -> Option<u32> {
        self.keys.iter().map(|k| k.epoch).max()
    }

    /// The keys sealed to `device`, newest epoch first (then in log order),
    /// each once.
    pub fn keys_for(&self, device: &DeviceKey) -> Vec<(u32, EpochKey)> {
        let me = device.id();
        let mut out: Vec<(u32, EpochKey)> = Vec::new();
        for k in &self.keys {
            if let Some(key) = k.seals.get(&me).and_then(|s| EpochKey::open(device, s))
                && !out.iter().any(|(_, known)| known.id() == key.id())
            {
                out.push((k.epoch, key));
            }
        }
        out.sort_by_key(|(epoch, _)| std::cmp::Reverse(*epoch));
        out
    }

    /// Replays a control document's changes. `author_of` names the identity
    /// behind a change's actor (from the device certificates); changes whose
    /// author is unknown count for nothing.
    pub fn replay(
        id: SpaceId,
        changes: Vec<Change>,
        author_of: impl Fn(&[u8]) -> Option<IdentityId>,
    ) -> GroupState {
        let history = History::new(changes);
        let everything = vec![true; history.changes().len()];
        replay_history(id, &history, &everything, &author_of)
    }

    pub fn role(&self, who: &IdentityId) -> Option<Role> {
        self.members.get(who).map(|m| m.role)
    }

    pub fn is_member(&self, who: &IdentityId) -> bool {
        self.members.contains_key(who)
    }

    pub fn is_admin(&self, who: &IdentityId) -> bool {
        self.role(who) == Some(Role::Admin)
    }

    /// Whether someone who is no longer a member holds the newest key: a
    /// device whose owner (as `identity_of` says; unknown devices do not
    /// count) is not a member has a seal of that epoch. So it is after a
    /// member left: a leaver cannot start the epoch that shuts it out.
    pub fn newest_key_reaches_outsiders(
        &self,
        identity_of: impl Fn(&DeviceId) -> Option<IdentityId>,
    ) -> bool {
        let Some(newest) = self.epoch() else {
            return false;
        };
        self.keys
            .iter()
            .filter(|k| k.epoch == newest)
            .flat_map(|k| k.seals.keys())
            .filter_map(identity_of)
            .any(|owner| !self.is_member(&owner))
    }

    /// The admin whose node starts a new epoch that no admin's action
    /// started (see [`Self::newest_key_reaches_outsiders`]): the one with
    /// the smallest identity, so that admins do not all start one at once.
    pub fn rekeying_admin(&self) -> Option<IdentityId> {
        self.members
            .iter()
            .find(|(_, m)| m.role == Role::Admin)
            .map(|(id, _)| *id)
    }

    /// Whether a change of a group feed, by `author` from `actor` with
    /// sequence number `seq`, counts: members' changes do, and a former
    /// member's up to the cutoff of its removal.
    pub fn accepts_post(&self, author: &IdentityId, actor: &[u8], seq: u32) -> bool {
        if self.is_member(author) {
            return true;
        }
        self.removed
            .get(author)
            .and_then(|r| r.cutoff.get(actor))
            .is_some_and(|last| seq <= *last)
    }

    /// Whether `joiner` may be admitted now with the invite whose public key
    /// is `invite`, given its `proof`; the role it would get.
    pub fn check_join(
        &self,
        invite: &[u8; 32],
        joiner: &IdentityId,
        proof: &[u8; 64],
        now_ms: u64,
    ) -> Result<Role, JoinRefusal> {
        if self.creator.is_none() {
            return Err(JoinRefusal::UnknownGroup);
        }
        let inv = self.invites.get(invite).ok_or(JoinRefusal::UnknownInvite)?;
        if !verify_proof(&self.id, invite, joiner, proof) {
            return Err(JoinRefusal::BadProof);
        }
        if inv.revoked {
            return Err(JoinRefusal::Revoked);
        }
        if now_ms > inv.expires_at_ms {
            return Err(JoinRefusal::Expired);
        }
        if inv.used >= inv.uses {
            return Err(JoinRefusal::UsedUp);
        }
        if self.is_member(joiner) {
            return Err(JoinRefusal::AlreadyMember);
        }
        if let Some(removal) = self.removed.get(joiner)
            && removal.by != *joiner
            && inv.made_at < removal.applied_at
        {
            return Err(JoinRefusal::RemovedSince);
        }
        Ok(inv.role)
    }
}

/// Why a control change may not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteRefusal {
    #[error("the group's earlier changes it depends on have not arrived")]
    MissingHistory,
    #[error("its author was not a member of the group when it was written")]
    NotMember,
}

/// Whether a new control change by `author` may be stored: its author must
/// be a member in the state its dependencies describe (what the writer saw),
/// or the change must be the group's genesis by its creator. Judged on the
/// change's causal past alone, so every replica decides alike whenever the
/// change arrives. `existing` must hold the change's dependencies.
pub fn may_write_control(
    id: SpaceId,
    existing: &[Change],
    change: &Change,
    author: &IdentityId,
    author_of: impl Fn(&[u8]) -> Option<IdentityId>,
) -> Result<(), WriteRefusal> {
    if change.deps().is_empty() {
        let genesis = records_of(change).iter().any(|r| match r {
            Record::Genesis { creator, nonce } => {
                creator == author && super::group_id(creator, nonce) == id
            }
            _ => false,
        });
        return if genesis {
            Ok(())
        } else {
            Err(WriteRefusal::NotMember)
        };
    }
    let history = History::new(existing.to_vec());
    let past = history
        .causal_past(change.deps())
        .ok_or(WriteRefusal::MissingHistory)?;
    if replay_history(id, &history, &past, &author_of).is_member(author) {
        Ok(())
    } else {
        Err(WriteRefusal::NotMember)
    }
}

/// Replays the changes of `history` marked in `include`, voiding the
/// concurrent changes of removed members until nothing more is voided.
fn replay_history(
    id: SpaceId,
    history: &History,
    include: &[bool],
    author_of: &impl Fn(&[u8]) -> Option<IdentityId>,
) -> GroupState {
    let authors: Vec<Option<IdentityId>> = history
        .changes()
        .iter()
        .map(|c| author_of(c.actor_id().to_bytes()))
        .collect();
    let records: Vec<Vec<Record>> = history.changes().iter().map(records_of).collect();
    let mut void: BTreeSet<usize> = BTreeSet::new();
    loop {
        let (state, removals) = replay_once(id, history, include, &authors, &records, &void);
        let before = void.len();
        for (r, target) in removals {
            for (c, author) in authors.iter().enumerate() {
                if include[c] && *author == Some(target) && history.concurrent(c, r) {
                    void.insert(c);
                }
            }
        }
        if void.len() == before {
            return state;
        }
    }
}

/// One pass of the rules; also returns each applied removal (its change's
/// position and whom it removed).
fn replay_once(
    id: SpaceId,
    history: &History,
    include: &[bool],
    authors: &[Option<IdentityId>],
    records: &[Vec<Record>],
    void: &BTreeSet<usize>,
) -> (GroupState, Vec<(usize, IdentityId)>) {
    let mut s = GroupState::empty(id);
    let mut removals = Vec::new();
    for (i, change) in history.changes().iter().enumerate() {
        if !include[i] || void.contains(&i) {
            continue;
        }
        let Some(author) = authors[i] else { continue };
        let at_ms = u64::try_from(change.timestamp()).unwrap_or(0);
        for record in &records[i] {
            if apply(&mut s, record, author, at_ms)
                && let Record::Remove { identity, .. } = record
            {
                removals.push((i, *identity));
            }
        }
    }
    (s, removals)
}

/// Applies one record if the rules allow it; whether they did.
fn apply(s: &mut GroupState, record: &Record, author: IdentityId, at_ms: u64) -> bool {
    let applied = apply_rules(s, record, author, at_ms);
    if applied {
        s.applied += 1;
    }
    applied
}

fn apply_rules(s: &mut GroupState, record: &Record, author: IdentityId, at_ms: u64) -> bool {
    if let Record::Genesis { creator, nonce } = record {
        if s.creator.is_some() || *creator != author || super::group_id(creator, nonce) != s.id {
            return false;
        }
        s.creator = Some(author);
        s.members.insert(
            author,
            Member {
                role: Role::Admin,
                admitted_by: None,
                invited_by: None,
                since_ms: at_ms,
            },
        );
        return true;
    }
    let Some(role) = s.role(&author) else {
        return false;
    };
    let admin = role == Role::Admin;
    match record {
        Record::Genesis { .. } => unreachable!("handled above"),
        Record::Info { name, about } if admin => {
            s.name = name.clone();
            s.about = about.clone();
        }
        Record::Invite {
            public_key,
            expires_at_ms,
            uses,
            role,
        } if admin && !s.invites.contains_key(public_key) => {
            s.invites.insert(
                *public_key,
                InviteState {
                    by: author,
                    created_ms: at_ms,
                    expires_at_ms: *expires_at_ms,
                    uses: *uses,
                    used: 0,
                    role: *role,
                    revoked: false,
                    made_at: s.applied,
                },
            );
        }
        Record::Revoke { public_key } if admin => match s.invites.get_mut(public_key) {
            Some(inv) => inv.revoked = true,
            None => return false,
        },
        Record::Join {
            identity,
            invite,
            proof,
        } => {
            let Ok(role) = s.check_join(invite, identity, proof, at_ms) else {
                return false;
            };
            let inv = s.invites.get_mut(invite).expect("check_join found it");
            inv.used += 1;
            let invited_by = Some(inv.by);
            s.removed.remove(identity);
            s.members.insert(
                *identity,
                Member {
                    role,
                    admitted_by: Some(author),
                    invited_by,
                    since_ms: at_ms,
                },
            );
        }
        Record::Promote { identity } if admin => match s.members.get_mut(identity) {
            Some(m) => m.role = Role::Admin,
            None => return false,
        },
        Record::Keys { epoch, seals } => {
            let allowed = match s.epoch() {
                None => admin,
                Some(current) => *epoch <= current || (*epoch == current + 1 && admin),
            };
            if !allowed {
                return false;
            }
            s.keys.push(KeySeals {
                epoch: *epoch,
                by: author,
                seals: seals.iter().cloned().collect(),
            });
        }
        Record::Remove { identity, cutoff } if admin || *identity == author => {
            if s.members.remove(identity).is_none() {
                return false;
            }
            s.removed.insert(
                *identity,
                Removal {
                    by: author,
                    at_ms,
                    cutoff: cutoff.iter().cloned().collect(),
                    applied_at: s.applied,
                },
            );
        }
        _ => return false,
    }
    true
}
