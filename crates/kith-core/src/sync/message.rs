//! The `/kith/sync/1` request and response types and their protobuf
//! encoding, with every length checked (proto/README.md, "Sync").

use prost::Message;

use super::{ChangeBatch, Refusal, VersionVector};
use crate::doc::DocId;
use crate::{DeviceCert, IdentityId, SignedChange, SpaceId, proto};

/// Largest encoded request accepted.
pub const MAX_REQUEST_BYTES: usize = 512 * 1024;
/// Largest encoded response accepted.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Most identities one versions request may name.
pub const MAX_OWNERS: usize = 8192;
/// Most actors one version vector may list.
pub const MAX_CLOCK_ENTRIES: usize = 1024;
/// Most documents one versions response may list.
pub const MAX_DOCS: usize = 100_000;
/// Most groups one versions request may name.
pub const MAX_GROUPS: usize = 1024;

/// A request of the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Who are you?
    Hello,
    /// Which documents of `owners` (all kinds the asker may receive) and of
    /// `profiles` (profile only) do you hold, at which versions?
    Versions {
        owners: Vec<IdentityId>,
        profiles: Vec<IdentityId>,
        /// Groups whose documents the asker wants, as a member.
        groups: Vec<SpaceId>,
    },
    /// The changes of `doc` beyond `have`, at most about `max_bytes`.
    Changes {
        doc: DocId,
        have: VersionVector,
        max_bytes: u32,
    },
    /// Admit me to `group`: `proof` shows I hold the secret of `invite`.
    Join {
        group: SpaceId,
        invite: [u8; 32],
        proof: [u8; 64],
    },
}

/// A response of the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Hello(DeviceCert),
    Versions(Vec<(DocId, VersionVector)>),
    Changes(ChangeBatch),
    Refused(Refusal),
    Joined,
}

/// Why bytes from a peer are not a sync message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("message is {0} bytes, over the limit")]
    TooLarge(usize),
    #[error("message is not valid protobuf")]
    Protobuf,
    #[error("message is empty")]
    Empty,
    #[error("bad field: {0}")]
    Field(String),
    #[error("change {index} of the response: {error}")]
    Change {
        index: usize,
        error: crate::VerifyError,
    },
    #[error("message lists {0} entries, over the limit")]
    TooMany(usize),
}

fn ids(raw: Vec<Vec<u8>>) -> Result<Vec<IdentityId>, DecodeError> {
    if raw.len() > MAX_OWNERS {
        return Err(DecodeError::TooMany(raw.len()));
    }
    raw.iter()
        .map(|b| IdentityId::from_slice(b).ok_or_else(|| DecodeError::Field("identity".into())))
        .collect()
}

fn clock_to_proto(vv: &VersionVector) -> Vec<proto::ActorSeq> {
    vv.iter()
        .map(|(actor, seq)| proto::ActorSeq {
            actor: actor.clone(),
            seq: *seq,
        })
        .collect()
}

fn clock_from_proto(entries: Vec<proto::ActorSeq>) -> Result<VersionVector, DecodeError> {
    if entries.len() > MAX_CLOCK_ENTRIES {
        return Err(DecodeError::TooMany(entries.len()));
    }
    let mut vv = VersionVector::new();
    for e in entries {
        if !(33..=crate::chunk::MAX_ACTOR_LEN).contains(&e.actor.len()) {
            return Err(DecodeError::Field("actor".into()));
        }
        vv.insert(e.actor, e.seq);
    }
    Ok(vv)
}

