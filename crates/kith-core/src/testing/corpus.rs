//! Many signed posts at once, made the way a node makes them, for tests and
//! benchmarks that need a large history (catch-up over a slow path, a
//! store under load) without a node writing it post by post.

use automerge::AutoCommit;
use automerge::transaction::CommitOptions;

use crate::schema::feed;
use crate::{DeviceKey, DocId, IdentityKey, SignedChange, SpaceId};

/// `count` signed posts by `identity` from `device` in `space`, keys
/// `{tag}p{i}`, one a millisecond from 2023-11-14, with the feed rolling
/// over to a new shard every `per_shard` changes as a node's does.
pub fn posts(
    identity: &IdentityKey,
    device: &DeviceKey,
    space: SpaceId,
    tag: &str,
    count: usize,
    per_shard: usize,
) -> Vec<SignedChange> {
    let actor = crate::actor_id(&device.id(), &[7; 8]);
    let mut doc = AutoCommit::new();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        if i % per_shard == 0 {
            doc = AutoCommit::new().with_actor(actor.clone());
        }
        let doc_id = DocId::feed(identity.id(), space, (i / per_shard) as u32);
        let at = 1_700_000_000_000 + i as u64;
        let body = feed::create_post(
            &mut doc,
            &format!("{tag}p{i}"),
            &format!("post {i} of {tag}: {}", "lorem ipsum ".repeat(20)),
            at,
            None,
        )
        .expect("a post with text");
        doc.commit_with(CommitOptions::default().with_time(at as i64));
        let change = doc.get_last_local_change().expect("just committed");
        let mut signed =
            SignedChange::sign(doc_id, change.raw_bytes().to_vec(), device, identity.id())
                .expect("a change this small signs");
        signed.attach_bodies(vec![body]);
        out.push(signed.into_inner());
    }
    out
}
