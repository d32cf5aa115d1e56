//! Replicas that receive the same signed changes, in any order, with
//! duplicates and in batches of any size, end with identical documents and
//! identical indexes.
//!
//! Writers: alice on two devices (laptop and phone, editing the same
//! documents concurrently), bob and carol. Replicas: fresh stores.
//!
//! Seeded: set `KITH_TEST_SEED` to replay a run; `KITH_TEST_CASES` sets how
//! many runs (default 6). Each run prints its seed.

mod support;

use std::collections::BTreeMap;

use kith_core::schema::{feed, labels, profile};
use kith_core::{DocId, IdentityKey, PostId, SignedChange, SpaceId};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use support::{Author, store};

const WORDS: &[&str] = &[
    "kith",
    "colleague",
    "customer",
    "vendor",
    "friend",
    "lunch",
    "ship",
    "it",
    "today",
    "🙂",
];

/// Generates a history of signed changes by four writers.
fn history(rng: &mut StdRng, steps: usize) -> (Vec<Author>, Vec<SignedChange>) {
    let alice_laptop = Author::new(1);
    let alice_phone = Author::device_of(IdentityKey::from_secret_bytes(&[1; 32]), 2);
    let mut writers = vec![alice_laptop, alice_phone, Author::new(3), Author::new(4)];
    let ids: Vec<_> = writers.iter().map(Author::id).collect();
    let mut posts: Vec<(usize, String, PostId)> = Vec::new();
    let mut out = Vec::new();
    for step in 0..steps {
        let w = rng.random_range(0..writers.len());
        let me = writers[w].id();
        let feed_doc = DocId::feed(me, SpaceId::PUBLIC, 0);
        let text: String = (0..rng.random_range(1..8))
            .map(|_| *WORDS.choose(rng).unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        match rng.random_range(0..10) {
            0..=2 => {
                let key = format!("s{step}");
                let reply = if rng.random_bool(0.4) {
                    posts.choose(rng).map(|p| p.2)
                } else {
                    None
                };
                let at = 1_000 + step as u64;
                out.extend(
                    writers[w]
                        .try_change(feed_doc, |d| d.create_post(&key, &text, at, reply).unwrap()),
                );
                posts.push((w, key.clone(), PostId::derive(&feed_doc, &key)));
            }
            3 | 4 => {
                // Edit or delete a post of this identity that this device has seen.
                let mine: Vec<_> = posts
                    .iter()
                    .filter(|(_, key, _)| {
                        writers[w]
                            .docs
                            .get(&feed_doc)
                            .is_some_and(|d| feed::post_state(d, key).is_some_and(|s| !s.deleted))
                    })
                    .cloned()
                    .collect();
                if let Some((_, key, _)) = mine.choose(rng) {
                    let delete = rng.random_bool(0.25);
                    out.extend(writers[w].try_change(feed_doc, |d| {
                        if delete {
                            feed::delete_post(d, key).unwrap()
                        } else {
                            d.edit_post(key, &text).unwrap()
                        }
                    }));
                }
            }
            5 => {
                if let Some((_, _, target)) = posts.choose(rng) {
                    let emoji = *["👍", "❤", "🎉"].choose(rng).unwrap();
                    let key = feed::reaction_key(target, emoji);
                    let present = writers[w]
                        .docs
                        .get(&feed_doc)
                        .is_some_and(|d| feed::has_reaction(d, &key));
                    out.extend(writers[w].try_change(feed_doc, |d| {
                        if present {
                            feed::unreact(d, target, emoji).unwrap()
                        } else {
                            feed::react(d, target, emoji).unwrap()
                        }
                    }));
                }
            }
            6 => {
                let who = *ids.choose(rng).unwrap();
                if who != me && rng.random_bool(0.7) {
                    let key = profile::follow_key(&who);
                    let present = writers[w]
                        .docs
                        .get(&DocId::profile(me))
                        .is_some_and(|d| profile::contains(d, &key));
                    out.extend(writers[w].try_change(DocId::profile(me), |d| {
                        if present {
                            profile::remove(d, &key).unwrap()
                        } else {
                            profile::add(d, &key).unwrap()
                        }
                    }));
                } else if who != me {
                    // Blocks live in the private document.
                    let present = writers[w]
                        .docs
                        .get(&DocId::private(me))
                        .is_some_and(|d| labels::contains(d, &labels::block_key(&who)));
                    out.extend(writers[w].try_change(DocId::private(me), |d| {
                        labels::set_block(d, &who, !present).unwrap()
                    }));
                }
            }
            7 => {
                let name = format!("{} {}", WORDS.choose(rng).unwrap(), step);
                out.extend(
                    writers[w]
                        .try_change(DocId::profile(me), |d| profile::set_name(d, &name).unwrap()),
                );
            }
            8 => {
                let who = *ids.choose(rng).unwrap();
                let label = *["colleague", "customer", "vendor", "friend"]
                    .choose(rng)
                    .unwrap();
                out.extend(
                    writers[w]
                        .try_change(DocId::private(me), |d| labels::add(d, &who, label).unwrap()),
                );
            }
            _ => {
                // alice's two devices sync with each other: what one wrote, the other now builds on.
                let (laptop, phone) = writers.split_at_mut(1);
                for (doc_id, a) in laptop[0].docs.iter_mut() {
                    let b = phone[0].doc(*doc_id);
                    b.merge(a).unwrap();
                    a.merge(b).unwrap();
                }
                for (doc_id, b) in phone[0].docs.iter_mut() {
                    let a = laptop[0].doc(*doc_id);
                    a.merge(b).unwrap();
                }
            }
        }
    }
    (writers, out)
}

/// Delivers every change to a fresh replica in a random order, some twice, in random batches.
fn replica(
    rng: &mut StdRng,
    writers: &[Author],
    changes: &[SignedChange],
) -> (tempfile::TempDir, kith_store::Store) {
    let (dir, mut store) = store();
    for w in writers {
        store.add_certificate(&w.cert).unwrap();
    }
    let mut delivery: Vec<SignedChange> = changes.to_vec();
    let dups: Vec<SignedChange> = changes
        .iter()
        .filter(|_| rng.random_bool(0.2))
        .cloned()
        .collect();
    delivery.extend(dups);
    delivery.shuffle(rng);
    while !delivery.is_empty() {
        let n = rng.random_range(1..=delivery.len().min(64));
        let batch: Vec<_> = delivery.drain(..n).collect();
        let report = store.ingest(batch).unwrap();
        assert!(
            report.rejected.is_empty(),
            "honest changes refused: {:?}",
            report.rejected
        );
    }
    (dir, store)
}

/// Each document's heads and materialised state.
fn documents(store: &mut kith_store::Store, writers: &[Author]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for w in writers {
        for doc in w.docs.keys() {
            let mut heads = store.doc_heads(doc).unwrap();
            heads.sort();
            let state = store
                .read_doc(doc, |d| {
                    format!(
                        "{heads:?} {}",
                        serde_json::to_string(&automerge::AutoSerde::from(d)).unwrap()
                    )
                })
                .unwrap();
            out.insert(doc.to_string(), state);
        }
    }
    out
}

#[test]
fn replicas_converge_whatever_the_delivery_order() {
    let cases: u64 = std::env::var("KITH_TEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let first_seed: u64 = std::env::var("KITH_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    for case in 0..cases {
        let seed = first_seed.wrapping_add(case);
        println!("convergence case {case}: KITH_TEST_SEED={seed}");
        let mut rng = StdRng::seed_from_u64(seed);
        let (writers, changes) = history(&mut rng, 300);
        let (_a, mut first) = replica(&mut rng, &writers, &changes);
        let expected_index = first.index_dump().unwrap();
        let expected_docs = documents(&mut first, &writers);
        let counts = first.counts().unwrap();
        assert_eq!(
            counts.pending, 0,
            "seed {seed}: every dependency was delivered"
        );
        assert!(counts.posts > 0, "seed {seed}: the history has posts");
        for r in 0..3 {
            let (_b, mut other) = replica(&mut rng, &writers, &changes);
            assert_eq!(
                other.index_dump().unwrap(),
                expected_index,
                "seed {seed}: replica {r} index differs"
            );
            assert_eq!(
                documents(&mut other, &writers),
                expected_docs,
                "seed {seed}: replica {r} documents differ"
            );
        }
        // The index agrees with the documents: every listed post has the document's current text.
        let listed = first
            .feed(&kith_store::FeedQuery {
                limit: usize::MAX,
                ..Default::default()
            })
            .unwrap();
        assert!(!listed.is_empty(), "seed {seed}");
        for post in listed {
            let kith_store::PostRef { doc, key, .. } = first.post_ref(&post.id).unwrap().unwrap();
            let state = first
                .read_doc(&doc, |d| feed::post_state(d, &key))
                .unwrap()
                .unwrap();
            let body = first.current_body(&post.id).unwrap();
            assert_eq!(
                state.text.map(|t| t.0),
                body.as_ref()
                    .map(|b| feed::PostText::Body(kith_core::body::hash(b))),
                "seed {seed}: post {}: the index points at the document's body",
                post.id
            );
            assert_eq!(
                post.text.as_deref(),
                body.as_deref().and_then(kith_core::body::text_of),
                "seed {seed}: post {}",
                post.id
            );
            assert!(
                !state.deleted,
                "seed {seed}: deleted post {} listed",
                post.id
            );
        }
    }
}
