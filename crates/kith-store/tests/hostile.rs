//! A certified but hostile peer sends changes that are correctly signed and
//! checksummed yet have mutated insides: they reach automerge. Whatever they
//! contain, the store never panics, stays readable and keeps honest data.
//!
//! Seeded: `KITH_TEST_SEED`; `KITH_TEST_CASES` sets the number of mutants
//! (default 400).

mod support;

use kith_core::{DocId, SpaceId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use support::{Author, store};

/// Re-frames mutated chunk data with a correct length and checksum.
fn reframe(data: &[u8]) -> Vec<u8> {
    let mut len = Vec::new();
    let mut n = data.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            len.push(b);
            break;
        }
        len.push(b | 0x80);
    }
    let hash = Sha256::new()
        .chain_update([1u8])
        .chain_update(&len)
        .chain_update(data)
        .finalize();
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83];
    out.extend_from_slice(&hash[..4]);
    out.push(1);
    out.extend_from_slice(&len);
    out.extend_from_slice(data);
    out
}

/// The data part of a chunk (after magic, checksum, type and length).
fn data_of(chunk: &[u8]) -> &[u8] {
    let mut i = 9;
    while chunk[i] & 0x80 != 0 {
        i += 1;
    }
    &chunk[i + 1..]
}

#[test]
fn mutated_changes_from_a_certified_device_never_panic_the_store() {
    let seed: u64 = std::env::var("KITH_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    let cases: usize = std::env::var("KITH_TEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    println!("hostile: KITH_TEST_SEED={seed} cases={cases}");
    let mut rng = StdRng::seed_from_u64(seed);

    let (_dir, mut target) = store();
    let mut alice = Author::new(1);
    let mut mallory = Author::new(66);
    target.add_certificate(&alice.cert).unwrap();
    target.add_certificate(&mallory.cert).unwrap();
    assert_eq!(
        target
            .ingest(vec![alice.post("a", "honest words")])
            .unwrap()
            .applied,
        1
    );
    let honest = target.feed(&Default::default()).unwrap();

    // Templates: a few of mallory's real changes, mutated from here on.
    let mallory_feed = DocId::feed(mallory.id(), SpaceId::PUBLIC, 0);
    let templates: Vec<Vec<u8>> = (0..4)
        .map(|i| mallory.post(&format!("m{i}"), "x y z").change)
        .collect();
    let (mut applied, mut refused) = (0, 0);
    for _ in 0..cases {
        let template = &templates[rng.random_range(0..templates.len())];
        let mut data = data_of(template).to_vec();
        for _ in 0..rng.random_range(1..4) {
            match rng.random_range(0..3) {
                0 => {
                    let i = rng.random_range(0..data.len());
                    data[i] = rng.random();
                }
                1 => {
                    let i = rng.random_range(0..=data.len());
                    data.insert(i, rng.random());
                }
                _ => {
                    if data.len() > 1 {
                        let i = rng.random_range(0..data.len());
                        data.remove(i);
                    }
                }
            }
        }
        let change = mallory.sign_unchecked(mallory_feed, reframe(&data));
        let report = target.ingest(vec![change]).unwrap();
        applied += report.applied;
        refused += report.rejected.len();
        // The store stays readable after every mutant.
        target.feed(&Default::default()).unwrap();
    }
    println!("hostile: {applied} applied, {refused} refused");
    assert!(
        refused > 0,
        "seed {seed}: every mutant was accepted; the test proved nothing"
    );
    target.index_dump().unwrap();
    let alice_posts = kith_store::FeedQuery {
        author: Some(alice.id()),
        ..Default::default()
    };
    assert_eq!(
        target.feed(&alice_posts).unwrap(),
        honest,
        "seed {seed}: honest data changed"
    );
}
