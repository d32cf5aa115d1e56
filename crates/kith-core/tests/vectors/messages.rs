//! Every `/kith/sync/1` request and response (proto/README.md section 13)
//! and every kind of gossip message (sections 12 and 16), checked both
//! ways: decoded by kith into the values they stand for, and encoded
//! again both by kith and field by field with the protobuf types.

use kith_core::group::JoinRefusal;
use kith_core::sync::{ChangeBatch, Refusal, Request, Response, VersionVector};
use kith_core::{DeviceCert, DocId, IdentityId, IdentityKey, SignedChange, SpaceId, proto};
use prost::Message;

use super::{STORE_SUFFIX, device_public, identity_public, lookup, unhex, vector_cert, vectors};

use proto::sync_request::Request as Req;
use proto::sync_response::Response as Resp;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gossip {
    public_topic: String,
    public: String,
    probe_topic: String,
    probe: String,
}

fn actor() -> Vec<u8> {
    let mut a = device_public().to_vec();
    a.extend_from_slice(&STORE_SUFFIX);
    a
}

fn alice() -> IdentityId {
    IdentityId(identity_public())
}

fn bob() -> IdentityId {
    IdentityKey::from_secret_bytes(&[0x04; 32]).id()
}

fn group() -> SpaceId {
    let v = vectors();
    SpaceId(unhex(&v.group.group_id).try_into().unwrap())
}

fn feed_doc() -> DocId {
    DocId::feed(alice(), SpaceId::PUBLIC, 0)
}

fn request(r: Req) -> Vec<u8> {
    proto::SyncRequest { request: Some(r) }.encode_to_vec()
}

fn response(r: Resp) -> Vec<u8> {
    proto::SyncResponse { response: Some(r) }.encode_to_vec()
}

fn clock(seq: u32) -> Vec<proto::ActorSeq> {
    vec![proto::ActorSeq {
        actor: actor(),
        seq,
    }]
}

/// The frozen bytes are what kith encodes for `value`, what the protobuf
/// types encode for `fields`, and decode back to `value`.
fn check_request(frozen: &str, value: Request, fields: Req) {
    assert_eq!(hex::encode(request(fields)), frozen);
    assert_eq!(hex::encode(value.encode()), frozen);
    assert_eq!(Request::decode(&unhex(frozen)), Ok(value));
}

fn check_response(frozen: &str, value: Response, fields: Resp) {
    assert_eq!(hex::encode(response(fields)), frozen);
    assert_eq!(hex::encode(value.encode()), frozen);
    assert_eq!(Response::decode(&unhex(frozen)), Ok(value));
}

#[test]
fn every_sync_request_encodes_as_specified() {
    let v = vectors();
    let s = &v.sync;
    assert_eq!(s.hello_request, "0a00", "field 1, an empty Hello");
    check_request(
        &s.hello_request,
        Request::Hello,
        Req::Hello(proto::Hello {}),
    );
    check_request(
        &s.versions_request,
        Request::Versions {
            owners: vec![alice()],
            profiles: vec![bob()],
            groups: vec![group()],
        },
        Req::Versions(proto::VersionsRequest {
            owners: vec![alice().0.to_vec()],
            profiles: vec![bob().0.to_vec()],
            groups: vec![group().0.to_vec()],
        }),
    );
    check_request(
        &s.changes_request,
        Request::Changes {
            doc: feed_doc(),
            have: VersionVector::from([(actor(), 1)]),
            max_bytes: 2 * 1024 * 1024,
        },
        Req::Changes(proto::ChangesRequest {
            doc_id: feed_doc().to_bytes().to_vec(),
            have: clock(1),
            max_bytes: 2 * 1024 * 1024,
        }),
    );
    let invite: [u8; 32] = unhex(&v.group.invite_public_key).try_into().unwrap();
    let proof: [u8; 64] = unhex(&v.group.join_proof).try_into().unwrap();
    check_request(
        &s.join_request,
        Request::Join {
            group: group(),
            invite,
            proof,
        },
        Req::Join(proto::JoinRequest {
            group: group().0.to_vec(),
            invite: invite.to_vec(),
            proof: proof.to_vec(),
        }),
    );
    assert!(kith_core::invite::verify_proof(
        &group(),
        &invite,
        &bob(),
        &proof
    ));
}

