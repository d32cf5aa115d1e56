//! The records of a group's control document, and how they sit in automerge.
//!
//! Each record is one root key whose value is the protobuf encoding of the
//! record (`proto/kith.proto`, "Group control records"); the key's prefix
//! names the record type. Records are only ever added: the control document
//! is a signed, replicated log, and what it means (who is a member, which
//! invites are open) is computed by replaying it ([`super::state`]), never
//! read from the document's current values, which concurrent writers could
//! overwrite.

use automerge::{AutoCommit, Change, ScalarValue, legacy, transaction::Transactable};
use prost::Message;

use crate::{DeviceId, IdentityId, proto};

/// Longest group name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest group description, in characters.
pub const MAX_ABOUT_CHARS: usize = 1000;
/// Most uses one invite may allow.
pub const MAX_INVITE_USES: u32 = 10_000;
/// Most actors one removal's cutoff may list.
pub const MAX_CUTOFF_ENTRIES: usize = 1024;
/// Most devices one key record may seal to.
pub const MAX_SEALS: usize = 4096;
/// Bytes of one sealed epoch key: ephemeral key, tag, key.
pub const SEALED_KEY_LEN: usize = 80;

/// A member's powers in a group.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and posts; may admit whoever holds a valid invite.
    Member,
    /// Also invites, revokes, removes, promotes and renames.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            other => Err(format!("`{other}` is not a role: use member or admin")),
        }
    }
}

/// One entry of a group's control log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Genesis {
        creator: IdentityId,
        nonce: [u8; 16],
    },
    Info {
        name: String,
        about: String,
    },
    Invite {
        public_key: [u8; 32],
        expires_at_ms: u64,
        uses: u32,
        role: Role,
    },
    Revoke {
        public_key: [u8; 32],
    },
    Join {
        identity: IdentityId,
        invite: [u8; 32],
        proof: [u8; 64],
    },
    Promote {
        identity: IdentityId,
    },
    Remove {
        identity: IdentityId,
        /// Per device actor of the removed member's group feeds: the last
        /// sequence number the remover had seen.
        cutoff: Vec<(Vec<u8>, u32)>,
    },
    Keys {
        epoch: u32,
        /// The epoch key sealed to each device.
        seals: Vec<(DeviceId, Vec<u8>)>,
    },
}

/// Why a root key and value are not a control record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("`{0}` is not a control record key")]
    UnknownKey(String),
    #[error("control record `{0}` is not valid protobuf")]
    Protobuf(String),
    #[error("control record `{key}` has a bad field: {field}")]
    Field { key: String, field: &'static str },
    #[error("control record `{0}` is stored under the wrong key")]
    KeyMismatch(String),
}

pub const GENESIS_KEY: &str = "g";
pub const INFO_KEY: &str = "info";
const INVITE_PREFIX: &str = "i/";
const REVOKE_PREFIX: &str = "v/";
const JOIN_PREFIX: &str = "j/";
const PROMOTE_PREFIX: &str = "a/";
const REMOVE_PREFIX: &str = "x/";
const KEYS_PREFIX: &str = "k/";

/// Checks a group's name and description against the limits: what every
/// member checks of an `info` record, whoever wrote it.
pub fn check_info(name: &str, about: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("a group needs a name".into());
    }
    let n = name.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(format!(
            "group name is {n} characters; the limit is {MAX_NAME_CHARS}"
        ));
    }
    let a = about.chars().count();
    if a > MAX_ABOUT_CHARS {
        return Err(format!(
            "group description is {a} characters; the limit is {MAX_ABOUT_CHARS}"
        ));
    }
    Ok(())
}

/// Checks a group's name and description as a member writes them: the
/// limits of [`check_info`], and a name that shows as what it says
/// ([`crate::text::check_name`]). Members decode others' records with
/// [`check_info`] alone: those are signed, and refusing some would make
/// members disagree about the group's name ([`crate::text`] says more).
pub fn check_new_info(name: &str, about: &str) -> Result<(), String> {
    check_info(name, about)?;
    crate::text::check_name(name).map_err(|e| e.to_string())
}

fn role_to_proto(role: Role) -> i32 {
    match role {
        Role::Member => proto::GroupRole::Member as i32,
        Role::Admin => proto::GroupRole::Admin as i32,
    }
}

