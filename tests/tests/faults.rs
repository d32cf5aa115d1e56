//! Faults other than a crash: a full disk, flipped bytes in the journal and
//! in the redb file, and SIGKILL during a repair. Every case counts the
//! changes kith acknowledged and asserts that none is lost ("lost: 0"),
//! with the real binary. Seeded: `KITH_TEST_SEED` replays the offsets and
//! timings. The full-disk case mounts a small tmpfs, which needs root.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kith_tests::{NodeProc, TestHome, converge, feed_ids};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `KITH_TEST_SEED`, else a random seed (printed by the caller).
fn seed() -> u64 {
    std::env::var("KITH_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random)
}

const LOOPBACK: [&str; 3] = ["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];

/// A node on loopback, dialling `peer` if given.
fn node(home: &TestHome, peer: Option<&str>) -> NodeProc {
    let mut args = LOOPBACK.to_vec();
    if let Some(p) = peer {
        args.extend(["--peer", p]);
    }
    home.node(&args)
}

/// Posts `n` posts through whatever runs on `home`; returns their ids.
fn post_many(home: &TestHome, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| home.run(&["post", &format!("{tag} {i}")]).out().to_owned())
        .collect()
}

/// The acknowledged posts missing from `home`'s feed of `author`.
fn lost(home: &TestHome, author: &str, acknowledged: &[String]) -> Vec<String> {
    let stored: HashSet<String> = feed_ids(home, author).into_iter().collect();
    acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .cloned()
        .collect()
}

/// alice -- bob on loopback, bob following alice and holding `n` of her
/// posts; returns bob's node and alice's acknowledged posts. Alice's node
/// is returned still running.
fn alice_and_bob(n: usize) -> (TestHome, NodeProc, TestHome, NodeProc, Vec<String>) {
    let alice = TestHome::init("alice");
    let bob = TestHome::init("bob");
    let alice_node = node(&alice, None);
    let bob_node = node(&bob, Some(&alice_node.addr()));
    bob.run(&["follow", &alice.id()]).out();
    let posts = post_many(&alice, n, "alice says");
    let id = alice.id();
    converge(60, "bob holds all of alice's posts", || {
        lost(&bob, &id, &posts).is_empty().then_some(())
    });
    (alice, alice_node, bob, bob_node, posts)
}

fn sigkill(node: &mut NodeProc) {
    node.child.kill().unwrap();
    node.child.wait().unwrap();
}

/// Flips one bit of each of `count` bytes at seeded offsets in `file`
/// (within `range` of it, if given); returns the offsets.
fn flip(file: &Path, rng: &mut StdRng, count: usize, range: Option<(usize, usize)>) -> Vec<usize> {
    let mut bytes = std::fs::read(file).unwrap();
    let (lo, hi) = range.unwrap_or((0, bytes.len()));
    let hi = hi.min(bytes.len());
    let offsets: Vec<usize> = (0..count).map(|_| rng.random_range(lo..hi)).collect();
    for &at in &offsets {
        bytes[at] ^= 1 << rng.random_range(0..8);
    }
    std::fs::write(file, bytes).unwrap();
    offsets
}

fn files_starting(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect()
}

// alice -- bob (loopback). alice's node is killed, bytes of her journal are
// flipped; the records after a damaged one are kept, the original is kept
// aside, and what was skipped comes back from bob.
#[test]
fn a_flipped_journal_byte_costs_one_record_which_peers_give_back() {
    let seed = seed();
    println!("journal flips: KITH_TEST_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let (alice, mut alice_node, bob, bob_node, posts) = alice_and_bob(40);
    sigkill(&mut alice_node);
    let journal = alice.path("kith.journal");
    let len = std::fs::metadata(&journal).unwrap().len() as usize;
    assert!(len > 0, "the killed node's journal holds its posts");
    let offsets = flip(&journal, &mut rng, 3, None);
    println!("journal flips: {len} bytes, flipped at {offsets:?}");

    let _alice_node = node(&alice, Some(&bob_node.addr()));
    let kept = files_starting(&alice.dir, "kith.journal.damaged-");
    assert_eq!(kept.len(), 1, "the damaged journal is kept aside once");
    let id = alice.id();
    let missing = converge(60, "alice has every acknowledged post again", || {
        let missing = lost(&alice, &id, &posts);
        missing.is_empty().then_some(missing)
    });
    println!(
        "journal flips: {} acknowledged, lost: {}",
        posts.len(),
        missing.len()
    );
    drop(bob);
}

// One node, alone on loopback, its home on a 32 MiB tmpfs that fills up.
#[test]
fn a_full_disk_refuses_writes_clearly_keeps_reads_and_loses_nothing() {
    let mount = Tmpfs::new(32);
    let home = TestHome::in_dir(mount.dir.join("home"));
    home.run(&["init", "--name", "Ada"]).out();
    let id = home.id();
    let node = node(&home, None);
    let mut acknowledged = post_many(&home, 20, "before the disk fills");
    // Leave a few MiB, then post until kith refuses.
    mount.fill_leaving(6 << 20, "filler-1");
    let refused = loop {
        let run = home.run(&["post", &format!("filling {}", acknowledged.len())]);
        if run.ok {
            acknowledged.push(run.stdout.trim().to_owned());
            assert!(acknowledged.len() < 20_000, "the disk never filled");
        } else {
            break run;
        }
    };
    assert!(
        refused.stderr.contains("disk") && refused.stderr.contains("full"),
        "a full disk is named as such: {}",
        refused.stderr
    );
    // Now the disk is full to the last byte, by someone else.
    mount.fill_leaving(0, "filler-2");
    home.run(&["post", "on a full disk"]).fails_with("full");
    // Reads keep working, and hold everything acknowledged.
    assert_eq!(lost(&home, &id, &acknowledged), Vec::<String>::new());

    // A restart while the disk is still full: it may refuse to start, but
    // it must say why and keep everything.
    node.stop();
    let restarted = start_or_fail(&home);
    let node = match restarted {
        Ok(n) => Some(n),
        Err(stderr) => {
            assert!(
                stderr.contains("full"),
                "a start on a full disk says the disk is full: {stderr}"
            );
            None
        }
    };
    // Space comes back: writes work again, without a restart if the node
    // is up.
    mount.remove("filler-2");
    mount.remove("filler-1");
    let _node = node.unwrap_or_else(|| self::node(&home, None));
    acknowledged.push(home.run(&["post", "space is back"]).out().to_owned());
    let missing = lost(&home, &id, &acknowledged);
    println!(
        "full disk: {} acknowledged, lost: {}",
        acknowledged.len(),
        missing.len()
    );
    assert_eq!(missing, Vec::<String>::new(), "acknowledged posts lost");
}

/// Starts a node; `Err(stderr)` if it exits before it listens.
fn start_or_fail(home: &TestHome) -> Result<NodeProc, String> {
    use std::io::{BufRead, Read};
    let mut all = vec!["node", "--json"];
    all.extend(LOOPBACK);
    let mut child = home
        .command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    if line.trim().is_empty() {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        child.wait().unwrap();
        return Err(err);
    }
    let status = serde_json::from_str(&line).unwrap();
    Ok(NodeProc { child, status })
}

// alice -- bob (loopback). alice's store is damaged at seeded offsets while
// her node is stopped: no command panics, `kith check` finds the damage it
// can see, `kith repair` (killed once part-way) rebuilds the store, and bob
// gives back what could not be read.
#[test]
fn a_damaged_store_never_panics_and_repair_rebuilds_it_with_help_from_peers() {
    let seed = seed();
    println!("damaged store: KITH_TEST_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let (alice, alice_node, _bob, bob_node, posts) = alice_and_bob(60);
    alice_node.stop();
    let store = alice.path("kith.redb");
    let pristine = std::fs::read(&store).unwrap();
    let id = alice.id();
    let mut damage_seen = 0;
    for trial in 0..8 {
        std::fs::write(&store, &pristine).unwrap();
        // Half the trials hit the first pages, where redb's header and
        // the roots of the trees are; the rest anywhere.
        let range = (trial % 2 == 0).then_some((0, 64 << 10));
        let offsets = flip(&store, &mut rng, 4, range);
        for args in [&["feed", "--json"][..], &["check"][..]] {
            let run = alice.run(args);
            assert_ne!(
                run.code,
                Some(101),
                "seed {seed}: `kith {}` panicked after flips at {offsets:?}: {}",
                args[0],
                run.stderr
            );
            if !run.ok {
                assert!(
                    run.stderr.contains("kith repair"),
                    "seed {seed}: `kith {}` failed without saying what to do: {}",
                    args[0],
                    run.stderr
                );
                damage_seen += 1;
            }
        }
    }
    println!("damaged store: 8 trials, {damage_seen} runs found damage");
    // The last trial's damage is repaired, with a SIGKILL part-way first.
    let mut repair = alice
        .command(&["repair"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let kill_after = Duration::from_millis(rng.random_range(0..40));
    let started = Instant::now();
    while started.elapsed() < kill_after && repair.try_wait().unwrap().is_none() {
        std::thread::yield_now();
    }
    let _ = repair.kill();
    repair.wait().unwrap();
    let run = alice.run(&["repair"]);
    if run.ok {
        println!("damaged store: {}", run.stdout.trim());
    } else {
        // The killed repair may have finished just before its kill: then
        // there is nothing left to repair but a sound store.
        assert!(
            !files_starting(&alice.dir, "kith.redb.damaged-").is_empty(),
            "seed {seed}: repair failed: {}",
            run.stderr
        );
    }
    assert!(
        !files_starting(&alice.dir, "kith.redb.damaged-").is_empty(),
        "the damaged file is kept aside"
    );
    alice.run(&["check"]).out();
    let _alice_node = node(&alice, Some(&bob_node.addr()));
    let missing = converge(60, "alice has every acknowledged post again", || {
        let missing = lost(&alice, &id, &posts);
        missing.is_empty().then_some(missing)
    });
    println!(
        "damaged store: {} acknowledged, lost: {}",
        posts.len(),
        missing.len()
    );
}

// No node: a store on a 16 MiB tmpfs with the free-space margin off, so
// that writes fail inside redb itself, which then refuses everything until
// the store opens again.
#[test]
fn a_store_a_failed_write_closed_opens_again_once_there_is_room() {
    use kith_core::schema::feed;
    use kith_core::{DeviceCert, DeviceKey, DocId, IdentityKey, SpaceId};
    use kith_store::{FeedQuery, LocalSigner, Store};

    let mount = Tmpfs::new(16);
    let path = mount.dir.join("kith.redb");
    let identity = IdentityKey::from_secret_bytes(&[7; 32]);
    let device = DeviceKey::from_secret_bytes(&[8; 32]);
    let mut store = Store::open(&path).unwrap();
    store
        .add_certificate(&DeviceCert::issue(&identity, &device, 1))
        .unwrap();
    store.set_min_free_bytes(0);
    let signer = LocalSigner {
        key: &device,
        author: identity.id(),
    };
    let query = FeedQuery {
        limit: 100_000,
        ..FeedQuery::default()
    };
    mount.fill_leaving(2 << 20, "filler");
    let mut acknowledged = 0u64;
    let failure = loop {
        // Shards of 512 changes, as a node writes them.
        let doc = DocId::feed(identity.id(), SpaceId::PUBLIC, (acknowledged / 512) as u32);
        let text = format!("{acknowledged} {}", "y".repeat(2_000));
        let made = store.commit_local(doc, signer, 1 + acknowledged, |d| {
            feed::create_post(
                d,
                &format!("k{acknowledged}"),
                &text,
                1 + acknowledged,
                None,
            )
        });
        match made {
            Ok(_) => acknowledged += 1,
            Err(e) => break e,
        }
        assert!(acknowledged < 100_000, "the disk never filled");
    };
    println!("redb on a full disk: {acknowledged} acknowledged, then: {failure}");
    assert!(
        failure.to_string().contains("full"),
        "the failure names the full disk: {failure}"
    );
    // Whatever state the failure left, reopening while the disk is still
    // full either works or says the disk is full; it never loses anything.
    if store.needs_reopen()
        && let Err(e) = store.reopen()
    {
        assert!(e.to_string().contains("full"), "reopen says why: {e}");
        if store.is_closed() {
            let refused = store.feed(&query).unwrap_err().to_string();
            assert!(refused.contains("closed"), "a closed store says so");
        } else {
            // Open for reading while the journal waits for room to replay.
            let readable = store.feed(&query).unwrap().len() as u64;
            assert!(readable <= acknowledged + 1);
            assert!(store.needs_reopen(), "the next write opens it again");
        }
    }
    mount.remove("filler");
    if store.needs_reopen() {
        store.reopen().unwrap();
    }
    // Every acknowledged post is stored; the one whose write failed may be
    // too, if it failed after its journal record (it was not acknowledged).
    let stored = store.feed(&query).unwrap().len() as u64;
    println!(
        "redb on a full disk: {acknowledged} acknowledged, {stored} stored, lost: {}",
        acknowledged.saturating_sub(stored)
    );
    assert!(stored >= acknowledged, "acknowledged posts lost");
    assert!(
        stored <= acknowledged + 1,
        "only the failed post may be in doubt"
    );
    // And writes work again.
    let doc = DocId::feed(identity.id(), SpaceId::PUBLIC, 1_000);
    store
        .commit_local(doc, signer, 1, |d| {
            d.create_post("again", "room again", 1, None)
        })
        .unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.feed(&query).unwrap().len() as u64, stored + 1);
}

/// A tmpfs of a fixed size, unmounted when dropped.
struct Tmpfs {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Tmpfs {
    fn new(mib: u64) -> Tmpfs {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("disk");
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m")])
            .arg("tmpfs")
            .arg(&dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a small tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { _tmp: tmp, dir }
    }

    /// Writes a file until only `free` bytes are left (0: until the disk
    /// refuses more).
    fn fill_leaving(&self, free: u64, name: &str) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.dir.join(name)).unwrap();
        let chunk = vec![0x5a_u8; 64 << 10];
        let mut left = free_bytes(&self.dir).saturating_sub(free);
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if file.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        // To the brim: the last bytes, as long as the disk takes them.
        if free == 0 {
            while file.write_all(&chunk[..512]).is_ok() {}
            while file.write_all(&[0]).is_ok() {}
        }
    }

    fn remove(&self, name: &str) {
        std::fs::remove_file(self.dir.join(name)).unwrap();
    }
}

/// Free bytes on the file system holding `dir`, as `df` reports them.
fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