#[test]
fn every_sync_response_encodes_as_specified() {
    let v = vectors();
    let s = &v.sync;
    let cert = vector_cert(&v);
    check_response(
        &s.hello_response,
        Response::Hello(cert.clone()),
        Resp::Hello(cert.to_proto()),
    );
    let profile = DocId::profile(alice());
    check_response(
        &s.versions_response,
        Response::Versions(vec![
            (feed_doc(), VersionVector::from([(actor(), 4)])),
            (profile, VersionVector::from([(actor(), 1)])),
        ]),
        Resp::Versions(proto::VersionsResponse {
            docs: vec![
                proto::DocVersion {
                    doc_id: feed_doc().to_bytes().to_vec(),
                    clock: clock(4),
                },
                proto::DocVersion {
                    doc_id: profile.to_bytes().to_vec(),
                    clock: clock(1),
                },
            ],
        }),
    );
    // The feed's changes beyond seq 1: the reply, the reaction, its removal.
    let later = [&v.reply.signed, &v.reaction.signed, &v.reaction.removal]
        .map(|cv| SignedChange::decode(&unhex(&cv.signed_change)).unwrap());
    check_response(
        &s.changes_response,
        Response::Changes(ChangeBatch {
            changes: later.to_vec(),
            certificates: vec![cert.clone()],
            more: false,
        }),
        Resp::Changes(proto::ChangesResponse {
            changes: later.iter().map(SignedChange::to_proto).collect(),
            certificates: vec![cert.to_proto()],
            more: false,
        }),
    );
    let Ok(Response::Changes(batch)) = Response::decode(&unhex(&s.changes_response)) else {
        panic!("a changes response");
    };
    let starts: Vec<u64> = batch
        .changes
        .into_iter()
        .map(|c| {
            let verified = c.verify(&lookup(&cert)).expect("each change verifies");
            assert_eq!(verified.doc(), feed_doc());
            verified.header().start_op
        })
        .collect();
    assert!(starts.is_sorted(), "sorted by start_op: {starts:?}");
    check_response(
        &s.refused_response,
        Response::Refused(Refusal::Join(JoinRefusal::Expired)),
        Resp::Refusal(proto::Refusal {
            code: proto::RefusalCode::RefusalExpired as i32,
            reason: "the invite has expired".into(),
        }),
    );
    check_response(
        &s.joined_response,
        Response::Joined,
        Resp::Joined(proto::Joined {}),
    );
}

#[test]
fn a_public_gossip_message_is_the_change_and_its_signers_certificate() {
    let v = vectors();
    let g = &v.gossip;
    assert_eq!(g.public_topic, "kith/public/v1");
    let fields = proto::GossipChange {
        change: Some(proto::SignedChange::decode(unhex(&v.signed_change).as_slice()).unwrap()),
        certificate: Some(
            proto::DeviceCertificate::decode(unhex(&v.certificate).as_slice()).unwrap(),
        ),
    };
    assert_eq!(hex::encode(fields.encode_to_vec()), g.public);

    let message = proto::GossipChange::decode(unhex(&g.public).as_slice()).unwrap();
    let cert =
        DeviceCert::from_proto(&message.certificate.unwrap()).expect("the certificate verifies");
    let change = SignedChange::from_proto(message.change.unwrap()).expect("the envelope reads");
    assert_eq!(cert.device, change.device, "the signer's own certificate");
    let verified = change.verify(&lookup(&cert)).expect("the change verifies");
    assert_eq!(verified.doc(), feed_doc());
    assert!(g.public.len() / 2 > 256, "over the IDONTWANT threshold");

    assert_eq!(g.probe_topic, "kith/probe/v1");
    assert_eq!(unhex(&g.probe), 1u64.to_be_bytes());
}
