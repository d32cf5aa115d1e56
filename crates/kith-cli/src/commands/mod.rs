//! One module per group of subcommands.

pub mod archive;
pub mod feed;
pub mod group;
pub mod in_use;
pub mod init;
pub mod net;
pub mod node;
pub mod open;
pub mod people;
pub mod post;
pub mod profile;
pub mod service;
pub mod store;

use std::path::PathBuf;

use anyhow::Context as _;
use kith_node::home::{NODE_FILE, TOKEN_FILE};
use kith_node::node::NodeFile;
use kith_node::{ActionError, ApiError, Call, Home, HomeSource, Reply};

/// What every command gets: the global flags.
#[derive(Debug)]
pub struct Context {
    pub home: Option<PathBuf>,
    pub json: bool,
}

impl Context {
    pub fn home(&self) -> anyhow::Result<Home> {
        Ok(Home::resolve(
            self.home.clone(),
            std::env::var_os("KITH_HOME").map(PathBuf::from),
        )?)
    }

    /// Runs a call on the running node only; `None` if no node runs (the
    /// store is then not opened: the caller may have it open already).
    pub fn call_running(&self, call: Call) -> anyhow::Result<Option<Reply>> {
        call_node(&self.home()?, &call)
    }

    /// Runs a call: through the running node's API if there is one (so the
    /// action is live on the network), else on the store directly.
    pub fn call(&self, call: Call) -> anyhow::Result<Reply> {
        let home = self.home()?;
        if let Some(reply) = call_node(&home, &call)? {
            return Ok(reply);
        }
        if home.source != HomeSource::Platform && !home.dir.is_dir() {
            anyhow::bail!(
                "no kith home at {}: create it with `kith init --home {}` (or `kith node --home {}`)",
                home.dir.display(),
                home.dir.display(),
                home.dir.display()
            );
        }
        init::ensure_identity(&home)?;
        // redb may panic on a page damaged outside it, while the store
        // opens, runs the call, or checkpoints as it closes: say what to do
        // rather than end in a backtrace. (The store does not touch its
        // file while a panic unwinds.)
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || -> anyhow::Result<Result<Reply, ActionError>> {
                let mut service = match kith_node::node::open_service(&home) {
                    // A node may be starting: go through it once it answers.
                    Err(e) if kith_node::node::store_in_use(&e) => {
                        match in_use::wait(&home, &call, e)? {
                            in_use::Waited::Node(reply) => return Ok(Ok(reply)),
                            in_use::Waited::Store(service) => service,
                        }
                    }
                    other => other?,
                };
                let done = kith_node::execute(&mut service, call);
                drop(service);
                Ok(done)
            },
        ));
        let done = match done {
            Ok(done) => done?,
            Err(panic) => anyhow::bail!(
                "the store {} is damaged ({}): `kith check` says what is wrong, and `kith repair` rebuilds it from what can be read and from your peers",
                home.store_path().display(),
                kith_store::repair::panic_text(&panic)
            ),
        };
        match done {
            Err(ActionError::NodeOnly) => anyhow::bail!(
                "no node is running on {}: start one with `kith node`",
                home.dir.display()
            ),
            other => Ok(other?),
        }
    }
}

/// Whether a node answers on `home` (its node file names a live API).
pub fn node_is_running(home: &Home) -> bool {
    let Ok(Some((node, _))) = running_node(home) else {
        return false;
    };
    node.api.parse::<std::net::SocketAddr>().is_ok_and(|a| {
        std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok()
    })
}

