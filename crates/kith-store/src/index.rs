//! Keeps the read indexes in step with the documents (DESIGN.md decision 5).
//!
//! After a change is applied to its document, every root key it touched is
//! re-read from the document's *current* state and its index rows rewritten.
//! Because the rows depend only on that state (and on the set of changes, for
//! edit history), replicas that applied the same changes in any order hold
//! the same index.

use std::collections::BTreeMap;

use automerge::{ActorId, AutoCommit, Change, ObjId};
use kith_core::schema::{self, feed, labels, profile};
use kith_core::{DocId, DocKind, IdentityId, PostId};
use redb::ReadableTable;

use crate::changed::Changed;
use crate::error::StoreError;
use crate::rows::*;
use crate::tx::Writer;

/// The applied change, as the indexer needs it.
pub(crate) struct Applied<'a> {
    pub change: &'a Change,
    pub doc_no: u32,
    pub doc: DocId,
    pub actor_no: u32,
    pub author_no: u32,
    /// The bodies that came beside the change (none for one applied after
    /// waiting: its bodies were kept when it arrived).
    pub bodies: &'a [Vec<u8>],
}

impl Applied<'_> {
    fn seq(&self) -> u32 {
        self.change.seq() as u32
    }

    /// Whether this change made the post (holds the op creating its map).
    fn created(&self, state: &feed::PostState) -> bool {
        matches!(&state.obj, ObjId::Id(counter, actor, _) if self.holds_op(*counter, actor))
    }

    /// The text put by op `counter` of this change.
    fn text_ref(&self, counter: u64) -> TextRef {
        TextRef {
            actor_no: self.actor_no,
            seq: self.seq(),
            counter,
        }
    }

    fn holds_op(&self, counter: u64, actor: &ActorId) -> bool {
        let start = self.change.start_op().get();
        actor == self.change.actor_id()
            && counter >= start
            && counter < start + self.change.len() as u64
    }
}

