//! Reading a feed from the indexes with 100,000 posts stored: the newest page
//! (target: at most 5 ms for 50 posts), a page deep in the history, and the
//! one-row read a waiting API call makes whenever its author's feed changes.

mod corpus;

use std::time::{Duration, Instant};

use corpus::Corpus;
use criterion::{Criterion, Throughput};
use kith_store::{FeedQuery, Store};

const STORED_POSTS: usize = 100_000;
const PAGE: usize = 50;
/// The deep page starts below the post with this many newer ones.
const DEEP_OFFSET: usize = 90_000;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let corpus = Corpus::generate(STORED_POSTS);
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(&dir.path().join("kith.redb")).expect("open");
    let started = Instant::now();
    corpus.ingest_into(&mut store);
    eprintln!(
        "feed: {STORED_POSTS} posts ingested in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let newest = FeedQuery {
        limit: PAGE,
        ..FeedQuery::default()
    };
    let anchor = corpus.posts[STORED_POSTS - 1 - DEEP_OFFSET];
    let deep = FeedQuery {
        limit: PAGE,
        before: Some((anchor.at_ms, anchor.id)),
        ..FeedQuery::default()
    };
    // The pages hold what the corpus says they hold.
    let page = store.feed(&newest).expect("feed");
    assert_eq!(page.len(), PAGE);
    assert_eq!(page[0].id, corpus.posts[STORED_POSTS - 1].id);
    let page = store.feed(&deep).expect("feed");
    assert_eq!(page.len(), PAGE);
    assert_eq!(page[0].id, corpus.posts[STORED_POSTS - 2 - DEEP_OFFSET].id);
    let newest_of_author = FeedQuery {
        author: Some(corpus.cert.identity),
        viewer: Some(kith_core::IdentityId([9; 32])),
        limit: 1,
        ..FeedQuery::default()
    };
    let ids = store.feed_ids(&newest_of_author).expect("feed ids");
    let last = corpus.posts[STORED_POSTS - 1];
    assert_eq!(ids, [(last.id, last.at_ms)]);

    let mut group = c.benchmark_group(format!("feed_{STORED_POSTS}_posts"));
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(PAGE as u64));
    group.bench_function(format!("newest_{PAGE}"), |b| {
        b.iter(|| store.feed(&newest).expect("feed"));
    });
    group.bench_function(format!("{PAGE}_below_{DEEP_OFFSET}_newer"), |b| {
        b.iter(|| store.feed(&deep).expect("feed"));
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("author_newest_id", |b| {
        b.iter(|| store.feed_ids(&newest_of_author).expect("feed ids"));
    });
    group.finish();
    c.final_summary();
}
