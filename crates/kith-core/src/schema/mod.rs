//! How kith's documents are laid out in automerge, and how to read them back.
//!
//! Every document keeps its entries directly under the root map with a short
//! prefix (`p/` posts, `r/` reactions, `f/` follows, …). Nested top-level
//! containers would be simpler to read but two devices of one person creating
//! the same container concurrently would produce two conflicting containers;
//! root keys have no such problem. Sets (follows, blocks, labels, reactions)
//! are keys that are put to add and deleted to remove: add/remove sets whose
//! merge is automerge's, never a replaced list.

pub mod feed;
pub mod labels;
pub mod profile;

use std::collections::BTreeSet;

use automerge::{AutoCommit, ExpandedChange, ObjId, ReadDoc, legacy};

/// A put of a post's text (inline, or a body's hash) inside one change:
/// what the edit history records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextPut {
    /// The post's key in the feed (without the `p/` prefix).
    pub post_key: String,
    /// The op counter of the put, so the text can be read back from the change.
    pub counter: u64,
    /// The hash it put, if it put a body's (not an inline text).
    pub body: Option<crate::BodyHash>,
}

/// What one applied change touched, as root keys of its document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    pub root_keys: BTreeSet<String>,
    pub text_puts: Vec<TextPut>,
}

/// Finds the root keys a change touched, directly or through an object that
/// hangs under a root key. `doc` must already contain the change.
pub fn touched(doc: &AutoCommit, change: &ExpandedChange) -> Touched {
    let mut out = Touched::default();
    // Objects created in this change, by op counter, with the root key they sit under.
    let mut made_here: std::collections::HashMap<u64, String> = Default::default();
    for (i, op) in change.operations.iter().enumerate() {
        let counter = change.start_op.get() + i as u64;
        let root_key = match (&op.obj, &op.key) {
            (legacy::ObjectId::Root, legacy::Key::Map(k)) => {
                if matches!(op.action, legacy::OpType::Make(_)) {
                    made_here.insert(counter, k.to_string());
                }
                Some(k.to_string())
            }
            (legacy::ObjectId::Id(legacy::OpId(ctr, actor)), _) => if actor == &change.actor_id {
                made_here.get(ctr).cloned()
            } else {
                None
            }
            .or_else(|| root_key_of(doc, *ctr, &actor.to_hex_string())),
            _ => None,
        };
        let Some(root_key) = root_key else { continue };
        if let (Some(post_key), legacy::Key::Map(prop)) =
            (root_key.strip_prefix(feed::POST_PREFIX), &op.key)
            && !matches!(op.obj, legacy::ObjectId::Root)
            && let Some(text) = text_put(prop.as_str(), &op.action)
        {
            out.text_puts.push(TextPut {
                post_key: post_key.to_owned(),
                counter,
                body: match text {
                    feed::PostText::Body(hash) => Some(hash),
                    feed::PostText::Inline(_) => None,
                },
            });
        }
        out.root_keys.insert(root_key);
    }
    out
}

/// The root key under which the object made by op `counter@actor` hangs.
fn root_key_of(doc: &AutoCommit, counter: u64, actor_hex: &str) -> Option<String> {
    let obj: ObjId = doc.import_obj(&format!("{counter}@{actor_hex}")).ok()?;
    let mut last = None;
    for parent in doc.parents(&obj).ok()? {
        last = Some(parent);
    }
    let parent = last?;
    if parent.obj != automerge::ROOT {
        return None;
    }
    match parent.prop {
        automerge::Prop::Map(k) => Some(k),
        automerge::Prop::Seq(_) => None,
    }
}

