//! Groups, as a person acts on them: create, invite, admit, revoke, remove,
//! promote, leave, rename, and the views the CLI and the API show.
//!
//! Every act is one record in the group's control document
//! (`kith_core::group::records`), checked here against the group's current
//! state so that the person hears why an act is refused, and checked again
//! by the store on the very rules every other member applies.

use std::collections::{BTreeMap, BTreeSet};

use kith_core::group::{self, EpochKey, GroupState, JoinRefusal, Record, Role};
use kith_core::{DeviceId, DocId, IdentityId, InviteKey, SpaceId};
use serde::{Deserialize, Serialize};

use crate::home::{HomeError, now_ms};
use crate::service::{ActionError, Service};

/// Default lifetime of an invite.
pub const DEFAULT_INVITE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// Longest lifetime of an invite.
pub const MAX_INVITE_TTL_MS: u64 = 365 * 24 * 3600 * 1000;

/// A member, for people and programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub id: IdentityId,
    pub name: Option<String>,
    pub role: Role,
    /// The admin whose invite the member used (`None`: the creator).
    pub invited_by: Option<IdentityId>,
    /// The member who admitted them.
    pub admitted_by: Option<IdentityId>,
    #[serde(
        rename = "since",
        serialize_with = "crate::views::rfc3339",
        deserialize_with = "crate::views::from_rfc3339"
    )]
    pub since_ms: u64,
}

/// An invite as its group's log records it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteView {
    /// The first 16 hex digits of the invite's public key.
    pub id: String,
    pub by: IdentityId,
    pub role: Role,
    pub uses: u32,
    pub used: u32,
    #[serde(
        rename = "expires_at",
        serialize_with = "crate::views::rfc3339",
        deserialize_with = "crate::views::from_rfc3339"
    )]
    pub expires_at_ms: u64,
    pub revoked: bool,
    /// Could still admit someone now.
    pub open: bool,
}

/// A group, as `kith group show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub id: SpaceId,
    pub name: String,
    pub about: String,
    /// This identity's role; `None` if it is not (or no longer) a member.
    pub role: Option<Role>,
    pub members: Vec<MemberView>,
    /// Open and past invites; shown to admins only.
    pub invites: Vec<InviteView>,
    /// The newest key epoch in the group's log: a new one starts when a
    /// member is removed or leaves (`None` before the first key).
    pub epoch: Option<u32>,
}

/// A line of `kith group list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub id: SpaceId,
    pub name: String,
    pub role: Option<Role>,
    pub members: usize,
}

/// A new invite: the key to hand over, and what the log says of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvite {
    pub key: String,
    pub group: SpaceId,
    pub invite: InviteView,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn invite_view(key: &[u8; 32], i: &group::InviteState, now: u64) -> InviteView {
    InviteView {
        id: hex(&key[..8]),
        by: i.by,
        role: i.role,
        uses: i.uses,
        used: i.used,
        expires_at_ms: i.expires_at_ms,
        revoked: i.revoked,
        open: i.is_open(now),
    }
}

