//! Cold start: how long a person waits, after starting `kith node` on a
//! store that has grown large, until the first page of their home timeline
//! is served, and how much memory the node holds then.
//!
//! The store holds `KITH_BENCH_COLD_AUTHORS` (100) authors' public posts,
//! `KITH_BENCH_COLD_PER_AUTHOR` (10,000) each, all followed: 1,000,000 posts
//! by default. It is imported once, the node is run twice and stopped
//! cleanly (as a person's node is, day to day), and then it is started
//! `KITH_BENCH_COLD_RUNS` (5) times. Each start is timed from spawning the
//! process to its ready line (the API listening) and to the first page of
//! `GET /api/feed?home=true` (20 posts) returning; the resident memory then
//! and its peak are read from `/proc`. As root, each start is also measured
//! after the kernel's page cache is dropped: a start just after boot.
//!
//! Targets: first page within 300 ms, RSS at most 100 MB. To look into a
//! start, `KITH_BENCH_COLD_HOME=DIR` keeps the home there (and reuses it if
//! it exists).
//! Run with `scripts/bench`, or
//! `KITH_BIN=target/release/kith cargo bench -p kith-node --bench cold`.

use std::path::Path;
use std::time::Instant;

mod support;
use support::*;

const PAGE: usize = 20;

/// Empties the kernel's page cache, if this process may (root).
fn drop_page_cache() -> bool {
    // Dirty pages first, or they stay cached.
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

struct Start {
    ready_ms: f64,
    page_ms: f64,
    rss_kib: u64,
    peak_kib: u64,
}

fn start(bin: &Path, home: &Path) -> Start {
    let t0 = Instant::now();
    let node = Node::start(bin, home, &[]);
    let ready_ms = t0.elapsed().as_secs_f64() * 1e3;
    let (status, body) = node.get(&format!("/api/feed?home=true&limit={PAGE}"));
    let page_ms = t0.elapsed().as_secs_f64() * 1e3;
    assert_eq!(status, 200, "the home timeline: {body}");
    let posts: serde_json::Value = serde_json::from_str(&body).expect("a JSON page");
    let shown = posts
        .as_array()
        .or_else(|| posts["posts"].as_array())
        .map_or(0, Vec::len);
    assert_eq!(shown, PAGE, "a full first page: {body:.200}");
    Start {
        ready_ms,
        page_ms,
        rss_kib: node.rss_kib(),
        peak_kib: node.peak_rss_kib(),
    }
}

fn report(what: &str, starts: &[Start]) {
    let mut page: Vec<f64> = starts.iter().map(|s| s.page_ms).collect();
    page.sort_by(f64::total_cmp);
    let mut ready: Vec<f64> = starts.iter().map(|s| s.ready_ms).collect();
    ready.sort_by(f64::total_cmp);
    let rss = starts.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let peak = starts.iter().map(|s| s.peak_kib).max().unwrap_or(0);
    // The largest of the runs: memory is a limit, not an average.
    println!(
        "cold start ({what}, {} runs): first home page served after {:.0} ms median ({:.0}–{:.0}; target <= 300), API ready after {:.0} ms; RSS then {:.1} MB, peak {:.1} MB (target <= 100)",
        starts.len(),
        percentile(&page, 0.5),
        page[0],
        page[page.len() - 1],
        percentile(&ready, 0.5),
        rss as f64 * 1024.0 / 1e6,
        peak as f64 * 1024.0 / 1e6,
    );
}

/// A home following `authors` people, holding `per_author` posts of each.
fn setup(bin: &Path, home: &Path, scratch: &Path, authors: usize, per_author: usize) {
    kith(bin, home, &["init", "--name", "cold"]);
    let t = Instant::now();
    // Ten authors an archive, so no archive holds the whole corpus at once.
    for first in (0..authors).step_by(10) {
        let archive = corpus_of(first..(first + 10).min(authors), per_author);
        for cert in &archive.certificates {
            kith(bin, home, &["follow", &cert.identity.to_string()]);
        }
        let file = scratch.join("part.kith");
        std::fs::write(&file, archive.encode()).unwrap();
        kith(bin, home, &["import", file.to_str().unwrap()]);
        std::fs::remove_file(&file).unwrap();
    }
    let total = authors * per_author;
    let size = std::fs::read_dir(home)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum::<u64>();
    println!(
        "cold start setup: {total} posts from {authors} authors imported in {:.0} s; the home holds {:.0} MB",
        t.elapsed().as_secs_f64(),
        size as f64 / 1e6
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bin = kith_bin();
    let authors = env("KITH_BENCH_COLD_AUTHORS", 100);
    let per_author = env("KITH_BENCH_COLD_PER_AUTHOR", 10_000);
    let runs = env("KITH_BENCH_COLD_RUNS", 5);
    let dir = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("KITH_BENCH_COLD_HOME").map(std::path::PathBuf::from);
    let home = kept.clone().unwrap_or_else(|| dir.path().join("cold"));
    if !kept.as_ref().is_some_and(|h| h.exists()) {
        setup(&bin, &home, dir.path(), authors, per_author);
    }
    // As a person's node runs, then stops cleanly: the first start after
    // the import seals and compacts the store, the next measures its free
    // space once more (redb has grown the compacted file); later starts
    // find nothing to do, and those are measured.
    for _ in 0..2 {
        drop(Node::start(&bin, &home, &[]));
    }

    let warm: Vec<Start> = (0..runs).map(|_| start(&bin, &home)).collect();
    report("file in the page cache", &warm);
    if drop_page_cache() {
        let cold: Vec<Start> = (0..runs)
            .map(|_| {
                drop_page_cache();
                start(&bin, &home)
            })
            .collect();
        report("page cache dropped first", &cold);
    } else {
        println!("cold start: not root, so the page cache was not dropped");
    }
}
