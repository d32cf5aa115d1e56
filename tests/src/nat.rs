//! A simulated internet for tests: NATed LANs and public hosts in network
//! namespaces, made by `scripts/nat` and torn down when the [`Nat`] is
//! dropped. The internet is 203.0.113.0/24 and exists only inside these
//! namespaces. Needs root, iproute2 and iptables.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/nat")
}

/// A topology of `scripts/nat`.
#[derive(Debug)]
pub struct Nat {
    pub name: String,
}

impl Nat {
    /// Builds the topology of `specs` (`pub:HOST`, `lan:LAN:TYPE:HOST,…`;
    /// see `scripts/nat`); panics with the script's reason if it cannot.
    pub fn up(specs: &[&str]) -> Nat {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "kn{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("bash")
            .arg(script())
            .arg("up")
            .arg(&name)
            .args(specs)
            .output()
            .expect("bash runs scripts/nat");
        let nat = Nat { name };
        assert!(
            out.status.success(),
            "cannot build the test internet (it needs root, iproute2 and iptables; CI has them): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        nat
    }

    /// The namespace of `host`.
    pub fn netns(&self, host: &str) -> String {
        format!("{}-{host}", self.name)
    }

    /// The IPv4 address of `host` (of a router `rLAN`: its public one).
    pub fn ip(&self, host: &str) -> String {
        let out = Command::new("bash")
            .arg(script())
            .args(["addr", &self.name, host])
            .output()
            .expect("bash runs scripts/nat");
        assert!(out.status.success(), "no host {host}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A home for `host`, with an identity called `name`.
    pub fn home(&self, host: &str, name: &str) -> crate::TestHome {
        let mut h = crate::TestHome::new();
        h.netns = Some(self.netns(host));
        h.run(&["init", "--name", name]).out();
        h
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["down", &self.name])
            .status();
    }
}