impl Service {
    /// The group `reference` names: its id, or the name of one of this
    /// identity's groups (unique among them).
    pub fn resolve_group(&self, reference: &str) -> Result<SpaceId, ActionError> {
        if let Ok(id) = reference.parse::<SpaceId>()
            && !id.is_public()
        {
            return Ok(id);
        }
        let me = self.identity();
        let matches: Vec<SpaceId> = self
            .store()
            .groups()?
            .iter()
            .filter(|g| g.is_member(&me) && g.name == reference)
            .map(|g| g.id)
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(ActionError::UnknownGroup(reference.to_owned())),
            _ => Err(ActionError::Ambiguous {
                among: format!("{} of your groups", matches.len()),
                name: reference.to_owned(),
                instead: "the group's id",
            }),
        }
    }

    /// The group's state, which must hold this identity as a member.
    fn my_group(&self, group: &SpaceId) -> Result<std::sync::Arc<GroupState>, ActionError> {
        let state = self
            .store()
            .group(group)?
            .ok_or_else(|| ActionError::UnknownGroup(group.to_string()))?;
        if !state.is_member(&self.identity()) {
            return Err(ActionError::NotMember {
                name: Some(state.name.clone()),
                id: *group,
            });
        }
        Ok(state)
    }

    fn my_admin_group(&self, group: &SpaceId) -> Result<std::sync::Arc<GroupState>, ActionError> {
        let state = self.my_group(group)?;
        if !state.is_admin(&self.identity()) {
            return Err(ActionError::NotAdmin(state.name.clone()));
        }
        Ok(state)
    }

    fn write_control(&mut self, group: &SpaceId, records: &[Record]) -> Result<(), ActionError> {
        self.commit(DocId::group_control(*group), |d| {
            records.iter().try_for_each(|r| r.write(d))
        })
    }

    /// The member `reference` names in `state`: an identity, or a unique name.
    fn resolve_member(
        &self,
        state: &GroupState,
        reference: &str,
    ) -> Result<IdentityId, ActionError> {
        if let Ok(id) = reference.parse::<IdentityId>() {
            return Ok(id);
        }
        let me = self.identity();
        let named: Vec<IdentityId> = state
            .members
            .keys()
            .filter(|id| {
                self.store()
                    .person(&me, id)
                    .ok()
                    .flatten()
                    .and_then(|p| p.name)
                    .is_some_and(|n| n == reference)
            })
            .copied()
            .collect();
        match named.as_slice() {
            [one] => Ok(*one),
            [] => Err(ActionError::Invalid(format!(
                "no member of {} is called `{reference}`",
                state.name
            ))),
            _ => Err(ActionError::Ambiguous {
                among: format!("members of {}", state.name),
                name: reference.to_owned(),
                instead: "their id",
            }),
        }
    }

    /// Creates a group with this identity as its first admin.
    pub fn group_create(&mut self, name: &str, about: &str) -> Result<GroupView, ActionError> {
        group::records::check_new_info(name, about).map_err(ActionError::Invalid)?;
        let me = self.identity();
        let nonce = kith_core::keys::random_bytes::<16>().map_err(HomeError::from)?;
        let id = group::group_id(&me, &nonce);
        let key = EpochKey::generate().map_err(HomeError::from)?;
        let seals = self.seal_to(&key, &BTreeSet::from([me]))?;
        self.write_control(
            &id,
            &[
                Record::Genesis { creator: me, nonce },
                Record::Info {
                    name: name.to_owned(),
                    about: about.to_owned(),
                },
                Record::Keys { epoch: 0, seals },
            ],
        )?;
        self.group_show(&id)
    }

    /// This identity's groups (and those it was removed from or left).
    pub fn group_list(&self) -> Result<Vec<GroupSummary>, ActionError> {
        let me = self.identity();
        Ok(self
            .store()
            .groups()?
            .iter()
            .filter(|g| g.is_member(&me) || g.removed.contains_key(&me))
            .map(|g| GroupSummary {
                id: g.id,
                name: g.name.clone(),
                role: g.role(&me),
                members: g.members.len(),
            })
            .collect())
    }

    pub fn group_show(&self, group: &SpaceId) -> Result<GroupView, ActionError> {
        let me = self.identity();
        let state = self
            .store()
            .group(group)?
            .ok_or_else(|| ActionError::UnknownGroup(group.to_string()))?;
        let now = now_ms();
        let members = state
            .members
            .iter()
            .map(|(id, m)| MemberView {
                id: *id,
                name: self
                    .store()
                    .person(&me, id)
                    .ok()
                    .flatten()
                    .and_then(|p| p.name),
                role: m.role,
                invited_by: m.invited_by,
                admitted_by: m.admitted_by,
                since_ms: m.since_ms,
            })
            .collect();
        let invites = if state.is_admin(&me) {
            state
                .invites
                .iter()
                .map(|(k, i)| invite_view(k, i, now))
                .collect()
        } else {
            Vec::new()
        };
        Ok(GroupView {
            id: state.id,
            name: state.name.clone(),
            about: state.about.clone(),
            role: state.role(&me),
            members,
            invites,
            epoch: state.epoch(),
        })
    }

    /// Makes an invite and returns its key. `addresses` are where this node
    /// can be reached (binary multiaddrs), best first.
    pub fn group_invite(
        &mut self,
        group: &SpaceId,
        ttl_ms: u64,
        uses: u32,
        role: Role,
    ) -> Result<NewInvite, ActionError> {
        self.my_admin_group(group)?;
        if ttl_ms == 0 || ttl_ms > MAX_INVITE_TTL_MS {
            return Err(ActionError::Invalid(
                "an invite must expire after at least a millisecond and at most a year".into(),
            ));
        }
        if uses == 0 || uses > group::records::MAX_INVITE_USES {
            return Err(ActionError::Invalid(format!(
                "an invite admits 1 to {} people",
                group::records::MAX_INVITE_USES
            )));
        }
        let secret = kith_core::keys::random_bytes::<32>().map_err(HomeError::from)?;
        let key = InviteKey {
            group: *group,
            secret,
            addresses: self.reachable_at().to_vec(),
        };
        let public_key = key.public_key();
        self.write_control(
            group,
            &[Record::Invite {
                public_key,
                expires_at_ms: now_ms().saturating_add(ttl_ms),
                uses,
                role,
            }],
        )?;
        let state = self.my_group(group)?;
        let invite = state
            .invites
            .get(&public_key)
            .map(|i| invite_view(&public_key, i, now_ms()))
            .ok_or_else(|| ActionError::Invalid("the invite was not recorded".into()))?;
        Ok(NewInvite {
            key: key.encode(),
            group: *group,
            invite,
        })
    }

    pub fn group_invites(&self, group: &SpaceId) -> Result<Vec<InviteView>, ActionError> {
        let state = self.my_admin_group(group)?;
        let now = now_ms();
        Ok(state
            .invites
            .iter()
            .map(|(k, i)| invite_view(k, i, now))
            .collect())
    }

    /// Revokes the invite whose id starts with `invite` (at least 8 hex digits).
    pub fn group_revoke(&mut self, group: &SpaceId, invite: &str) -> Result<(), ActionError> {
        let state = self.my_admin_group(group)?;
        let wanted = invite.trim().to_ascii_lowercase();
        if wanted.len() < 8 {
            return Err(ActionError::Invalid(
                "name the invite by at least 8 digits of its id (see `kith group invites`)".into(),
            ));
        }
        let found: Vec<[u8; 32]> = state
            .invites
            .keys()
            .filter(|k| hex(&k[..]).starts_with(&wanted))
            .copied()
            .collect();
        let public_key = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(ActionError::Invalid(format!(
                    "{} has no invite {invite}",
                    state.name
                )));
            }
            _ => {
                return Err(ActionError::Invalid(format!(
                    "several invites start with {invite}: give more digits"
                )));
            }
        };
        if state.invites[&public_key].revoked {
            return Err(ActionError::Invalid(format!(
                "invite {invite} is already revoked"
            )));
        }
        self.write_control(group, &[Record::Revoke { public_key }])
    }

    /// Removes a member; what the remover has of its group feeds still
    /// counts, anything later does not.
    pub fn group_remove(&mut self, group: &SpaceId, member: &str) -> Result<(), ActionError> {
        let state = self.my_admin_group(group)?;
        let who = self.resolve_member(&state, member)?;
        if who == self.identity() {
            return Err(ActionError::Invalid(
                "to remove yourself, use `kith group leave`".into(),
            ));
        }
        if !state.is_member(&who) {
            return Err(ActionError::Invalid(format!(
                "{who} is not a member of {}",
                state.name
            )));
        }
        let cutoff = self.store().group_feed_clock(group, &who)?;
        let remaining: BTreeSet<IdentityId> = state
            .members
            .keys()
            .filter(|m| **m != who)
            .copied()
            .collect();
        let keys = self.new_epoch(&state, &remaining)?;
        self.write_control(
            group,
            &[
                Record::Remove {
                    identity: who,
                    cutoff,
                },
                keys,
            ],
        )
    }

    /// A new epoch of `state`'s group whose key only `members`' devices get.
    fn new_epoch(
        &self,
        state: &GroupState,
        members: &BTreeSet<IdentityId>,
    ) -> Result<Record, ActionError> {
        let key = EpochKey::generate().map_err(HomeError::from)?;
        let seals = self.seal_to(&key, members)?;
        let epoch = state.epoch().map_or(0, |e| e + 1);
        Ok(Record::Keys { epoch, seals })
    }

    /// Starts a new epoch of `group` if someone who is no longer a member
    /// holds its newest key (a member left) and this device is the one to
    /// do it: the rekeying admin's (see [`GroupState::rekeying_admin`]),
    /// and of that admin's devices this store knows, the smallest. Returns
    /// whether it did.
    pub fn rekey_if_due(&mut self, group: &SpaceId) -> Result<bool, ActionError> {
        let me = self.identity();
        let Some(state) = self.store().group(group)? else {
            return Ok(false);
        };
        if state.rekeying_admin() != Some(me) {
            return Ok(false);
        }
        // The members' devices, read once: most seals are theirs, and only
        // the others need a lookup.
        let members: BTreeSet<IdentityId> = state.members.keys().copied().collect();
        let store = self.store();
        let owners: BTreeMap<DeviceId, IdentityId> = store
            .devices_of(&members)?
            .into_iter()
            .map(|(owner, device)| (device, owner))
            .collect();
        let device = self.keys().device.id();
        let first_device = owners
            .iter()
            .filter(|(_, owner)| **owner == me)
            .map(|(d, _)| *d)
            .chain([device])
            .min();
        if first_device != Some(device) {
            return Ok(false);
        }
        let owner_of = |d: &DeviceId| {
            owners
                .get(d)
                .copied()
                .or_else(|| store.identity_of(d).ok().flatten())
        };
        if !state.newest_key_reaches_outsiders(owner_of) {
            return Ok(false);
        }
        let keys = self.new_epoch(&state, &members)?;
        self.write_control(group, &[keys])?;
        Ok(true)
    }

    /// Seals `key` to every device this store knows of `members` (this
    /// device included).
    fn seal_to(
        &self,
        key: &EpochKey,
        members: &BTreeSet<IdentityId>,
    ) -> Result<Vec<(DeviceId, Vec<u8>)>, ActionError> {
        let mut devices: BTreeSet<DeviceId> = self
            .store()
            .devices_of(members)?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        if members.contains(&self.identity()) {
            devices.insert(self.keys().device.id());
        }
        Ok(devices
            .into_iter()
            .filter_map(|d| key.seal_for(&d).map(|s| (d, s)))
            .collect())
    }

    /// The newest key of `group` this device holds, with its epoch.
    pub fn current_key(&self, group: &SpaceId) -> Option<(u32, EpochKey)> {
        let state = self.store().group(group).ok()??;
        state.keys_for(&self.keys().device).into_iter().next()
    }

    pub fn group_promote(&mut self, group: &SpaceId, member: &str) -> Result<(), ActionError> {
        let state = self.my_admin_group(group)?;
        let who = self.resolve_member(&state, member)?;
        match state.role(&who) {
            None => Err(ActionError::Invalid(format!(
                "{who} is not a member of {}",
                state.name
            ))),
            Some(Role::Admin) => Err(ActionError::Invalid(format!(
                "{who} is already an admin of {}",
                state.name
            ))),
            Some(Role::Member) => self.write_control(group, &[Record::Promote { identity: who }]),
        }
    }

    pub fn group_leave(&mut self, group: &SpaceId) -> Result<(), ActionError> {
        self.my_group(group)?;
        let me = self.identity();
        let cutoff = self.store().group_feed_clock(group, &me)?;
        self.write_control(
            group,
            &[Record::Remove {
                identity: me,
                cutoff,
            }],
        )
    }

    pub fn group_rename(
        &mut self,
        group: &SpaceId,
        name: &str,
        about: Option<&str>,
    ) -> Result<(), ActionError> {
        let state = self.my_admin_group(group)?;
        let about = about.unwrap_or(&state.about).to_owned();
        group::records::check_new_info(name, &about).map_err(ActionError::Invalid)?;
        self.write_control(
            group,
            &[Record::Info {
                name: name.to_owned(),
                about,
            }],
        )
    }

    /// Admits `joiner` (asking from `device`) if its proof is good for an
    /// open invite, and seals the group's current key to that device: what
    /// a member does when a peer asks to join.
    pub fn admit(
        &mut self,
        group: &SpaceId,
        invite: &[u8; 32],
        proof: &[u8; 64],
        joiner: IdentityId,
        device: DeviceId,
    ) -> Result<(), JoinRefusal> {
        let me = self.identity();
        let state = match self.store().group(group) {
            Ok(Some(s)) if s.is_member(&me) => s,
            _ => return Err(JoinRefusal::UnknownGroup),
        };
        state.check_join(invite, &joiner, proof, now_ms())?;
        let mut records = vec![Record::Join {
            identity: joiner,
            invite: *invite,
            proof: *proof,
        }];
        if let Some((epoch, key)) = self.current_key(group)
            && let Some(sealed) = key.seal_for(&device)
        {
            records.push(Record::Keys {
                epoch,
                seals: vec![(device, sealed)],
            });
        }
        self.write_control(group, &records).map_err(|e| {
            tracing::warn!(error = %e, "could not record a join");
            JoinRefusal::UnknownGroup
        })
    }

    /// The groups this identity belongs to.
    pub fn my_groups(&self) -> Result<BTreeMap<SpaceId, String>, ActionError> {
        let me = self.identity();
        Ok(self
            .store()
            .groups()?
            .iter()
            .filter(|g| g.is_member(&me))
            .map(|g| (g.id, g.name.clone()))
            .collect())
    }
}