impl Record {
    /// The root key this record is stored under.
    pub fn key(&self) -> String {
        match self {
            Record::Genesis { .. } => GENESIS_KEY.to_owned(),
            Record::Info { .. } => INFO_KEY.to_owned(),
            Record::Invite { public_key, .. } => format!("{INVITE_PREFIX}{}", hex(public_key)),
            Record::Revoke { public_key } => format!("{REVOKE_PREFIX}{}", hex(public_key)),
            Record::Join { identity, .. } => format!("{JOIN_PREFIX}{}", hex(&identity.0)),
            Record::Promote { identity } => format!("{PROMOTE_PREFIX}{}", hex(&identity.0)),
            Record::Remove { identity, .. } => format!("{REMOVE_PREFIX}{}", hex(&identity.0)),
            Record::Keys { epoch, .. } => format!("{KEYS_PREFIX}{epoch}"),
        }
    }

    /// The record's protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Record::Genesis { creator, nonce } => proto::GroupGenesis {
                creator: creator.0.to_vec(),
                nonce: nonce.to_vec(),
            }
            .encode_to_vec(),
            Record::Info { name, about } => proto::GroupInfo {
                name: name.clone(),
                about: about.clone(),
            }
            .encode_to_vec(),
            Record::Invite {
                public_key,
                expires_at_ms,
                uses,
                role,
            } => proto::GroupInvite {
                public_key: public_key.to_vec(),
                expires_at_ms: *expires_at_ms,
                uses: *uses,
                role: role_to_proto(*role),
            }
            .encode_to_vec(),
            Record::Revoke { public_key } => proto::GroupRevoke {
                public_key: public_key.to_vec(),
            }
            .encode_to_vec(),
            Record::Join {
                identity,
                invite,
                proof,
            } => proto::GroupJoin {
                identity: identity.0.to_vec(),
                invite: invite.to_vec(),
                proof: proof.to_vec(),
            }
            .encode_to_vec(),
            Record::Promote { identity } => proto::GroupPromote {
                identity: identity.0.to_vec(),
            }
            .encode_to_vec(),
            Record::Remove { identity, cutoff } => proto::GroupRemove {
                identity: identity.0.to_vec(),
                cutoff: cutoff
                    .iter()
                    .map(|(actor, seq)| proto::ActorSeq {
                        actor: actor.clone(),
                        seq: *seq,
                    })
                    .collect(),
            }
            .encode_to_vec(),
            Record::Keys { epoch, seals } => proto::GroupKeys {
                epoch: *epoch,
                seals: seals
                    .iter()
                    .map(|(device, sealed)| proto::SealedKey {
                        device: device.0.to_vec(),
                        sealed: sealed.clone(),
                    })
                    .collect(),
            }
            .encode_to_vec(),
        }
    }

    /// Reads the record stored under `key`, checking every field and that
    /// the key is the one the record belongs under.
    pub fn decode(key: &str, bytes: &[u8]) -> Result<Record, RecordError> {
        let bad = |field| RecordError::Field {
            key: key.to_owned(),
            field,
        };
        let pb = |_| RecordError::Protobuf(key.to_owned());
        let record = if key == GENESIS_KEY {
            let p = proto::GroupGenesis::decode(bytes).map_err(pb)?;
            Record::Genesis {
                creator: IdentityId::from_slice(&p.creator).ok_or_else(|| bad("creator"))?,
                nonce: p.nonce.try_into().map_err(|_| bad("nonce"))?,
            }
        } else if key == INFO_KEY {
            let p = proto::GroupInfo::decode(bytes).map_err(pb)?;
            check_info(&p.name, &p.about).map_err(|_| bad("name or about"))?;
            Record::Info {
                name: p.name,
                about: p.about,
            }
        } else if key.starts_with(INVITE_PREFIX) {
            let p = proto::GroupInvite::decode(bytes).map_err(pb)?;
            if p.uses == 0 || p.uses > MAX_INVITE_USES {
                return Err(bad("uses"));
            }
            Record::Invite {
                public_key: p.public_key.try_into().map_err(|_| bad("public_key"))?,
                expires_at_ms: p.expires_at_ms,
                uses: p.uses,
                role: match proto::GroupRole::try_from(p.role) {
                    Ok(proto::GroupRole::Member) => Role::Member,
                    Ok(proto::GroupRole::Admin) => Role::Admin,
                    Err(_) => return Err(bad("role")),
                },
            }
        } else if key.starts_with(REVOKE_PREFIX) {
            let p = proto::GroupRevoke::decode(bytes).map_err(pb)?;
            Record::Revoke {
                public_key: p.public_key.try_into().map_err(|_| bad("public_key"))?,
            }
        } else if key.starts_with(JOIN_PREFIX) {
            let p = proto::GroupJoin::decode(bytes).map_err(pb)?;
            Record::Join {
                identity: IdentityId::from_slice(&p.identity).ok_or_else(|| bad("identity"))?,
                invite: p.invite.try_into().map_err(|_| bad("invite"))?,
                proof: p.proof.try_into().map_err(|_| bad("proof"))?,
            }
        } else if key.starts_with(PROMOTE_PREFIX) {
            let p = proto::GroupPromote::decode(bytes).map_err(pb)?;
            Record::Promote {
                identity: IdentityId::from_slice(&p.identity).ok_or_else(|| bad("identity"))?,
            }
        } else if key.starts_with(REMOVE_PREFIX) {
            let p = proto::GroupRemove::decode(bytes).map_err(pb)?;
            if p.cutoff.len() > MAX_CUTOFF_ENTRIES {
                return Err(bad("cutoff"));
            }
            Record::Remove {
                identity: IdentityId::from_slice(&p.identity).ok_or_else(|| bad("identity"))?,
                cutoff: p.cutoff.into_iter().map(|e| (e.actor, e.seq)).collect(),
            }
        } else if key.starts_with(KEYS_PREFIX) {
            let p = proto::GroupKeys::decode(bytes).map_err(pb)?;
            if p.seals.len() > MAX_SEALS {
                return Err(bad("seals"));
            }
            Record::Keys {
                epoch: p.epoch,
                seals: p
                    .seals
                    .into_iter()
                    .map(|s| {
                        let device =
                            DeviceId::from_slice(&s.device).ok_or_else(|| bad("device"))?;
                        if s.sealed.len() != SEALED_KEY_LEN {
                            return Err(bad("sealed"));
                        }
                        Ok((device, s.sealed))
                    })
                    .collect::<Result<_, _>>()?,
            }
        } else {
            return Err(RecordError::UnknownKey(key.to_owned()));
        };
        if !record.stored_under(key) {
            return Err(RecordError::KeyMismatch(key.to_owned()));
        }
        Ok(record)
    }

    /// Whether `key` is one this record may be stored under: its own key,
    /// followed, for records that can recur (the same member removed twice,
    /// rejoining with the same invite), by `/` and a tag of up to 32
    /// lower-case hex digits.
    fn stored_under(&self, key: &str) -> bool {
        let base = self.key();
        match key.strip_prefix(base.as_str()) {
            Some("") => true,
            Some(rest) => rest.strip_prefix('/').is_some_and(|tag| {
                (1..=32).contains(&tag.len())
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            }),
            None => false,
        }
    }

    /// Adds this record to a control document (in its pending transaction).
    /// Records that can recur get a random tag on their key: putting an
    /// identical value under an existing key would be no change at all, and
    /// a record that recurs must be a new entry in the log.
    pub fn write(&self, doc: &mut AutoCommit) -> Result<(), automerge::AutomergeError> {
        let key = match self {
            Record::Genesis { .. } | Record::Info { .. } => self.key(),
            _ => format!("{}/{}", self.key(), hex(&tag())),
        };
        doc.put(automerge::ROOT, key, ScalarValue::Bytes(self.encode()))
    }
}

