//! What the multi-node benchmarks share: the release `kith` binary, node
//! processes driven through their local APIs, and a corpus of signed posts.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kith_core::archive::Archive;
use kith_core::{DeviceCert, DeviceKey, IdentityKey, SignedChange, SpaceId};
use kith_node::{Call, Reply};

pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn kith_bin() -> PathBuf {
    let bin = std::env::var_os("KITH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/kith")
        });
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release --bin kith` (scripts/bench does)",
        bin.display()
    );
    bin
}

pub struct Node {
    pub child: Child,
    pub home: PathBuf,
    pub api: String,
    pub token: String,
    pub addr: String,
    /// The one-time login link of the web app.
    pub app: String,
    /// The network namespace the node runs in, if not this process's.
    pub netns: Option<String>,
    agent: ureq::Agent,
}

impl Node {
    pub fn start(bin: &Path, home: &Path, peers: &[String]) -> Node {
        let mut args = vec!["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--probe"];
        for p in peers {
            args.extend(["--peer", p]);
        }
        Node::start_in(bin, None, home, &args)
    }

    /// Starts `kith node --json ARGS…` of `home`, inside the network
    /// namespace `netns` if one is named. Its API (on that namespace's
    /// loopback) is called from a thread that enters the namespace.
    pub fn start_in(bin: &Path, netns: Option<&str>, home: &Path, args: &[&str]) -> Node {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("--home")
            .arg(home)
            .args(["node", "--json"])
            .args(args);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env("RUST_LOG", "error")
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let status: serde_json::Value = serde_json::from_str(&line).expect("node status line");
        let token = std::fs::read_to_string(home.join("api-token"))
            .unwrap()
            .trim()
            .to_owned();
        Node {
            child,
            home: home.to_owned(),
            api: status["api"].as_str().unwrap().to_owned(),
            token,
            addr: status["listen"][0].as_str().unwrap().to_owned(),
            app: status["app"].as_str().unwrap_or_default().to_owned(),
            netns: netns.map(str::to_owned),
            agent: ureq::Agent::config_builder().build().into(),
        }
    }

    pub fn call(&self, call: &Call) -> Reply {
        self.try_call(call).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A call whose refusal (a wait that timed out, say) is an answer too.
    pub fn try_call(&self, call: &Call) -> Result<Reply, String> {
        match &self.netns {
            Some(ns) => in_netns(ns, || self.call_here(call)),
            None => self.call_here(call),
        }
    }

    fn call_here(&self, call: &Call) -> Result<Reply, String> {
        let mut response = self
            .agent
            .post(&format!("http://{}/api/call", self.api))
            .header("Authorization", &format!("Bearer {}", self.token))
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(call)
            .expect("api call");
        let status = response.status();
        let text = response.body_mut().read_to_string().expect("api reply");
        if !status.is_success() {
            return Err(format!("{call:?}: {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).expect("api reply"))
    }

    /// A GET of `path` on the node's API, with the token; the status and
    /// the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        match &self.netns {
            Some(ns) => in_netns(ns, || self.get_here(path)),
            None => self.get_here(path),
        }
    }

    fn get_here(&self, path: &str) -> (u16, String) {
        let mut response = self
            .agent
            .get(&format!("http://{}{path}", self.api))
            .header("Authorization", &format!("Bearer {}", self.token))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .expect("api call");
        let status = response.status().as_u16();
        (
            status,
            response.body_mut().read_to_string().expect("api reply"),
        )
    }

    /// CPU time the node's threads have had so far, in nanoseconds, from
    /// the kernel's scheduler statistics (`/proc/PID/task/*/schedstat`).
    pub fn cpu_ns(&self) -> u64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return 0;
        };
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// Peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.memory_kib("VmHWM:")
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.memory_kib("VmRSS:")
    }

    /// One memory figure of `/proc/PID/status` (`field` with its colon), in KiB.
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// Runs `f` on a thread inside the network namespace `ns` (made by `ip
/// netns add`): sockets it opens belong to that namespace.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("netns exists");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {ns}: {e}"));
            f()
        })
        .join()
        .expect("netns thread")
    })
}

/// Whether this process runs as root (network namespaces need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A namespace LAN made by `scripts/lan`, torn down on drop.
pub struct Lan {
    pub name: String,
}

impl Lan {
    pub fn up(n: usize) -> Lan {
        let name = format!("kb{}", std::process::id());
        let lan = Lan { name };
        let up = Command::new("bash")
            .arg(lan_script())
            .args(["up", &lan.name, &n.to_string()])
            .status()
            .unwrap();
        assert!(up.success(), "scripts/lan up failed");
        lan
    }

    /// The namespace of host `i` (1-based).
    pub fn netns(&self, i: usize) -> String {
        format!("{}-{i}", self.name)
    }

    /// The address of host `i` (1-based).
    pub fn ip(&self, i: usize) -> String {
        format!("10.231.0.{i}")
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(lan_script())
            .args(["down", &self.name])
            .status();
    }
}

fn lan_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lan")
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

pub fn kith(bin: &Path, home: &Path, args: &[&str]) -> String {
    kith_in(bin, None, home, args)
}

/// Runs `kith --home HOME ARGS…`, inside the network namespace `ns` if one
/// is named, and returns what it printed; panics with its errors if it fails.
pub fn kith_in(bin: &Path, ns: Option<&str>, home: &Path, args: &[&str]) -> String {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let out = cmd
        .arg("--home")
        .arg(home)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kith {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn identity(bin: &Path, home: &Path) -> String {
    let me: serde_json::Value =
        serde_json::from_str(&kith(bin, home, &["whoami", "--json"])).unwrap();
    me["identity"].as_str().unwrap().to_owned()
}

/// The newest post of `author` that `node` shows, if any.
pub fn latest(node: &Node, author: kith_core::IdentityId) -> Option<kith_core::PostId> {
    match node.call(&Call::Feed {
        author: Some(author),
        limit: 1,
        group: None,
        before: None,
        home: false,
    }) {
        Reply::Posts(p) => p.first().map(|p| p.id),
        other => panic!("feed: {other:?}"),
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `count` signed posts by `identity` from `device` in `space`, keys
/// `{tag}p{i}`, with feeds rolling over to a new shard as a node's do.
pub fn posts(
    identity: &IdentityKey,
    device: &DeviceKey,
    space: SpaceId,
    tag: &str,
    count: usize,
) -> Vec<SignedChange> {
    let per_shard = kith_node::service::SHARD_MAX_CHANGES as usize;
    kith_core::testing::posts(identity, device, space, tag, count, per_shard)
}

/// `per_author` public posts by each of `authors` identities.
pub fn corpus(authors: usize, per_author: usize) -> Archive {
    corpus_of(0..authors, per_author)
}

/// `per_author` public posts by each of the identities numbered `authors`
/// (at most 100: each number names fixed keys), made on every core.
pub fn corpus_of(authors: std::ops::Range<usize>, per_author: usize) -> Archive {
    assert!(authors.end <= 100, "author numbers name keys: at most 100");
    let numbers: Vec<usize> = authors.collect();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let made: Vec<(DeviceCert, Vec<SignedChange>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = numbers
            .chunks(numbers.len().div_ceil(cores).max(1))
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&a| {
                            let identity = IdentityKey::from_secret_bytes(&[a as u8 + 1; 32]);
                            let device = DeviceKey::from_secret_bytes(&[a as u8 + 101; 32]);
                            let cert = DeviceCert::issue(&identity, &device, 1);
                            let changes = posts(
                                &identity,
                                &device,
                                SpaceId::PUBLIC,
                                &format!("a{a}"),
                                per_author,
                            );
                            (cert, changes)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a corpus thread"))
            .collect()
    });
    let mut archive = Archive::default();
    for (cert, changes) in made {
        archive.certificates.push(cert);
        archive.changes.extend(changes);
    }
    archive
}