/// Updates every index row that `a.change` may have affected, and keeps
/// the bodies of `a.bodies` whose hashes it put on posts that are not
/// deleted. Returns how many of `a.bodies` it put the hashes of, kept or not.
pub(crate) fn index_change(
    w: &mut Writer<'_>,
    doc: &AutoCommit,
    a: &Applied<'_>,
) -> Result<usize, StoreError> {
    let touched = schema::touched(doc, &a.change.decode());
    let hashed: Vec<(kith_core::BodyHash, &[u8])> = a
        .bodies
        .iter()
        .map(|b| (kith_core::body::hash(b), b.as_slice()))
        .collect();
    let mut matched = 0;
    match a.doc.kind {
        DocKind::Feed => {
            let space_no = w.intern_space(&a.doc.space)?;
            let time = a.change.timestamp().max(0) as u64;
            // Each touched post is read from the document once: a read costs
            // several lookups in automerge's op set, a large share of ingest.
            // `touched` lists the root key of every text put, so all are here.
            let states: BTreeMap<&str, Option<feed::PostState>> = touched
                .root_keys
                .iter()
                .filter_map(|k| k.strip_prefix(feed::POST_PREFIX))
                .map(|k| (k, feed::post_state(doc, k)))
                .collect();
            for put in &touched.text_puts {
                let body = put
                    .body
                    .and_then(|h| hashed.iter().find(|(hash, _)| *hash == h))
                    .map(|(_, bytes)| *bytes);
                matched += usize::from(body.is_some());
                let Some(state) = states.get(put.post_key.as_str()).and_then(Option::as_ref) else {
                    // No post under the key any more: no text of it is kept.
                    crate::bodies::erase(w, a.doc_no, a.text_ref(put.counter))?;
                    continue;
                };
                if state.deleted {
                    // Put before or concurrently with the deletion, and
                    // only now applied here: its body goes too.
                    crate::bodies::erase(w, a.doc_no, a.text_ref(put.counter))?;
                } else if let Some(bytes) = body {
                    crate::bodies::put(w, a.doc_no, a.text_ref(put.counter), bytes)?;
                }
                // The text a post is created with is the row's `first`:
                // only edits are versions.
                if !state.deleted && !a.created(state) {
                    let post = PostId::derive(&a.doc, &put.post_key);
                    w.versions()?
                        .insert(&version_key(&post, time, a.actor_no, a.seq()), put.counter)?;
                }
            }
            for key in &touched.root_keys {
                if let Some(post_key) = key.strip_prefix(feed::POST_PREFIX) {
                    if let Some(Some(state)) = states.get(post_key) {
                        // The last text this change put on the post, if it made it.
                        let first_put = touched
                            .text_puts
                            .iter()
                            .filter(|p| p.post_key == post_key)
                            .map(|p| p.counter)
                            .next_back()
                            .filter(|_| a.created(state));
                        let id = PostId::derive(&a.doc, post_key);
                        index_post(w, a, space_no, (id, post_key), state, first_put)?;
                        w.changed.push(Changed::Post {
                            id,
                            space: a.doc.space,
                            author: a.doc.owner,
                            created: a.created(state),
                            deleted: state.deleted,
                        });
                    }
                } else if let Some((post, emoji)) = feed::parse_reaction_key(key) {
                    w.changed.push(Changed::Reaction { post });
                    let k = reaction_key(&post, a.author_no, emoji);
                    if feed::has_reaction(doc, key) {
                        w.reactions()?.insert(k.as_slice(), a.doc_no)?;
                    } else {
                        let here = w
                            .reactions()?
                            .get(k.as_slice())?
                            .is_some_and(|v| v.value() == a.doc_no);
                        if here {
                            w.reactions()?.remove(k.as_slice())?;
                        }
                    }
                }
            }
        }
        DocKind::Profile => {
            w.changed.push(Changed::Profile { who: a.doc.owner });
            for key in &touched.root_keys {
                if key == profile::NAME || key == profile::BIO {
                    let row = PersonRow {
                        identity: a.doc.owner,
                        name: profile::name(doc).unwrap_or_default(),
                        bio: profile::bio(doc).unwrap_or_default(),
                    };
                    w.people()?.insert(a.author_no, row.encode().as_slice())?;
                } else if let Some(who) = key.strip_prefix(profile::FOLLOW_PREFIX) {
                    set_pair(w, doc, key, who, a.author_no, true)?;
                }
            }
        }
        DocKind::Private => {
            for key in &touched.root_keys {
                if let Some(who) = key.strip_prefix(labels::BLOCK_PREFIX) {
                    set_pair(w, doc, key, who, a.author_no, false)?;
                } else if let Some(who) = labels::parse_mute_key(key) {
                    let k = pair_key(a.author_no, w.intern_person(&who)?);
                    if labels::contains(doc, key) {
                        w.mutes()?.insert(&k, ())?;
                    } else {
                        w.mutes()?.remove(&k)?;
                    }
                } else if let Some((who, label)) = labels::parse_label_key(key) {
                    let subject = w.intern_person(&who)?;
                    let k = label_key(a.author_no, subject, label);
                    if labels::contains(doc, key) {
                        w.labels()?.insert(k.as_slice(), ())?;
                    } else {
                        w.labels()?.remove(k.as_slice())?;
                    }
                }
            }
        }
        DocKind::GroupControl => w.changed.push(Changed::Group { group: a.doc.space }),
    }
    Ok(matched)
}

/// Follows (`follow == true`, from the profile) or blocks (from the private
/// document), from a set key.
fn set_pair(
    w: &mut Writer<'_>,
    doc: &AutoCommit,
    key: &str,
    who: &str,
    owner_no: u32,
    follow: bool,
) -> Result<(), StoreError> {
    let Ok(who) = who.parse::<IdentityId>() else {
        return Ok(());
    };
    let other = w.intern_person(&who)?;
    let k = pair_key(owner_no, other);
    let table = if follow { w.follows()? } else { w.blocks()? };
    if profile::contains(doc, key) {
        table.insert(&k, ())?;
    } else {
        table.remove(&k)?;
    }
    Ok(())
}

