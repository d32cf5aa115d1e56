//! A post that `kith post` reported is never lost, even when processes are
//! killed with SIGKILL at random moments while posting.
//!
//! Seeded: `KITH_TEST_SEED` replays the kill timings; `KITH_DURABILITY_ROUNDS`
//! sets how many posts are attempted (default 150).

use std::collections::HashSet;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use kith_tests::TestHome;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn acknowledged_posts_survive_sigkill() {
    let seed = seed();
    let rounds: usize = std::env::var("KITH_DURABILITY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    println!("durability: KITH_TEST_SEED={seed} rounds={rounds}");
    let mut rng = StdRng::seed_from_u64(seed);
    let home = TestHome::init("Ada");

    // Kills land anywhere in a post's run, however fast this machine runs
    // one now: the window is 1.5 times the slowest of three posts left to
    // finish (which are acknowledged, and counted).
    let mut acknowledged = Vec::new();
    let mut whole = Duration::ZERO;
    for i in 0..3 {
        let started = Instant::now();
        acknowledged.push(
            home.run(&["post", &format!("timed post {i}")])
                .out()
                .to_owned(),
        );
        whole = whole.max(started.elapsed());
    }
    let window = whole.as_micros() as u64 * 3 / 2;
    println!(
        "durability: a post takes up to {} µs; kills within {window} µs",
        whole.as_micros()
    );
    let mut killed = 0;
    for i in 0..rounds {
        let mut child = home
            .command(&["post", &format!("durable post {i}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it run for a random while, then kill it if it is still going.
        let kill_after = Duration::from_micros(rng.random_range(0..window));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() >= kill_after {
                break None;
            }
            std::thread::yield_now();
        };
        let status = match status {
            Some(s) => s,
            None => {
                let _ = child.kill(); // SIGKILL
                killed += 1;
                child.wait().unwrap()
            }
        };
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        if status.success() && !out.trim().is_empty() {
            acknowledged.push(out.trim().to_owned());
        }
    }
    println!(
        "durability: {} acknowledged, {killed} killed",
        acknowledged.len()
    );
    assert!(
        killed > 0,
        "seed {seed}: no process was killed mid-way; the test proved nothing"
    );
    assert!(
        !acknowledged.is_empty(),
        "seed {seed}: no post was ever acknowledged"
    );

    assert_all_stored(&home, &acknowledged, seed);
    // And it still accepts new writes.
    home.run(&["post", "after the storm"]).out();
}

/// A post a running node acknowledged is never lost when the node is
/// killed with SIGKILL: the node acknowledges once the post's journal record
/// is on disk, and the next open replays what the store had not made
/// durable itself. Posts go through the node as `kith post` does; each
/// round kills the node a random number of acknowledgements in, during
/// checkpoints too.
#[test]
fn posts_a_node_acknowledged_survive_sigkill() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let seed = seed();
    println!("node durability: KITH_TEST_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let home = Arc::new(TestHome::init("Ada"));
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    for round in 0..4 {
        let mut node = home.node(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
        let stop = Arc::new(AtomicBool::new(false));
        let poster = {
            let (home, acknowledged, stop) = (home.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    // Odd rounds post long texts: the journal passes its
                    // checkpoint size every hundred or so posts, so the
                    // kill often lands in a checkpoint.
                    let text = if round % 2 == 1 {
                        format!("round {round} post {i} {}", "x".repeat(9_000))
                    } else {
                        format!("round {round} post {i}")
                    };
                    let out = home
                        .command(&["post", &text])
                        .stderr(Stdio::null())
                        .output()
                        .unwrap();
                    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    if out.status.success() && !id.is_empty() {
                        acknowledged.lock().unwrap().push(id);
                    }
                    i += 1;
                }
            })
        };
        let before = acknowledged.lock().unwrap().len();
        let wanted = before + rng.random_range(1..25) + (round % 2) * 100;
        let deadline = Instant::now() + Duration::from_secs(60);
        while acknowledged.lock().unwrap().len() < wanted {
            assert!(
                Instant::now() < deadline,
                "seed {seed}: the node stopped acknowledging posts"
            );
            std::thread::yield_now();
        }
        // Then a random few milliseconds more, so the kill lands anywhere
        // in a post's handling.
        let spin = Duration::from_micros(rng.random_range(0..5_000));
        let started = Instant::now();
        while started.elapsed() < spin {
            std::thread::yield_now();
        }
        node.child.kill().unwrap(); // SIGKILL
        node.child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        poster.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    println!(
        "node durability: {} acknowledged over 4 kills",
        acknowledged.len()
    );
    assert_all_stored(&home, &acknowledged, seed);
}

/// `KITH_TEST_SEED`, else a random seed (printed by the caller).
fn seed() -> u64 {
    std::env::var("KITH_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random)
}

/// The store opens cleanly and holds every acknowledged post.
fn assert_all_stored(home: &TestHome, acknowledged: &[String], seed: u64) {
    let feed = home.run(&["feed", "--limit", "10000", "--json"]).json();
    let stored: HashSet<&str> = feed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "seed {seed}: acknowledged posts lost: {lost:?}"
    );
}
