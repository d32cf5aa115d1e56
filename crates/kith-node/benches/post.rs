//! The cost of one new local post (`Service::post`: sign, apply, index,
//! commit, and a synced journal record) with 100 and with 100,000 posts
//! already in the feed. The design requires that it does not grow with the
//! history (DESIGN.md decision 7); the target is a ratio of at most 1.2.
//!
//! Both homes are built once per process with `Service::post` itself (see
//! `Feed::build`); the time that takes is printed too. Every measured post
//! adds to its home, so each home is put back to how it was built whenever
//! it has grown by [`REGROWTH`] posts: both are measured near the size they
//! stand for, and at a like place in their current feed shard. Before it is
//! put back, a home checkpoints (a durable redb commit, which empties the
//! journal), and that time counts as part of its posts: a running node
//! checkpoints on its tick, and nothing ticks here. After
//! criterion's figures, the two homes post alternately, so that the ratio
//! is taken under the same load (other work on a shared machine shifts the
//! absolute figures), in wall and in CPU time, as medians of single posts.

#[path = "../../kith-store/benches/corpus/mod.rs"]
mod corpus;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::Criterion;
use kith_node::{Home, HomeSource, Service};
use rand::SeedableRng;
use rand::rngs::StdRng;

const SMALL: usize = 100;
const LARGE: usize = 100_000;
/// A home is put back to how it was built once it holds this many posts
/// more. The small home stays in its first feed shard (`SHARD_MAX_CHANGES`,
/// 512 changes); the large one, built with 100,000 posts, starts at 160
/// changes into its current shard and stays below 512 too.
const REGROWTH: usize = 150;
/// Posts between two checkpoints, in both homes: the regrowth, so that a
/// home is checkpointed, timed, just before it is put back (closing it
/// untimed would checkpoint it for free). More than a node makes between
/// two ticks, unless in a burst.
const CHECKPOINT_EVERY: usize = REGROWTH;
/// Distinct texts cycled through; generated up front.
const TEXTS: usize = 1024;
/// Posts per home in the interleaved comparison (the small home stays in its
/// first shard).
const INTERLEAVED: usize = 150;

/// One person's home on disk, and how many posts it holds.
struct Feed {
    /// The home as built, in memory: the source of every restore.
    built: tempfile::TempDir,
    built_posts: usize,
    on_disk: tempfile::TempDir,
    service: Service,
    posts: usize,
    /// Posts since the last checkpoint.
    unchecked: usize,
}

fn home_in(dir: &Path) -> Home {
    Home {
        dir: dir.join("kith"),
        source: HomeSource::Flag,
    }
}

/// A copy of the home in `from`, on disk, opened.
fn open_copy(from: &Path) -> (tempfile::TempDir, Service) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let home = home_in(dir.path());
    std::fs::create_dir(&home.dir).expect("home directory");
    for entry in std::fs::read_dir(home_in(from).dir).expect("built home") {
        let entry = entry.expect("built home entry");
        // `fs::copy` keeps the 0600 mode of the secret key files.
        let to = home.dir.join(entry.file_name());
        std::fs::copy(entry.path(), &to).expect("copy");
        // On disk before the home is used: the measured posts' syncs must not
        // wait behind the writeback of tens of megabytes of copy.
        std::fs::File::open(&to)
            .and_then(|f| f.sync_all())
            .expect("sync the copy");
    }
    let (service, created) = Service::open(&home).expect("open the copied home");
    assert!(!created, "the copied home keeps its identity");
    (dir, service)
}

