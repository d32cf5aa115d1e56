//! Replies, reactions and a post whose text is a Text object
//! (proto/README.md section 9.1), checked both ways.

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ScalarValue};
use kith_core::schema::feed;
use kith_core::{Body, DocId, IdentityId, PostId, SpaceId};
use prost::Message;

use super::{
    COMMIT_TIME_MS, ChangeVector, POST_AT_MS, POST_KEY, POST_SALT, POST_TEXT, apply, check_signed,
    commit, find, identity_public, lookup, new_doc, post_body, unhex, vector_cert, vectors,
};

const REPLY_KEY: &str = "vectorreply";
const REPLY_TEXT: &str = "hello back";
const REPLY_AT_MS: u64 = 1_700_000_060_000;
const REPLY_SALT: [u8; 16] = [0x05; 16];
const DELETION_TIME_MS: i64 = 1_700_000_240_000;
const REACTION: &str = "👍";
const REACTION_TIME_MS: i64 = 1_700_000_120_000;
const UNREACTION_TIME_MS: i64 = 1_700_000_180_000;
const TEXT_OBJECT_KEY: &str = "textobject";
const TEXT_OBJECT_TEXT: &str = "written as automerge-js writes a string";
const TEXT_OBJECT_AT_MS: i64 = 1_700_000_000_000;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    post_key: String,
    text: String,
    salt: String,
    at_ms: u64,
    commit_time_ms: i64,
    parent: String,
    post_id: String,
    pub(crate) signed: ChangeVector,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reaction {
    emoji: String,
    key: String,
    commit_time_ms: i64,
    pub(crate) signed: ChangeVector,
    removal_commit_time_ms: i64,
    pub(crate) removal: ChangeVector,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deletion {
    commit_time_ms: i64,
    signed: ChangeVector,
    erased_post: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextObjectPost {
    doc_id: String,
    post_key: String,
    text: String,
    at_ms: i64,
    commit_time_ms: i64,
    pub(crate) signed: ChangeVector,
}

fn feed_doc() -> DocId {
    DocId::feed(IdentityId(identity_public()), SpaceId::PUBLIC, 0)
}

fn first_post() -> PostId {
    PostId::derive(&feed_doc(), POST_KEY)
}

/// The public feed as the vectors write it, up to `changes` changes after
/// the first post: (the changes, the document).
fn write_feed(changes: usize) -> Vec<automerge::Change> {
    let mut doc = new_doc();
    let body = Body::with_salt(POST_SALT, POST_TEXT);
    feed::create_post_with(&mut doc, POST_KEY, &body, POST_AT_MS, None).unwrap();
    let mut out = vec![commit(&mut doc, COMMIT_TIME_MS)];
    feed::create_post_with(
        &mut doc,
        REPLY_KEY,
        &Body::with_salt(REPLY_SALT, REPLY_TEXT),
        REPLY_AT_MS,
        Some(first_post()),
    )
    .unwrap();
    out.push(commit(&mut doc, REPLY_AT_MS as i64));
    feed::react(&mut doc, &first_post(), REACTION).unwrap();
    out.push(commit(&mut doc, REACTION_TIME_MS));
    feed::unreact(&mut doc, &first_post(), REACTION).unwrap();
    out.push(commit(&mut doc, UNREACTION_TIME_MS));
    out.truncate(changes + 1);
    out
}

#[test]
fn a_reply_names_its_parent_by_post_id_and_depends_on_it() {
    let v = vectors();
    let r = &v.reply;
    assert_eq!(
        (
            r.post_key.as_str(),
            r.text.as_str(),
            r.at_ms,
            r.commit_time_ms
        ),
        (REPLY_KEY, REPLY_TEXT, REPLY_AT_MS, REPLY_AT_MS as i64)
    );
    assert_eq!(unhex(&r.salt), REPLY_SALT);
    assert_eq!(
        r.signed.bodies,
        vec![hex::encode(
            [&REPLY_SALT[..], REPLY_TEXT.as_bytes()].concat()
        )]
    );
    assert_eq!(r.parent, v.post_id);
    assert_eq!(
        r.post_id,
        PostId::derive(&feed_doc(), REPLY_KEY).to_string()
    );

    let written = write_feed(1);
    let verified = check_signed(&r.signed, feed_doc(), &written[1]);
    assert_eq!(verified.header().seq, 2);
    assert_eq!(verified.header().deps, vec![written[0].hash().0]);
    let raw = unhex(&r.signed.change);
    find(&raw, &first_post().0); // the parent's 16 bytes are in the change

    let first = v.first_change();
    let doc = apply(&[&first, &r.signed]);
    let reply = feed::post_state(&doc, REPLY_KEY).expect("the reply is a post");
    assert_eq!(reply.reply_to, Some(first_post()));
    let body = Body::with_salt(REPLY_SALT, REPLY_TEXT);
    assert_eq!(
        reply.text.map(|(t, _)| t),
        Some(feed::PostText::Body(body.hash()))
    );
    assert_eq!(reply.at_ms, REPLY_AT_MS);
    assert!(!reply.deleted);
}

#[test]
fn a_reaction_is_one_root_key_of_lowercase_post_id_and_emoji() {
    let v = vectors();
    let r = &v.reaction;
    assert_eq!(r.emoji, REACTION);
    assert_eq!(
        (r.commit_time_ms, r.removal_commit_time_ms),
        (REACTION_TIME_MS, UNREACTION_TIME_MS)
    );
    assert_eq!(r.key, format!("r/{}/{REACTION}", v.post_id));
    assert_eq!(v.post_id, v.post_id.to_ascii_lowercase());
    assert_eq!(r.key, feed::reaction_key(&first_post(), REACTION));
    assert_eq!(
        feed::parse_reaction_key(&r.key),
        Some((first_post(), REACTION))
    );

    let written = write_feed(3);
    let reacted = check_signed(&r.signed, feed_doc(), &written[2]);
    let removed = check_signed(&r.removal, feed_doc(), &written[3]);
    assert_eq!((reacted.header().seq, removed.header().seq), (3, 4));

    let first = v.first_change();
    let doc = apply(&[&first, &v.reply.signed, &r.signed]);
    assert!(feed::has_reaction(&doc, &r.key));
    let doc = apply(&[&first, &v.reply.signed, &r.signed, &r.removal]);
    assert!(!feed::has_reaction(&doc, &r.key));
    assert_eq!(doc.get(automerge::ROOT, &r.key).unwrap(), None);
}

#[test]
fn a_deletion_removes_the_body_from_the_post_and_the_post_is_served_without_it() {
    let v = vectors();
    let d = &v.deletion;
    assert_eq!(d.commit_time_ms, DELETION_TIME_MS);
    assert!(d.signed.bodies.is_empty(), "a deletion carries no body");

    let mut written = new_doc();
    written
        .apply_changes(write_feed(3))
        .expect("the feed applies");
    feed::delete_post(&mut written, POST_KEY).unwrap();
    let made = commit(&mut written, DELETION_TIME_MS);
    let verified = check_signed(&d.signed, feed_doc(), &made);
    assert_eq!(verified.header().seq, 5);

    let first = v.first_change();
    let doc = apply(&[
        &first,
        &v.reply.signed,
        &v.reaction.signed,
        &v.reaction.removal,
        &d.signed,
    ]);
    let state = feed::post_state(&doc, POST_KEY).expect("a deleted post keeps its map");
    assert!(state.deleted);
    assert_eq!(state.text, None);
    assert_eq!(
        doc.get(&state.obj, feed::BODY).unwrap(),
        None,
        "the deletion removes `body`"
    );
    assert_eq!(state.at_ms, POST_AT_MS, "it still answers with its time");

    // Served after the deletion: the same signed change, without the body.
    let erased = unhex(&d.erased_post);
    let mut expected =
        kith_core::proto::SignedChange::decode(unhex(&v.signed_change).as_slice()).unwrap();
    assert_eq!(expected.bodies, vec![post_body()]);
    expected.bodies.clear();
    assert_eq!(erased, expected.encode_to_vec());
    assert!(
        !erased
            .windows(POST_TEXT.len())
            .any(|w| w == POST_TEXT.as_bytes()),
        "nothing of the text is left in it"
    );
    let cert = vector_cert(&v);
    let still = kith_core::SignedChange::decode(&erased)
        .unwrap()
        .verify(&lookup(&cert))
        .expect("the history still verifies");
    assert_eq!(hex::encode(still.header().hash), v.change_hash);
}

#[test]
fn a_post_whose_text_is_a_text_object_is_a_post_without_text() {
    let v = vectors();
    let t = &v.text_object_post;
    let doc_id = DocId::feed(IdentityId(identity_public()), SpaceId::PUBLIC, 1);
    assert_eq!(t.doc_id, hex::encode(doc_id.to_bytes()));
    assert!(t.doc_id.ends_with("00000001"), "shard 1, big-endian");
    assert_eq!(
        (
            t.post_key.as_str(),
            t.text.as_str(),
            t.at_ms,
            t.commit_time_ms
        ),
        (
            TEXT_OBJECT_KEY,
            TEXT_OBJECT_TEXT,
            TEXT_OBJECT_AT_MS,
            TEXT_OBJECT_AT_MS
        )
    );

    // As automerge-js writes `{text: "…", at: …}`.
    let mut doc = new_doc();
    let post = doc
        .put_object(
            automerge::ROOT,
            format!("p/{TEXT_OBJECT_KEY}"),
            ObjType::Map,
        )
        .unwrap();
    let text = doc.put_object(&post, "text", ObjType::Text).unwrap();
    doc.splice_text(&text, 0, 0, TEXT_OBJECT_TEXT).unwrap();
    doc.put(&post, "at", ScalarValue::Int(TEXT_OBJECT_AT_MS))
        .unwrap();
    let made = commit(&mut doc, TEXT_OBJECT_AT_MS);
    check_signed(&t.signed, doc_id, &made);

    let doc = apply(&[&t.signed]);
    let state = feed::post_state(&doc, TEXT_OBJECT_KEY).expect("a map under p/ is a post");
    assert_eq!(state.text, None, "a Text object is not a post's text");
    assert_eq!(state.at_ms, TEXT_OBJECT_AT_MS as u64);
    assert_eq!((state.reply_to, state.deleted), (None, false));
    let (_, text) = doc
        .get(&state.obj, "text")
        .unwrap()
        .expect("the text object is there");
    assert_eq!(doc.text(&text).unwrap(), TEXT_OBJECT_TEXT);
}