fn doc(bytes: &[u8]) -> Result<DocId, DecodeError> {
    DocId::from_bytes(bytes).map_err(|e| DecodeError::Field(e.to_string()))
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        use proto::sync_request::Request as R;
        let r = match self {
            Request::Hello => R::Hello(proto::Hello {}),
            Request::Versions {
                owners,
                profiles,
                groups,
            } => R::Versions(proto::VersionsRequest {
                owners: owners.iter().map(|i| i.0.to_vec()).collect(),
                profiles: profiles.iter().map(|i| i.0.to_vec()).collect(),
                groups: groups.iter().map(|g| g.0.to_vec()).collect(),
            }),
            Request::Join {
                group,
                invite,
                proof,
            } => R::Join(proto::JoinRequest {
                group: group.0.to_vec(),
                invite: invite.to_vec(),
                proof: proof.to_vec(),
            }),
            Request::Changes {
                doc,
                have,
                max_bytes,
            } => R::Changes(proto::ChangesRequest {
                doc_id: doc.to_bytes().to_vec(),
                have: clock_to_proto(have),
                max_bytes: *max_bytes,
            }),
        };
        proto::SyncRequest { request: Some(r) }.encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        use proto::sync_request::Request as R;
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let p = proto::SyncRequest::decode(bytes).map_err(|_| DecodeError::Protobuf)?;
        Ok(match p.request.ok_or(DecodeError::Empty)? {
            R::Hello(_) => Request::Hello,
            R::Versions(v) => {
                if v.groups.len() > MAX_GROUPS {
                    return Err(DecodeError::TooMany(v.groups.len()));
                }
                Request::Versions {
                    owners: ids(v.owners)?,
                    profiles: ids(v.profiles)?,
                    groups: v
                        .groups
                        .into_iter()
                        .map(|g| {
                            Ok(SpaceId(
                                g.try_into()
                                    .map_err(|_| DecodeError::Field("group".into()))?,
                            ))
                        })
                        .collect::<Result<_, DecodeError>>()?,
                }
            }
            R::Join(j) => Request::Join {
                group: SpaceId(
                    j.group
                        .try_into()
                        .map_err(|_| DecodeError::Field("group".into()))?,
                ),
                invite: j
                    .invite
                    .try_into()
                    .map_err(|_| DecodeError::Field("invite".into()))?,
                proof: j
                    .proof
                    .try_into()
                    .map_err(|_| DecodeError::Field("proof".into()))?,
            },
            R::Changes(c) => Request::Changes {
                doc: doc(&c.doc_id)?,
                have: clock_from_proto(c.have)?,
                max_bytes: c.max_bytes,
            },
        })
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        use proto::sync_response::Response as R;
        let r = match self {
            Response::Hello(cert) => R::Hello(cert.to_proto()),
            Response::Versions(docs) => R::Versions(proto::VersionsResponse {
                docs: docs
                    .iter()
                    .map(|(d, vv)| proto::DocVersion {
                        doc_id: d.to_bytes().to_vec(),
                        clock: clock_to_proto(vv),
                    })
                    .collect(),
            }),
            Response::Changes(batch) => R::Changes(proto::ChangesResponse {
                changes: batch.changes.iter().map(SignedChange::to_proto).collect(),
                certificates: batch
                    .certificates
                    .iter()
                    .map(DeviceCert::to_proto)
                    .collect(),
                more: batch.more,
            }),
            Response::Refused(refusal) => refusal.to_proto(),
            Response::Joined => R::Joined(proto::Joined {}),
        };
        proto::SyncResponse { response: Some(r) }.encode_to_vec()
    }

    /// Decodes a response. Certificates are verified here; changes are
    /// checked later, by the store, on the one verification path.
    pub fn decode(bytes: &[u8]) -> Result<Response, DecodeError> {
        use proto::sync_response::Response as R;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let p = proto::SyncResponse::decode(bytes).map_err(|_| DecodeError::Protobuf)?;
        Ok(match p.response.ok_or(DecodeError::Empty)? {
            R::Hello(c) => Response::Hello(
                DeviceCert::from_proto(&c).map_err(|e| DecodeError::Field(e.to_string()))?,
            ),
            R::Versions(v) => {
                if v.docs.len() > MAX_DOCS {
                    return Err(DecodeError::TooMany(v.docs.len()));
                }
                Response::Versions(
                    v.docs
                        .into_iter()
                        .map(|d| Ok((doc(&d.doc_id)?, clock_from_proto(d.clock)?)))
                        .collect::<Result<_, DecodeError>>()?,
                )
            }
            R::Changes(c) => Response::Changes(ChangeBatch {
                changes: c
                    .changes
                    .into_iter()
                    .enumerate()
                    .map(|(index, s)| {
                        SignedChange::from_proto(s)
                            .map_err(|error| DecodeError::Change { index, error })
                    })
                    .collect::<Result<_, _>>()?,
                certificates: c
                    .certificates
                    .iter()
                    .map(|p| {
                        DeviceCert::from_proto(p).map_err(|e| DecodeError::Field(e.to_string()))
                    })
                    .collect::<Result<_, _>>()?,
                more: c.more,
            }),
            R::Refused(reason) => Response::Refused(Refusal::other(&reason)),
            R::Refusal(r) => Response::Refused(Refusal::from_proto(r)),
            R::Joined(_) => Response::Joined,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceKey, IdentityKey, SpaceId};

    #[test]
    fn requests_and_responses_round_trip() {
        let alice = IdentityKey::from_secret_bytes(&[1; 32]);
        let device = DeviceKey::from_secret_bytes(&[2; 32]);
        let doc = DocId::feed(alice.id(), SpaceId::PUBLIC, 3);
        let have = VersionVector::from([(vec![7; 40], 12)]);
        for r in [
            Request::Hello,
            Request::Versions {
                owners: vec![alice.id()],
                profiles: vec![],
                groups: vec![SpaceId([9; 32])],
            },
            Request::Join {
                group: SpaceId([9; 32]),
                invite: [3; 32],
                proof: [4; 64],
            },
            Request::Changes {
                doc,
                have: have.clone(),
                max_bytes: 1000,
            },
        ] {
            assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        }
        let cert = DeviceCert::issue(&alice, &device, 5);
        for r in [
            Response::Hello(cert.clone()),
            Response::Versions(vec![(doc, have)]),
            Response::Changes(ChangeBatch {
                changes: vec![],
                certificates: vec![cert],
                more: true,
            }),
            Response::Refused(Refusal::other("no")),
            Response::Refused(Refusal::Unidentified),
            Response::Refused(Refusal::Join(crate::group::JoinRefusal::Expired)),
            Response::Joined,
        ] {
            assert_eq!(Response::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(Request::decode(&[0xff, 0xff]), Err(DecodeError::Protobuf));
        assert_eq!(Request::decode(&[]), Err(DecodeError::Empty));
        assert!(matches!(
            Request::decode(&vec![0; MAX_REQUEST_BYTES + 1]),
            Err(DecodeError::TooLarge(_))
        ));
        let bad_owner = proto::SyncRequest {
            request: Some(proto::sync_request::Request::Versions(
                proto::VersionsRequest {
                    owners: vec![vec![1; 5]],
                    profiles: vec![],
                    groups: vec![],
                },
            )),
        };
        assert!(matches!(
            Request::decode(&bad_owner.encode_to_vec()),
            Err(DecodeError::Field(_))
        ));
    }
}
