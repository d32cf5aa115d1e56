//! Harness for end-to-end tests: runs the real `kith` binary against real
//! home directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `kith` binary, built once per test process with the same profile as
/// the tests.
pub fn kith_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "kith-cli",
                "--bin",
                "kith",
                "--message-format=json",
            ])
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "building kith failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                v.get("executable")
                    .and_then(|e| e.as_str())
                    .map(PathBuf::from)
            })
            .next_back()
            .expect("cargo reports the kith executable")
    })
}

/// A home directory in a temporary directory.
#[derive(Debug)]
pub struct TestHome {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    /// Run `kith` inside this network namespace (see [`lan`]).
    pub netns: Option<String>,
}

/// What one run of `kith` produced.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            ok: o.status.success(),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The stdout of a successful run, trimmed; panics with stderr otherwise.
    #[track_caller]
    pub fn out(&self) -> &str {
        assert!(self.ok, "kith failed ({:?}): {}", self.code, self.stderr);
        self.stdout.trim()
    }

    /// The stdout of a successful run parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.out())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// Asserts the run failed with a message containing `needle`.
    #[track_caller]
    pub fn fails_with(&self, needle: &str) {
        assert!(!self.ok, "expected failure, got success: {}", self.stdout);
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {}",
            self.stderr
        );
    }
}

impl TestHome {
    /// A fresh, not yet initialised home.
    pub fn new() -> TestHome {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("home");
        TestHome {
            _tmp: tmp,
            dir,
            netns: None,
        }
    }

    /// A fresh home at `dir` (which must not exist yet), for tests that
    /// need it on a particular disk.
    pub fn in_dir(dir: PathBuf) -> TestHome {
        TestHome {
            _tmp: tempfile::tempdir().expect("tempdir"),
            dir,
            netns: None,
        }
    }

    /// A home with an identity named `name`.
    pub fn init(name: &str) -> TestHome {
        let h = TestHome::new();
        h.run(&["init", "--name", name]).out();
        h
    }

    /// Runs `kith --home DIR args…`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("kith runs"))
    }

    /// The command, for callers that need to control the process.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(kith_bin());
                c
            }
            None => Command::new(kith_bin()),
        };
        // Never a terminal on stdin: a command that creates an identity
        // would ask for a name on one.
        c.arg("--home")
            .arg(&self.dir)
            .args(args)
            .env_remove("KITH_HOME")
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null());
        c
    }

    /// This home's identity id.
    pub fn id(&self) -> String {
        self.run(&["whoami", "--json"]).json()["identity"]
            .as_str()
            .expect("identity")
            .to_owned()
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

pub mod lan;
pub mod nat;

/// A `kith node` process; stopped with SIGTERM when dropped.
#[derive(Debug)]
pub struct NodeProc {
    pub child: std::process::Child,
    /// The status the node printed when it was ready.
    pub status: serde_json::Value,
}

impl NodeProc {
    /// The first TCP listen address.
    pub fn addr(&self) -> String {
        self.status["listen"][0]
            .as_str()
            .expect("the node listens")
            .to_owned()
    }

    /// Stops the node with SIGTERM and waits for it; panics if it fails.
    pub fn stop(mut self) {
        terminate(&mut self.child);
        let status = self.child.wait().expect("node exits");
        assert!(status.success(), "node exited with {status}");
    }
}

fn terminate(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            terminate(&mut self.child);
            let _ = self.child.wait();
        }
    }
}

impl TestHome {
    /// Starts `kith node --json` with `args` and waits (with a deadline)
    /// until it reports that it listens.
    pub fn node(&self, args: &[&str]) -> NodeProc {
        use std::io::BufRead;
        assert!(
            self.netns.is_some() || args.contains(&"--no-mdns"),
            "tests never run mDNS in the machine's own network namespace: pass --no-mdns or use a Lan"
        );
        let mut all = vec!["node", "--json"];
        all.extend_from_slice(args);
        let mut child = self
            .command(&all)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("kith node starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("node reported within 60 s");
        let status =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("node printed {line:?}: {e}"));
        NodeProc { child, status }
    }
}

/// The post ids in a `--json` feed, newest first.
pub fn ids_in(feed: &serde_json::Value) -> Vec<String> {
    feed.as_array()
        .expect("a feed is a JSON array")
        .iter()
        .map(|p| p["id"].as_str().expect("every post has an id").to_owned())
        .collect()
}

/// The ids of `author`'s posts in `home`'s feed (up to 5000), newest first.
pub fn feed_ids(home: &TestHome, author: &str) -> Vec<String> {
    ids_in(
        &home
            .run(&["feed", "--author", author, "--limit", "5000", "--json"])
            .json(),
    )
}

/// Waits (up to 30 s) until `post` is in `home`'s feed.
#[track_caller]
pub fn wait_for_post(home: &TestHome, post: &str, what: &str) {
    converge(30, what, || {
        ids_in(&home.run(&["feed", "--limit", "1000", "--json"]).json())
            .iter()
            .any(|id| id == post)
            .then_some(())
    });
}

/// Waits until `check` returns `Some`, polling, or panics after `secs`
/// seconds with `what` in the message.
#[track_caller]
pub fn converge<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no convergence within {secs} s: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}