/// Reads a string value at `prop` of `obj`, if it is one.
pub(crate) fn get_str(doc: &AutoCommit, obj: &ObjId, prop: &str) -> Option<String> {
    match doc.get(obj, prop).ok()?? {
        (automerge::Value::Scalar(s), _) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

/// What a put of `prop` puts, if it is a post's text: a body's hash under
/// `body`, an inline string under `text`.
fn text_put(prop: &str, action: &legacy::OpType) -> Option<feed::PostText> {
    match (prop, action) {
        (feed::BODY, legacy::OpType::Put(automerge::ScalarValue::Bytes(b))) => {
            Some(feed::PostText::Body(b.as_slice().try_into().ok()?))
        }
        (feed::TEXT, legacy::OpType::Put(automerge::ScalarValue::Str(s))) => {
            Some(feed::PostText::Inline(s.to_string()))
        }
        _ => None,
    }
}

/// Reads the text put by op `counter` in `change`: inline, or the hash of
/// the body that holds it.
pub fn text_of_op(change: &automerge::Change, counter: u64) -> Option<feed::PostText> {
    let start = change.start_op().get();
    let index = usize::try_from(counter.checked_sub(start)?).ok()?;
    if index >= change.len() {
        return None;
    }
    let expanded = change.decode();
    let op = expanded.operations.get(index)?;
    let legacy::Key::Map(prop) = &op.key else {
        return None;
    };
    text_put(prop.as_str(), &op.action)
}

/// The operations of a change, or `None` if automerge cannot list them.
/// automerge 0.12 panics listing a change whose operations name an actor
/// it does not list (a crafted change parses, and waits for dependencies,
/// without being checked that far), so the panic is contained here: one
/// change's bodies are lost, not the batch it came in.
pub fn expand(change: &automerge::Change) -> Option<ExpandedChange> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| change.decode())).ok()
}

/// Pairs the bodies that came beside a change with the ops that put their
/// hashes: `(op counter, body)` for each body whose hash a `body` put of the
/// change holds, in op order. Bodies the change does not name are left out:
/// nobody signed them.
pub fn match_bodies(change: &ExpandedChange, bodies: &[Vec<u8>]) -> Vec<(u64, Vec<u8>)> {
    if bodies.is_empty() {
        return Vec::new();
    }
    let hashed: Vec<(crate::BodyHash, &Vec<u8>)> = bodies
        .iter()
        .filter(|b| crate::body::check(b).is_ok())
        .map(|b| (crate::body::hash(b), b))
        .collect();
    let mut out = Vec::new();
    for (i, op) in change.operations.iter().enumerate() {
        let legacy::Key::Map(prop) = &op.key else {
            continue;
        };
        if matches!(op.obj, legacy::ObjectId::Root) {
            continue;
        }
        if let Some(feed::PostText::Body(hash)) = text_put(prop.as_str(), &op.action)
            && let Some((_, bytes)) = hashed.iter().find(|(h, _)| *h == hash)
        {
            out.push((change.start_op.get() + i as u64, (*bytes).clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::ActorId;

    #[test]
    fn touched_finds_posts_made_and_edited() {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(vec![1u8; 40]));
        let hello = feed::create_post(&mut doc, "k1", "hello", 10, None).unwrap();
        doc.commit();
        let made = doc.get_last_local_change().unwrap();
        let t = touched(&doc, &made.decode());
        assert_eq!(t.root_keys.iter().collect::<Vec<_>>(), vec!["p/k1"]);
        assert_eq!(t.text_puts.len(), 1);
        assert_eq!(
            text_of_op(&made, t.text_puts[0].counter),
            Some(feed::PostText::Body(hello.hash()))
        );
        let stray = crate::Body::new("not put by this change").unwrap();
        assert_eq!(
            match_bodies(
                &made.decode(),
                &[stray.as_bytes().to_vec(), hello.as_bytes().to_vec()]
            ),
            vec![(t.text_puts[0].counter, hello.as_bytes().to_vec())],
            "only the body whose hash the change holds is kept"
        );

        let again = feed::edit_post(&mut doc, "k1", "hello again").unwrap();
        doc.commit();
        let edit = doc.get_last_local_change().unwrap();
        let t = touched(&doc, &edit.decode());
        assert_eq!(t.root_keys.iter().collect::<Vec<_>>(), vec!["p/k1"]);
        assert_eq!(
            text_of_op(&edit, t.text_puts[0].counter),
            Some(feed::PostText::Body(again.hash()))
        );
    }
}
