//! What a command does when another process has the store open.
//!
//! Only one process opens a store at a time. A command that finds it in use
//! while no node answers has most likely met a `kith node` that is starting
//! (it opens the store before its API listens), or another command that is
//! about to finish. So it waits a little, polling: once a node file
//! appears and its node answers, the command goes through it; once the
//! store is free, it opens it itself.

use std::time::{Duration, Instant};

use kith_node::home::NODE_FILE;
use kith_node::{Call, Home, Reply, Service};

/// How long a command waits for the store or a node.
pub const STORE_WAIT: Duration = Duration::from_secs(10);
/// How often it looks again.
const POLL: Duration = Duration::from_millis(100);

/// What waiting ended with.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once per command and moved out at once"
)]
pub enum Waited {
    /// A node answered, and this is its reply to the call.
    Node(Reply),
    /// The store was free, and is now open here.
    Store(Service),
}

/// Waits up to [`STORE_WAIT`] for a node to answer `call` or for the store
/// to be free; `in_use` is the error that sent the command here, returned
/// (with how long it waited) if neither happens.
pub fn wait(home: &Home, call: &Call, in_use: anyhow::Error) -> anyhow::Result<Waited> {
    let deadline = Instant::now() + STORE_WAIT;
    let node_file = home.path(NODE_FILE);
    // A node that starts writes its node file once it holds the store.
    // Each node file is asked once: one that named no node that answers
    // (left by a crash) is not asked again until it changes.
    let mut seen = None;
    let mut last = in_use;
    while Instant::now() < deadline {
        std::thread::sleep(POLL);
        let now = std::fs::read(&node_file).ok();
        if now.is_some()
            && now != seen
            && let Some(reply) = super::call_node(home, call)?
        {
            return Ok(Waited::Node(reply));
        }
        seen = now;
        match kith_node::node::open_service(home) {
            Ok(service) => return Ok(Waited::Store(service)),
            Err(e) if kith_node::node::store_in_use(&e) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last.context(format!(
        "gave up after {} s waiting for the store to close or a node to answer",
        STORE_WAIT.as_secs()
    )))
}
