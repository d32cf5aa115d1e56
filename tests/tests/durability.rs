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
    let seed: u64 = std::env::var("KITH_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    let rounds: usize = std::env::var("KITH_DURABILITY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    println!("durability: KITH_TEST_SEED={seed} rounds={rounds}");
    let mut rng = StdRng::seed_from_u64(seed);
    let home = TestHome::init("Ada");

    let mut acknowledged = Vec::new();
    let mut killed = 0;
    for i in 0..rounds {
        let mut child = home
            .command(&["post", &format!("durable post {i}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it run for a random while, then kill it if it is still going.
        let kill_after = Duration::from_micros(rng.random_range(0..10_000));
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

    // The store opens cleanly and holds every acknowledged post.
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
    // And it still accepts new writes.
    home.run(&["post", "after the storm"]).out();
}
