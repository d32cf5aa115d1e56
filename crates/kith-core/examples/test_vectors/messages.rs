//! Every request and response of `/kith/sync/1` (`proto/README.md` section
//! 13) and every kind of message on a gossip topic (sections 12 and 16).

use kith_core::group::JoinRefusal;
use kith_core::sync::{ChangeBatch, Refusal, Request, Response, VersionVector};
use kith_core::{DocId, SignedChange};

use crate::groups::{self, Built};
use crate::{Base, person, profile};

/// What kith asks for in one changes request: 2 MiB.
pub const MAX_BYTES: u32 = 2 * 1024 * 1024;
/// A join refusal, by its code (`REFUSAL_EXPIRED`) with its reason.
pub const REFUSAL: JoinRefusal = JoinRefusal::Expired;
/// The 8-byte big-endian nonce of a probe message (kith's benchmarks).
pub const PROBE_NONCE: u64 = 1;

#[derive(Debug, serde::Serialize)]
pub struct Sync {
    hello_request: String,
    versions_request: String,
    changes_request: String,
    join_request: String,
    hello_response: String,
    versions_response: String,
    changes_response: String,
    refused_response: String,
    joined_response: String,
}

#[derive(Debug, serde::Serialize)]
pub struct Gossip {
    public_topic: &'static str,
    public: String,
    probe_topic: &'static str,
    probe: String,
}

/// The actor's clock after `seq` changes.
fn clock(base: &Base, seq: u32) -> VersionVector {
    VersionVector::from([(base.feed.get_actor().to_bytes().to_vec(), seq)])
}

/// `later` are the public feed's changes after the first post, in order.
pub fn sync(
    base: &Base,
    later: &[SignedChange],
    group: &Built,
) -> Result<Sync, Box<dyn std::error::Error>> {
    let alice = base.identity.id();
    let bob = person(profile::FOLLOWED_SECRET_BYTE);
    let requests = [
        Request::Hello,
        Request::Versions {
            owners: vec![alice],
            profiles: vec![bob],
            groups: vec![group.id],
        },
        Request::Changes {
            doc: base.doc_id,
            have: clock(base, 1),
            max_bytes: MAX_BYTES,
        },
        Request::Join {
            group: group.id,
            invite: group.invite_public,
            proof: group.proof,
        },
    ]
    .map(|r| hex::encode(r.encode()));
    let feed_seq = 1 + u32::try_from(later.len())?;
    let responses = [
        Response::Hello(base.cert.clone()),
        Response::Versions(vec![
            (base.doc_id, clock(base, feed_seq)),
            (DocId::profile(alice), clock(base, 1)),
        ]),
        Response::Changes(ChangeBatch {
            changes: later.to_vec(),
            certificates: vec![base.cert.clone()],
            more: false,
        }),
        Response::Refused(Refusal::Join(REFUSAL)),
        Response::Joined,
    ]
    .map(|r| hex::encode(r.encode()));
    let [
        hello_request,
        versions_request,
        changes_request,
        join_request,
    ] = requests;
    let [
        hello_response,
        versions_response,
        changes_response,
        refused_response,
        joined_response,
    ] = responses;
    Ok(Sync {
        hello_request,
        versions_request,
        changes_request,
        join_request,
        hello_response,
        versions_response,
        changes_response,
        refused_response,
        joined_response,
    })
}

/// The first post as published on the public topic, and a probe message.
/// (A group's topic carries `group.group_gossip`.)
pub fn gossip(base: &Base) -> Gossip {
    Gossip {
        public_topic: "kith/public/v1",
        public: hex::encode(groups::gossip_change(&base.post, base)),
        probe_topic: "kith/probe/v1",
        probe: hex::encode(PROBE_NONCE.to_be_bytes()),
    }
}
