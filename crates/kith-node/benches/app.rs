//! Local API and web app benchmarks (release nodes on 127.0.0.1, mDNS off):
//!
//! - timeline: `GET /api/feed?home=true` on a node holding 100,000 posts (10
//!   followed authors × 10,000), p50 and p99 of the first page and of a page
//!   50,000 posts deep, 50 posts a page;
//! - app: from a post on one node's API until it shows in the other node's
//!   web app, open in headless Chromium (Debian's; `scripts/bench` needs it
//!   installed): the page notes the moment the post's element appears.
//!
//! Run with `scripts/bench`, or `KITH_BIN=target/release/kith cargo bench -p
//! kith-node --bench app`. Sizes: `KITH_BENCH_AUTHORS` (10),
//! `KITH_BENCH_PER_AUTHOR` (10000), `KITH_BENCH_APP_POSTS` (50).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kith_core::{DocId, PostId, SpaceId};
use kith_node::service::SHARD_MAX_CHANGES;
use serde_json::json;

mod support;
use support::*;

const REQUESTS: usize = 200;

fn timeline(bin: &std::path::Path, dir: &std::path::Path) {
    let authors = env("KITH_BENCH_AUTHORS", 10);
    let per_author = env("KITH_BENCH_PER_AUTHOR", 10_000);
    let archive = corpus(authors, per_author);
    let ids: Vec<_> = archive.certificates.iter().map(|c| c.identity).collect();
    let file = dir.join("timeline.kith");
    std::fs::write(&file, archive.encode()).unwrap();
    let home = dir.join("reader");
    kith(bin, &home, &["init", "--name", "reader"]);
    for a in &ids {
        kith(bin, &home, &["follow", &a.to_string()]);
    }
    kith(bin, &home, &["import", file.to_str().unwrap()]);
    let node = Node::start(bin, &home, &[]);
    // The post of author 0 from the middle of its history: every author
    // posted once a millisecond, so about half of all posts are newer.
    let i = per_author / 2;
    let shard = (i / SHARD_MAX_CHANGES as usize) as u32;
    let deep = PostId::derive(
        &DocId::feed(ids[0], SpaceId::PUBLIC, shard),
        &format!("a0p{i}"),
    );
    let total = authors * per_author;
    for (name, path) in [
        ("first page", "/api/feed?home=true&limit=50".to_owned()),
        (
            "a page ~50% deep",
            format!("/api/feed?home=true&limit=50&before={deep}"),
        ),
    ] {
        let mut times = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            let t = Instant::now();
            let (status, body) = node.get(&path);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200, "{body}");
            assert!(body.starts_with('['), "{body}");
        }
        times.sort_by(f64::total_cmp);
        println!(
            "timeline: home timeline API, {name}, 50 posts, {total} posts stored: p50 {:.2} ms, p99 {:.2} ms ({REQUESTS} requests over HTTP)",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

async fn app_latency(bin: &std::path::Path, dir: &std::path::Path) {
    let chromedriver = std::path::Path::new("/usr/bin/chromedriver");
    if !chromedriver.exists() {
        println!("app: skipped (install Debian's chromium and chromium-driver)");
        return;
    }
    let posts = env("KITH_BENCH_APP_POSTS", 50);
    let alice_home = dir.join("alice");
    let bob_home = dir.join("bob");
    kith(bin, &alice_home, &["init", "--name", "alice"]);
    kith(bin, &bob_home, &["init", "--name", "bob"]);
    let alice_id = identity(bin, &alice_home);
    kith(bin, &bob_home, &["follow", &alice_id]);
    let alice = Node::start(bin, &alice_home, &[]);
    let bob = Node::start(bin, &bob_home, std::slice::from_ref(&alice.addr));
    wait_until(30, "bob's node is connected to alice's", || {
        bob.get("/api/peers").1.contains(&alice_id)
    });

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut driver = std::process::Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(30, "chromedriver listens", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let profile = dir.join("chromium");
    let caps = json!({ "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.display()),
    ] } });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    let client = fantoccini::ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session");
    client.goto(&bob.app).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live = client
            .execute(
                "return document.getElementById('netstate').textContent",
                vec![],
            )
            .await
            .unwrap();
        if live == json!("live") {
            break;
        }
        assert!(Instant::now() < deadline, "bob's app goes live");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The page notes, in epoch milliseconds, when each post first shows.
    client
        .execute(
            "window.seenAt = {};
             new MutationObserver(() => {
               for (const t of document.querySelectorAll('article.post .text')) {
                 const s = t.textContent;
                 if (s.startsWith('latency ') && !(s in window.seenAt)) window.seenAt[s] = Date.now();
               }
             }).observe(document.body, { subtree: true, childList: true, characterData: true });",
            vec![],
        )
        .await
        .unwrap();
    let mut times = Vec::with_capacity(posts);
    for i in 0..posts {
        let text = format!("latency {i}");
        let t0 = now_ms();
        match alice.call(&kith_node::Call::Post {
            text: text.clone(),
            reply_to: None,
            group: None,
        }) {
            kith_node::Reply::Post(_) => {}
            other => panic!("{other:?}"),
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let seen = loop {
            let v = client
                .execute(
                    "return window.seenAt[arguments[0]] || 0;",
                    vec![json!(text)],
                )
                .await
                .unwrap();
            if let Some(at) = v.as_f64().filter(|at| *at > 0.0) {
                break at;
            }
            assert!(Instant::now() < deadline, "post {i} shows in bob's app");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        times.push(seen - t0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "app: a post on alice's node until it shows in bob's open web app: p50 {:.1} ms, p99 {:.1} ms ({posts} posts; millisecond clock)",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
    let _ = client.close().await;
    let _ = driver.kill();
    let _ = driver.wait();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bin = kith_bin();
    let dir = tempfile::tempdir().unwrap();
    timeline(&bin, dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(app_latency(&bin, dir.path()));
}