impl Feed {
    /// A home on disk whose owner has posted `n` times. The posts are made
    /// with `Service::post` in a home in memory (tmpfs, where there is one:
    /// each post's durable commit would otherwise wait for the disk), which
    /// is then copied to disk and reopened, so that the measured posts pay
    /// for a real durable commit.
    fn build(n: usize, texts: &[String]) -> Feed {
        let built = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("scratch directory");
        let (mut service, created) = Service::open(&home_in(built.path())).expect("open");
        assert!(created, "a fresh home gets a new identity");
        let started = Instant::now();
        for i in 0..n {
            service.post(&texts[i % texts.len()], None).expect("post");
        }
        let took = started.elapsed();
        eprintln!(
            "post: made {n} posts with Service::post in {:.1} s ({:.0} posts/s, {:.3} ms/post, \
             store in memory)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            took.as_secs_f64() * 1e3 / n as f64
        );
        // What a running node does while idle: seal its history into blocks.
        while service.store_mut().seal(1024).expect("seal") > 0 {}
        drop(service);
        let (on_disk, service) = open_copy(built.path());
        let mut feed = Feed {
            built,
            built_posts: n,
            on_disk,
            service,
            posts: n,
            unchecked: 0,
        };
        feed.post(texts); // Loads the current shard, as any running node has.
        feed
    }

    fn post(&mut self, texts: &[String]) {
        let text = &texts[self.posts % texts.len()];
        self.service.post(text, None).expect("post");
        self.posts += 1;
        self.unchecked += 1;
    }

    /// Posts, and checkpoints if [`CHECKPOINT_EVERY`] posts have been made
    /// since the last checkpoint; returns the time both took.
    fn post_and_checkpoint(&mut self, texts: &[String]) -> Duration {
        let started = Instant::now();
        self.post(texts);
        if self.unchecked >= CHECKPOINT_EVERY {
            self.service.store_mut().flush().expect("checkpoint");
            self.unchecked = 0;
        }
        started.elapsed()
    }

    /// Puts the home back to how it was built (plus one post, which loads
    /// the current shard) once it has grown by `regrowth` posts.
    fn restore_after(&mut self, regrowth: usize, texts: &[String]) {
        if self.posts >= self.built_posts + regrowth {
            let (dir, service) = open_copy(self.built.path());
            self.service = service;
            self.on_disk = dir;
            self.posts = self.built_posts;
            self.unchecked = 0;
            self.post(texts);
        }
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut rng = StdRng::seed_from_u64(0x706f7374);
    let texts: Vec<String> = (0..TEXTS)
        .map(|_| corpus::post_text(&mut rng, corpus::POST_CHARS))
        .collect();
    let mut small = Feed::build(SMALL, &texts);
    let mut large = Feed::build(LARGE, &texts);

    let mut group = c.benchmark_group("post");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, feed) in [
        (format!("after_{SMALL}_posts"), &mut small),
        (format!("after_{LARGE}_posts"), &mut large),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    feed.restore_after(REGROWTH, &texts);
                    total += feed.post_and_checkpoint(&texts);
                }
                total
            });
        });
    }
    group.finish();
    c.final_summary();

    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --benches` runs each benchmark once; that is enough.
    }
    small.restore_after(0, &texts);
    large.restore_after(0, &texts);
    let before = (small.posts, large.posts);
    let (mut small_times, mut large_times) = (Vec::new(), Vec::new());
    for _ in 0..INTERLEAVED {
        for (feed, out) in [
            (&mut small, &mut small_times),
            (&mut large, &mut large_times),
        ] {
            let (wall, cpu) = (Instant::now(), corpus::thread_cpu_time());
            feed.post(&texts);
            out.push((wall.elapsed(), corpus::thread_cpu_time() - cpu));
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let medians = |times: &[(Duration, Duration)]| {
        (
            median(times.iter().map(|t| t.0).collect()),
            median(times.iter().map(|t| t.1).collect()),
        )
    };
    let ((small_wall, small_cpu), (large_wall, large_cpu)) =
        (medians(&small_times), medians(&large_times));
    println!(
        "post: interleaved, median of {INTERLEAVED} posts each: {:.3} ms wall / {:.3} ms CPU \
         with {} posts before; {:.3} ms wall / {:.3} ms CPU with {} posts before",
        ms(small_wall),
        ms(small_cpu),
        before.0,
        ms(large_wall),
        ms(large_cpu),
        before.1,
    );
    println!(
        "post: ratio {:.2} wall, {:.2} CPU (target <= 1.2)",
        ms(large_wall) / ms(small_wall),
        ms(large_cpu) / ms(small_cpu)
    );
}
