//! Catch-up: a fresh store ingests another person's signed posts in
//! batches (verify, apply to automerge, index, commit) the way a node does
//! during sync: each batch, with its signer's certificate, a non-durable
//! commit (`Store::ingest_buffered`), made durable by one `Store::flush` —
//! the node flushes once a second, here once at the end of the run.
//! Target: at least 50,000 posts/s on one core. For comparison, what the
//! signature checks alone cost per change, the raw limit: one signature
//! checked alone by kith's rule (proto/README.md §2.1), a batch of 1,024
//! checked together by the same rule, and kith's `verify_batch` (the batch
//! plus each change's cheap checks). Then, for a shared machine, one more
//! figure: the CPU time per post.

mod corpus;

use std::time::{Duration, Instant};

use corpus::{Corpus, INGEST_BATCH, thread_cpu_time};
use criterion::{BatchSize, Criterion, Throughput};
use kith_core::signature::{Batch, PublicKey};
use kith_core::{DeviceId, IdentityId, SignedChange, verify_batch};
use kith_store::Store;

/// Posts ingested per measured iteration: ten full shards.
const POSTS: usize = 10 * INGEST_BATCH;

fn ingest(c: &mut Criterion, corpus: &Corpus) {
    let mut group = c.benchmark_group("ingest");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(POSTS as u64));
    group.bench_function(format!("{POSTS}_posts_in_batches_of_{INGEST_BATCH}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("temporary directory");
                let mut store = Store::open(&dir.path().join("kith.redb")).expect("open");
                let batches: Vec<Vec<SignedChange>> = corpus
                    .changes
                    .chunks(INGEST_BATCH)
                    .map(<[SignedChange]>::to_vec)
                    .collect();
                let started = Instant::now();
                // As sync delivers them: each batch with its signers'
                // certificates.
                for batch in batches {
                    let report = store
                        .ingest_buffered(std::slice::from_ref(&corpus.cert), batch)
                        .expect("ingest");
                    assert_eq!(report.applied, INGEST_BATCH);
                }
                store.flush().expect("flush");
                total += started.elapsed();
            }
            total
        });
    });
    group.finish();
}

/// Live gossip: each change arrives alone and is its own non-durable
/// commit, as a follower's node applies a post it hears of. The store holds
/// the author's first `LIVE_STORED` posts; each later one is new to it (a
/// fresh store is set up, untimed, when the corpus runs out).
fn live(c: &mut Criterion, corpus: &Corpus) {
    const LIVE_STORED: usize = 1024;
    let fresh = || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(&dir.path().join("kith.redb")).expect("open");
        store.add_certificate(&corpus.cert).expect("certificate");
        store
            .ingest_buffered(&[], corpus.changes[..LIVE_STORED].to_vec())
            .expect("ingest");
        (dir, store, LIVE_STORED)
    };
    let mut state = fresh();
    let mut group = c.benchmark_group("live");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    group.bench_function("one_gossiped_post", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if state.2 == corpus.changes.len() {
                    state = fresh();
                }
                let change = corpus.changes[state.2].clone();
                state.2 += 1;
                let started = Instant::now();
                let report = state.1.ingest_buffered(&[], vec![change]).expect("ingest");
                total += started.elapsed();
                assert_eq!(report.applied, 1);
            }
            total
        });
    });
    group.finish();
}

fn signatures(c: &mut Criterion, corpus: &Corpus) {
    let device = corpus.cert.device;
    let identity = corpus.cert.identity;
    let certs = move |d: &DeviceId| -> Option<IdentityId> { (*d == device).then_some(identity) };
    let batch: Vec<SignedChange> = corpus.changes[..INGEST_BATCH].to_vec();

    let mut group = c.benchmark_group("verify");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // The message a change signature covers, as verify_batch rebuilds it.
    let msgs: Vec<Vec<u8>> = batch
        .iter()
        .map(|c| {
            let v = c.clone().verify(&certs).expect("a valid change");
            SignedChange::signed_bytes(&v.doc(), &v.header().hash)
        })
        .collect();
    let key = PublicKey::from_bytes(&device.0).expect("valid key");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ed25519_verify_one", |b| {
        b.iter(|| assert!(key.verify(&msgs[0], &batch[0].signature)));
    });

    group.throughput(Throughput::Elements(INGEST_BATCH as u64));
    group.bench_function(format!("ed25519_batch_{INGEST_BATCH}"), |b| {
        b.iter(|| {
            let mut signatures = Batch::with_capacity(INGEST_BATCH);
            for (msg, change) in msgs.iter().zip(&batch) {
                signatures.push(&key, msg, &change.signature);
            }
            assert!(signatures.verify().into_iter().all(|ok| ok));
        });
    });
    group.bench_function(format!("kith_verify_batch_{INGEST_BATCH}"), |b| {
        b.iter_batched(
            || batch.clone(),
            |changes| {
                let results = verify_batch(changes, &certs);
                assert!(results.iter().all(Result::is_ok));
                results
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

/// Wall and CPU time per post of one full ingest, the best of `runs`.
fn per_post_times(corpus: &Corpus, runs: usize) -> (Duration, Duration) {
    let (mut wall, mut cpu) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(&dir.path().join("kith.redb")).expect("open");
        let (w0, c0) = (Instant::now(), thread_cpu_time());
        corpus.ingest_into(&mut store);
        wall = wall.min(w0.elapsed());
        cpu = cpu.min(thread_cpu_time() - c0);
    }
    (wall / POSTS as u32, cpu / POSTS as u32)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let corpus = Corpus::generate(POSTS);
    ingest(&mut c, &corpus);
    live(&mut c, &corpus);
    signatures(&mut c, &corpus);
    c.final_summary();
    if std::env::args().any(|a| a == "--bench") {
        let (wall, cpu) = per_post_times(&corpus, 5);
        println!(
            "ingest: best of 5 runs of {POSTS} posts: {:.1} µs/post wall ({:.0} posts/s), \
             {:.1} µs/post of CPU time ({:.0} posts/s if never kept waiting)",
            wall.as_secs_f64() * 1e6,
            1.0 / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6,
            1.0 / cpu.as_secs_f64()
        );
    }
}