/// How long the CLI waits for a node to prove itself. Generous: behind a
/// backlog of idle connections a request may wait a few of the API's
/// header timeouts before the node reads it.
const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The running node's API address and token, if a node runs on `home`.
///
/// A node file outlives a node that crashed, and anything may listen on its
/// port later; so the token is only ever sent to a node that proved it
/// holds it: the file must name a loopback address and a live process, and
/// what listens there must answer a fresh challenge (`/api/hello`, see
/// [`kith_node::api::hello`]). Otherwise the file is stale: no node runs.
fn running_node(home: &Home) -> anyhow::Result<Option<(NodeFile, String)>> {
    let Ok(text) = std::fs::read_to_string(home.path(NODE_FILE)) else {
        return Ok(None);
    };
    let Ok(node) = serde_json::from_str::<NodeFile>(&text) else {
        return Ok(None);
    };
    let loopback = node
        .api
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    if !loopback || !process_alive(node.pid) {
        return Ok(None);
    }
    let token = std::fs::read_to_string(home.path(TOKEN_FILE)).with_context(|| {
        format!(
            "a node runs on {} but its API token is unreadable",
            home.dir.display()
        )
    })?;
    match node_proof(&node.api, token.trim())? {
        Proof::Valid => Ok(Some((node, token))),
        Proof::Absent => Ok(None),
        Proof::Wrong => {
            eprintln!(
                "warning: {} names {}, but what listens there is not this home's node; working without it",
                home.path(NODE_FILE).display(),
                node.api
            );
            Ok(None)
        }
    }
}

/// Whether process `pid` exists (as this user's: another user's process
/// with that id cannot be this home's node).
fn process_alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

/// What listens at a node file's address, as far as the token is concerned.
enum Proof {
    /// It proved it holds the token.
    Valid,
    /// Nothing answered.
    Absent,
    /// Something answered without the proof.
    Wrong,
}

/// Sends `api` a fresh challenge, never the token, and checks the answer.
fn node_proof(api: &str, token: &str) -> anyhow::Result<Proof> {
    let challenge: String = kith_core::keys::random_bytes::<32>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(HELLO_TIMEOUT))
        .build()
        .into();
    let response =
        agent
            .post(&format!("http://{api}/api/hello"))
            .send_json(kith_node::api::hello::Hello {
                challenge: challenge.clone(),
            });
    let mut response = match response {
        Ok(r) => r,
        Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Ok(Proof::Absent);
        }
        Err(_) => return Ok(Proof::Wrong),
    };
    let proved = response.status().is_success()
        && response
            .body_mut()
            .read_json::<kith_node::api::hello::HelloReply>()
            .is_ok_and(|r| kith_node::api::hello::verify(token, &challenge, &r.proof));
    Ok(if proved { Proof::Valid } else { Proof::Wrong })
}

/// POSTs to `path` of the node running on `home` and returns its JSON.
pub fn node_post(home: &Home, path: &str) -> anyhow::Result<serde_json::Value> {
    let Some((node, token)) = running_node(home)? else {
        anyhow::bail!(
            "no node is running on {}: start one with `kith node`",
            home.dir.display()
        );
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&format!("http://{}{path}", node.api))
        .header("Authorization", &format!("Bearer {}", token.trim()))
        .send_empty()
        .map_err(|e| anyhow::anyhow!("the node at {} did not answer: {e}", node.api))?;
    let ok = response.status().is_success();
    let value: serde_json::Value = response.body_mut().read_json()?;
    if !ok {
        anyhow::bail!(
            "{}",
            value["message"].as_str().unwrap_or("the node refused")
        );
    }
    Ok(value)
}

/// Sends `call` to the node running on `home`, if one answers.
fn call_node(home: &Home, call: &Call) -> anyhow::Result<Option<Reply>> {
    let Some((node, token)) = running_node(home)? else {
        return Ok(None);
    };
    // A long import can take a while; a node that never answers must not hang the CLI.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(600)))
        .build()
        .into();
    let response = agent
        .post(&format!("http://{}/api/call", node.api))
        .header("Authorization", &format!("Bearer {}", token.trim()))
        .send_json(call);
    let mut response = match response {
        Ok(r) => r,
        // Nothing listens: the node file is left over from a node that died.
        Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Ok(None);
        }
        Err(e) => anyhow::bail!("the node at {} did not answer: {e}", node.api),
    };
    if response.status().is_success() {
        return Ok(Some(response.body_mut().read_json::<Reply>()?));
    }
    let err: ApiError = response
        .body_mut()
        .read_json()
        .context("the node sent an unreadable error")?;
    anyhow::bail!("{}", err.message)
}