fn index_post(
    w: &mut Writer<'_>,
    a: &Applied<'_>,
    space_no: u32,
    (post, key): (PostId, &str),
    state: &feed::PostState,
    first_put: Option<u64>,
) -> Result<(), StoreError> {
    let old = w.posts()?.get(&post.0)?.map(|v| PostRow::decode(v.value()));
    let old = match old {
        Some(Some(row)) => Some(row),
        Some(None) => return Err(StoreError::Corrupt(format!("post row {post}"))),
        None => None,
    };
    if let Some(old) = &old {
        w.feed()?
            .remove(&timeline_key(old.space_no, old.at_ms, &post))?;
        w.by_author()?
            .remove(&timeline_key(old.author_no, old.at_ms, &post))?;
        if let Some(parent) = &old.reply_to {
            w.replies()?.remove(&reply_key(parent, old.at_ms, &post))?;
        }
    }
    let (lo, hi) = (
        version_key(&post, 0, 0, 0),
        version_key(&post, u64::MAX, u32::MAX, u32::MAX),
    );
    let mut row = PostRow {
        author_no: a.author_no,
        doc_no: a.doc_no,
        space_no,
        at_ms: state.at_ms,
        deleted: state.deleted,
        edited: false,
        reply_to: state.reply_to,
        text: None,
        first: None,
        key: key.to_owned(),
    };
    if state.deleted {
        // Deleted: the bodies of every version go, first text to last.
        let mut texts: Vec<TextRef> = old
            .iter()
            .flat_map(|o| [o.first, o.text])
            .flatten()
            .collect();
        for entry in w.versions()?.range::<&[u8; 32]>(&lo..=&hi)? {
            let (k, counter) = entry?;
            let (_, actor_no, seq) = split_version_key(k.value());
            texts.push(TextRef {
                actor_no,
                seq,
                counter: counter.value(),
            });
        }
        for text in texts {
            crate::bodies::erase(w, a.doc_no, text)?;
        }
        w.versions()?
            .retain_in::<&[u8; 32], _>(&lo..=&hi, |_, _| false)?;
    } else {
        row.first = match first_put {
            Some(counter) => Some(TextRef {
                actor_no: a.actor_no,
                seq: a.seq(),
                counter,
            }),
            None => old.as_ref().and_then(|o| o.first),
        };
        row.text = match &state.text {
            Some((_, op)) => text_ref(w, a, &post, op, old.as_ref())?,
            None => None,
        };
        // Only edits are versions; a post seen for the first time has none
        // yet (an edit indexed before its creation is found on the
        // creation's own pass, which always comes later).
        row.edited = old.is_some()
            && w.versions()?
                .range::<&[u8; 32]>(&lo..=&hi)?
                .next()
                .is_some();
        w.feed()?
            .insert(&timeline_key(space_no, state.at_ms, &post), ())?;
        w.by_author()?
            .insert(&timeline_key(a.author_no, state.at_ms, &post), ())?;
    }
    if let Some(parent) = &state.reply_to {
        w.replies()?
            .insert(&reply_key(parent, state.at_ms, &post), ())?;
    }
    w.posts()?.insert(&post.0, row.encode().as_slice())?;
    Ok(())
}

/// Finds which change holds the op that put a post's current text.
fn text_ref(
    w: &mut Writer<'_>,
    a: &Applied<'_>,
    post: &PostId,
    op: &ObjId,
    old: Option<&PostRow>,
) -> Result<Option<TextRef>, StoreError> {
    let ObjId::Id(counter, actor, _) = op else {
        return Ok(None);
    };
    if a.holds_op(*counter, actor) {
        return Ok(Some(TextRef {
            actor_no: a.actor_no,
            seq: a.seq(),
            counter: *counter,
        }));
    }
    let Some(actor_no) = w.actor_nos()?.get(actor.to_bytes())?.map(|v| v.value()) else {
        return Ok(None);
    };
    if let Some(t) = old
        .into_iter()
        .flat_map(|o| [o.text, o.first])
        .flatten()
        .find(|t| t.actor_no == actor_no && t.counter == *counter)
    {
        return Ok(Some(t));
    }
    // A concurrent edit from another device won: find its change among the versions.
    let lo = version_key(post, 0, 0, 0);
    let hi = version_key(post, u64::MAX, u32::MAX, u32::MAX);
    for entry in w.versions()?.range::<&[u8; 32]>(&lo..=&hi)? {
        let (k, v) = entry?;
        let (_, v_actor, v_seq) = split_version_key(k.value());
        if v_actor == actor_no && v.value() == *counter {
            return Ok(Some(TextRef {
                actor_no,
                seq: v_seq,
                counter: *counter,
            }));
        }
    }
    Ok(None)
}