/// The records one change adds, genesis first, then in the order the
/// change's encoding lists them. Anything else a change holds (other
/// operations, undecodable values) means nothing to the group and is
/// skipped: the change's author cannot make it mean more.
pub fn records_of(change: &Change) -> Vec<Record> {
    let mut records: Vec<Record> = change
        .decode()
        .operations
        .iter()
        .filter_map(|op| match (&op.obj, &op.key, &op.action) {
            (
                legacy::ObjectId::Root,
                legacy::Key::Map(key),
                legacy::OpType::Put(ScalarValue::Bytes(bytes)),
            ) => Record::decode(key, bytes).ok(),
            _ => None,
        })
        .collect();
    records.sort_by_key(|r| !matches!(r, Record::Genesis { .. }));
    records
}

/// Eight random bytes; should the system's source fail, the clock's
/// nanoseconds still make a repeat by one writer unlikely.
fn tag() -> [u8; 8] {
    let mut t = [0u8; 8];
    if getrandom::fill(&mut t).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        t = (nanos as u64).to_le_bytes();
    }
    t
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_a_change() {
        let alice = IdentityId([1; 32]);
        let records = vec![
            Record::Genesis {
                creator: alice,
                nonce: [2; 16],
            },
            Record::Info {
                name: "Tuesday climbers".into(),
                about: "".into(),
            },
            Record::Invite {
                public_key: [3; 32],
                expires_at_ms: 99,
                uses: 2,
                role: Role::Admin,
            },
            Record::Revoke {
                public_key: [3; 32],
            },
            Record::Join {
                identity: IdentityId([4; 32]),
                invite: [3; 32],
                proof: [5; 64],
            },
            Record::Promote {
                identity: IdentityId([4; 32]),
            },
            Record::Remove {
                identity: IdentityId([4; 32]),
                cutoff: vec![(vec![6; 40], 7)],
            },
            Record::Keys {
                epoch: 3,
                seals: vec![(DeviceId([8; 32]), vec![9; SEALED_KEY_LEN])],
            },
        ];
        let mut doc = AutoCommit::new();
        for r in &records {
            r.write(&mut doc).unwrap();
        }
        doc.commit();
        let change = doc.get_last_local_change().unwrap();
        let mut read = records_of(&change);
        assert_eq!(read[0], records[0], "genesis comes first");
        let mut written = records.clone();
        let by_key = |r: &Record| r.key();
        read.sort_by_key(by_key);
        written.sort_by_key(by_key);
        assert_eq!(read, written);
    }

    #[test]
    fn a_new_group_name_may_not_hide_what_it_says() {
        assert_eq!(
            check_new_info("Tuesday climbers", "ropes\nand chalk"),
            Ok(())
        );
        assert_eq!(
            check_new_info("  ", ""),
            Err("a group needs a name".to_owned())
        );
        for (name, says) in [
            (
                "climbers\nadmins",
                "a name may not contain control characters",
            ),
            (
                "\u{1b}[2Jclimbers",
                "a name may not contain control characters",
            ),
            (
                "climbers\u{9b}",
                "a name may not contain control characters",
            ),
            (
                "climbers\u{202E}",
                "a name may not contain bidirectional text controls",
            ),
            ("\u{200B}", "a name needs visible characters"),
        ] {
            let refused = check_new_info(name, "").expect_err(name);
            assert!(refused.starts_with(says), "{name:?}: {refused}");
        }
    }

    #[test]
    fn an_info_record_someone_wrote_with_a_control_character_still_decodes() {
        let info = Record::Info {
            name: "climbers\u{1b}[2J".into(),
            about: "".into(),
        };
        assert_eq!(Record::decode(INFO_KEY, &info.encode()), Ok(info));
    }

    #[test]
    fn bad_records_are_refused_with_the_reason() {
        let invite = Record::Invite {
            public_key: [3; 32],
            expires_at_ms: 99,
            uses: 0,
            role: Role::Member,
        };
        assert_eq!(
            Record::decode(&invite.key(), &invite.encode()),
            Err(RecordError::Field {
                key: invite.key(),
                field: "uses"
            })
        );
        let join = Record::Join {
            identity: IdentityId([4; 32]),
            invite: [3; 32],
            proof: [5; 64],
        };
        // Stored under someone else's key: a writer cannot make one record
        // shadow another's.
        let other = format!("j/{}", hex(&[9; 32]));
        assert_eq!(
            Record::decode(&other, &join.encode()),
            Err(RecordError::KeyMismatch(other.clone()))
        );
        assert!(matches!(
            Record::decode("zzz", b""),
            Err(RecordError::UnknownKey(_))
        ));
        assert!(matches!(
            Record::decode(GENESIS_KEY, &[0xff, 0xff]),
            Err(RecordError::Protobuf(_))
        ));
    }
}
