//! A simulated LAN for tests: network namespaces joined by a bridge, made by
//! `scripts/lan` and torn down when the [`Lan`] is dropped. Hosts are
//! 10.231.0.1 … inside their own namespaces; mDNS is real multicast on the
//! bridge and never reaches the machine's own network. Needs root.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The `scripts/lan` of this repository.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/lan")
}

/// A LAN of `n` hosts.
#[derive(Debug)]
pub struct Lan {
    pub name: String,
    pub hosts: usize,
}

impl Lan {
    /// Builds a LAN of `n` hosts; panics with a clear message if this is not
    /// possible here (not root, no iproute2).
    pub fn up(n: usize) -> Lan {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        // Short names: interface and namespace names have length limits.
        let name = format!(
            "kt{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("bash")
            .arg(script())
            .args(["up", &name, &n.to_string()])
            .output()
            .expect("bash runs scripts/lan");
        let lan = Lan { name, hosts: n };
        assert!(
            out.status.success(),
            "cannot build the test LAN (it needs root and iproute2; CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lan
    }

    /// The namespace of host `i` (1-based).
    pub fn netns(&self, i: usize) -> String {
        assert!((1..=self.hosts).contains(&i));
        format!("{}-{i}", self.name)
    }

    /// The address of host `i` (1-based).
    pub fn ip(&self, i: usize) -> String {
        format!("10.231.0.{i}")
    }

    /// Homes for `names`, the first on host 1 and so on, each with an
    /// identity of that name.
    pub fn homes(&self, names: &[&str]) -> Vec<crate::TestHome> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut h = crate::TestHome::new();
                h.netns = Some(self.netns(i + 1));
                h.run(&["init", "--name", name]).out();
                h
            })
            .collect()
    }

    /// Starts a node of `home` on host `i`, listening on its LAN address
    /// with mDNS on.
    pub fn start(&self, home: &crate::TestHome, i: usize) -> crate::NodeProc {
        let listen = format!("/ip4/{}/tcp/4610", self.ip(i));
        home.node(&["--listen", &listen])
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["down", &self.name])
            .status();
    }
}
