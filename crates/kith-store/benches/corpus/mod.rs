//! The posts the store benchmarks feed in: another person's feed, made the
//! way a real node makes it (`Store::commit_local`, one 280-character post per
//! change, feed shards that roll over every [`SHARD_MAX_CHANGES`] changes as
//! kith-node's `Service` does) and exported as signed changes, so that timing
//! starts where a catching-up peer starts: with a pile of `SignedChange`s.
//!
//! Everything is derived from fixed seeds, so every run ingests the same bytes.

#![allow(dead_code)] // Each bench binary uses a different part of this module.

use std::time::{Duration, Instant};

use kith_core::{DeviceCert, DeviceKey, DocId, IdentityKey, PostId, SignedChange, SpaceId};
use kith_store::{LocalSigner, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Same roll-over as kith-node's `service::SHARD_MAX_CHANGES`.
pub const SHARD_MAX_CHANGES: u32 = 512;
/// Length of every generated post, in characters (all ASCII, so also bytes).
pub const POST_CHARS: usize = 280;
/// Changes handed to `Store::ingest` at once: one group commit each.
pub const INGEST_BATCH: usize = 1024;
/// Creation time of the first post (2026-01-01), then one post a minute.
const FIRST_POST_MS: u64 = 1_767_225_600_000;
const POST_INTERVAL_MS: u64 = 60_000;

#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "about", "people", "time",
    "work", "today", "meeting", "project", "release", "team", "customer", "feedback", "design",
    "network", "coffee", "morning", "weekend", "question", "answer", "problem", "solution",
    "review", "build", "deploy", "server", "laptop", "garden", "train", "weather", "book",
    "reading", "writing", "thinking", "planning", "shipping", "testing", "fixing", "learning",
    "neighbourhood", "conference", "workshop", "invoice", "contract", "schedule", "deadline",
    "tomorrow", "yesterday", "afternoon", "evening", "really", "quite", "very", "still", "just",
    "finally", "again", "already", "almost", "maybe", "probably", "definitely", "honestly",
    "great", "small", "large", "new", "old", "first", "last", "good", "better", "best", "long",
    "short", "quick", "slow", "simple", "hard", "easy", "important", "interesting", "strange",
    "lovely", "busy", "quiet", "open", "local", "shared", "private", "public", "friends",
    "colleagues", "family", "vendors", "everyone", "somebody", "nobody", "something", "nothing",
    "everything", "because", "although", "while", "after", "before", "during", "until", "since",
    "without", "through", "between", "against", "around", "under", "over", "into", "onto", "think",
    "know", "want", "need", "like", "love", "hope", "try", "make", "take", "give", "find", "tell",
    "ask", "call", "send", "read", "write", "walk", "talk", "share", "post",
];

/// Realistic English-like text of exactly `chars` characters: words from a
/// fixed list, capitalised sentences, commas and full stops.
pub fn post_text(rng: &mut StdRng, chars: usize) -> String {
    let mut text = String::with_capacity(chars + 16);
    let mut sentence_start = true;
    while text.len() < chars {
        let word = WORDS[rng.random_range(0..WORDS.len())];
        if sentence_start {
            let mut cs = word.chars();
            if let Some(first) = cs.next() {
                text.extend(first.to_uppercase());
                text.push_str(cs.as_str());
            }
            sentence_start = false;
        } else {
            text.push_str(word);
        }
        match rng.random_range(0..14) {
            0 | 1 => {
                text.push_str(". ");
                sentence_start = true;
            }
            2 => text.push_str(", "),
            _ => text.push(' '),
        }
    }
    text.truncate(chars);
    if text.ends_with(' ') {
        text.pop();
        text.push('.');
    }
    text
}

/// A person other than the one whose store is measured: fixed seeds.
#[derive(Debug)]
pub struct Author {
    pub identity: IdentityKey,
    pub device: DeviceKey,
    pub cert: DeviceCert,
}

impl Author {
    pub fn bob() -> Author {
        let identity = IdentityKey::from_secret_bytes(&[0xB0; 32]);
        let device = DeviceKey::from_secret_bytes(&[0xB1; 32]);
        let cert = DeviceCert::issue(&identity, &device, FIRST_POST_MS);
        Author {
            identity,
            device,
            cert,
        }
    }
}

/// One generated post, as a reader would look it up.
#[derive(Debug, Clone, Copy)]
pub struct PostRef {
    pub at_ms: u64,
    pub id: PostId,
}

/// Another person's feed, exported as signed changes in store order.
#[derive(Debug)]
pub struct Corpus {
    pub cert: DeviceCert,
    pub changes: Vec<SignedChange>,
    /// Every post, oldest first.
    pub posts: Vec<PostRef>,
}

impl Corpus {
    /// Bob writes `n` posts in his own store (a temporary directory), which
    /// then exports them. Prints how long that took, to stderr.
    pub fn generate(n: usize) -> Corpus {
        let started = Instant::now();
        let bob = Author::bob();
        // Bob's store is only a source of signed changes: keep it in memory
        // where the machine has a tmpfs, so his 100,000 durable commits do not
        // each wait for the disk. The stores being measured stay on disk.
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temporary directory");
        let mut store = Store::open(&dir.path().join("bob.redb")).expect("open bob's store");
        store.add_certificate(&bob.cert).expect("certificate");
        let signer = LocalSigner {
            key: &bob.device,
            author: bob.identity.id(),
        };
        let mut rng = StdRng::seed_from_u64(0x6b697468);
        let mut posts = Vec::with_capacity(n);
        for i in 0..n {
            let shard = (i / SHARD_MAX_CHANGES as usize) as u32;
            let doc = DocId::feed(bob.identity.id(), SpaceId::PUBLIC, shard);
            // The post key format of kith-node: 8 random bytes, lowercase base32.
            let key = data_encoding::BASE32_NOPAD
                .encode(&rng.random::<[u8; 8]>())
                .to_ascii_lowercase();
            let text = post_text(&mut rng, POST_CHARS);
            let at_ms = FIRST_POST_MS + i as u64 * POST_INTERVAL_MS;
            store
                .commit_local(doc, signer, at_ms, |d| {
                    d.create_post(&key, &text, at_ms, None)
                })
                .expect("commit a post");
            posts.push(PostRef {
                at_ms,
                id: PostId::derive(&doc, &key),
            });
        }
        let archive = store.export().expect("export");
        assert_eq!(archive.changes.len(), n, "one change per post");
        eprintln!(
            "corpus: {n} posts written and exported in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Corpus {
            cert: bob.cert,
            changes: archive.changes,
            posts,
        }
    }

    /// Ingests every change as a node catching up does: non-durable
    /// batches, each with its signer's certificate, then one durable flush.
    pub fn ingest_into(&self, store: &mut Store) {
        for batch in self.changes.chunks(INGEST_BATCH) {
            let report = store
                .ingest_buffered(std::slice::from_ref(&self.cert), batch.to_vec())
                .expect("ingest");
            assert!(report.rejected.is_empty(), "{:?}", report.rejected);
            assert_eq!(report.pending, 0);
        }
        store.flush().expect("flush");
    }
}

/// CPU time this thread has used (Linux `schedstat`). Other work on a shared
/// machine slows the wall clock; CPU time shows the work itself.
pub fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat starts with nanoseconds on CPU");
    Duration::from_nanos(ns)
}
