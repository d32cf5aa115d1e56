//! kith-node: the runtime of one person's node on one device: the home
//! directory and its keys, the local service that owns the store, and the
//! `kith node` process that wires them to the network.
//!
//! The protocol's decisions (sync, gossip intake, what to publish where)
//! are kith-core's sync engine; this crate drives it. One service thread
//! ([`runtime`]) owns the store and the engine: network events and calls
//! reach it through one channel, a [`Call`] is routed in one place, and
//! async code (the [`api`]) calls it through a [`handle::ServiceHandle`].
//! Around it: [`service`] (every action a person takes, on the store),
//! [`call`] (those actions as values), [`views`] (what the control API
//! shows of posts and people), [`status`], `joins` and [`waiters`] (calls
//! answered later), and the store's upkeep each tick.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let home = kith_node::Home::resolve(None, std::env::var_os("KITH_HOME").map(Into::into))?;
//! let (mut service, _created) = kith_node::Service::open(&home)?;
//! let id = service.post("hello, kith", None)?;
//! # let _ = id; Ok(()) }
//! ```

pub mod api;
pub mod call;
pub mod events;
mod finding;
pub mod groups;
pub mod handle;
pub mod home;
mod joins;
pub mod metrics;
pub mod node;
pub mod remembered;
mod rendezvous;
mod replica;
pub mod runtime;
pub mod service;
pub mod status;
mod token;
mod upkeep;
pub mod views;
pub mod waiters;

pub use api::ApiError;
pub use call::{BenchCall, Call, NodeCall, Reply, execute};
pub use home::{Home, HomeError, HomeSource, Keys};
pub use node::{NodeConfig, NodeFile};
pub use service::{ActionError, Service, WhoAmI};
pub use status::{PeerView, Status, SyncView};

/// Ctrl-C or SIGTERM, caught from the moment this is called: a signal
/// that arrives while the node is still starting stops it cleanly too,
/// rather than killing it (systemd may stop a unit at any moment).
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
