//! `kith node`: the store on its service thread, the swarm on a network
//! task, the local API, and the wiring between them, until Ctrl-C or
//! SIGTERM. Shutdown stops the API, lets the service thread finish what it
//! holds (every acknowledged action is already committed), then closes.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use kith_net::{COMMAND_CAPACITY, Command, EVENT_CAPACITY, Multiaddr};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::call::{Call, NodeCall, Reply};
use crate::home::{NODE_FILE, PEERS_FILE, PORT_FILE, TOKEN_FILE};
use crate::remembered::remembered_peers;
use crate::runtime::{SERVICE_INPUT_CAPACITY, ServiceInput, ServiceLoop};
use crate::status::Status;
use crate::{Home, Service};

/// A store file smaller than this is not worth compacting at start.
const TIDY_MIN_FILE_BYTES: u64 = 16 << 20;
/// The port a node listens on when its home has none recorded.
pub const DEFAULT_PORT: u16 = 4610;
/// How often the sync engine's clock ticks.
pub const TICK: Duration = Duration::from_secs(1);
/// How long a starting node waits for a command to close the store.
pub const STORE_WAIT: Duration = Duration::from_secs(10);

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where to listen; empty: all interfaces on the home's stable port.
    pub listen: Vec<Multiaddr>,
    pub mdns: bool,
    /// Peers to dial and keep.
    pub peers: Vec<Multiaddr>,
    /// Nodes on the internet to start from (`--bootstrap`): remembered in
    /// the home's peers file, dialled and kept like `peers`.
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses the internet reaches this node at (`--public-addr`).
    pub public: Vec<Multiaddr>,
    /// Relay for others when public (`--no-relay` turns it off).
    pub relay: bool,
    /// Publish this person's devices in the DHT, so that anyone with the
    /// person's id can reach them (`--not-findable` turns it off).
    pub findable: bool,
    /// Where the local API listens (always a loopback address).
    pub api: SocketAddr,
    /// Join the probe topic, for network benchmarks.
    pub probe: bool,
}

/// The contents of `node.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeFile {
    pub pid: u32,
    pub api: String,
}

/// The QUIC address beside a TCP one: same IP, the same port on UDP.
fn quic_beside(tcp: &Multiaddr) -> Option<Multiaddr> {
    use libp2p::multiaddr::Protocol;
    let mut parts = tcp.iter();
    let ip = parts.next()?;
    let Some(Protocol::Tcp(port)) = parts.next() else {
        return None;
    };
    if parts.next().is_some() || !matches!(ip, Protocol::Ip4(_) | Protocol::Ip6(_)) {
        return None;
    }
    Some(
        Multiaddr::empty()
            .with(ip)
            .with(Protocol::Udp(port))
            .with(Protocol::QuicV1),
    )
}

/// Opens the home's service, telling the person on stderr when this created
/// their identity.
pub fn open_service(home: &Home) -> anyhow::Result<Service> {
    let (service, created) = Service::open(home)
        .with_context(|| format!("cannot open kith home {}", home.dir.display()))?;
    if created {
        eprintln!(
            "created a new identity {} in {}",
            service.identity(),
            home.dir.display()
        );
    }
    if let Some(damage) = service.store().journal_damage() {
        eprintln!("warning: the journal of local changes had {damage}");
    }
    Ok(service)
}

/// Opens the home's service for a node. A store in use while no node file
/// exists most likely belongs to a command that started a moment earlier
/// and is about to finish, so the node waits for it (up to [`STORE_WAIT`]);
/// with a node file, another node holds it, and this one refuses at once.
async fn open_for_node(home: &Home) -> anyhow::Result<Service> {
    let deadline = std::time::Instant::now() + STORE_WAIT;
    let mut told = false;
    loop {
        match open_service(home) {
            Err(e)
                if store_in_use(&e)
                    && !home.path(NODE_FILE).exists()
                    && std::time::Instant::now() < deadline =>
            {
                if !told {
                    eprintln!(
                        "another kith command has the store open; waiting up to {} s for it to finish",
                        STORE_WAIT.as_secs()
                    );
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// The node file of a running node, removed when dropped: however `run`
/// ends, no node file outlives it (but a crash's, which the CLI tells from
/// a live one).
#[derive(Debug)]
struct NodeFileGuard(std::path::PathBuf);

impl NodeFileGuard {
    fn write(path: std::path::PathBuf, node: &NodeFile) -> anyhow::Result<NodeFileGuard> {
        std::fs::write(&path, serde_json::to_vec(node)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(NodeFileGuard(path))
    }
}

impl Drop for NodeFileGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether `err` says that another process has the store open.
pub fn store_in_use(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<crate::ActionError>(),
        Some(crate::ActionError::Open(
            kith_store::OpenError::InUse { .. }
        ))
    )
}

/// Runs a node on `home` until a shutdown signal; `started` is called once
/// the node listens, with its status and a one-time URL that logs a browser
/// into the web app.
pub async fn run(
    home: &Home,
    config: NodeConfig,
    started: impl FnOnce(&Status, &str),
) -> anyhow::Result<()> {
    let signal = crate::shutdown_signal().context("cannot catch Ctrl-C and SIGTERM")?;
    anyhow::ensure!(
        config.api.ip().is_loopback(),
        "the API must listen on a loopback address, not {}",
        config.api
    );
    // The API's address is known before the store opens, so that the node
    // file can say where the node will answer as soon as it holds the
    // store: a command run meanwhile waits for the API (its connection
    // waits in the listen backlog) instead of finding the store in use.
    let listener = tokio::net::TcpListener::bind(config.api)
        .await
        .with_context(|| format!("cannot bind the API to {}", config.api))?;
    let api_addr = listener.local_addr()?;
    let mut service = open_for_node(home).await?;
    // The token first: a command that reads the node file reads it next.
    let token = crate::token::load_or_create(&home.path(TOKEN_FILE))?;
    let node_file = NodeFileGuard::write(
        home.path(NODE_FILE),
        &NodeFile {
            pid: std::process::id(),
            api: api_addr.to_string(),
        },
    )?;
    let tidy_from = std::time::Instant::now();
    // Tidying reads every unsealed change: on a damaged page redb may
    // panic, which must stop the node with advice, not a backtrace.
    let tidied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        service.store_mut().tidy(TIDY_MIN_FILE_BYTES)
    }))
    .map_err(|panic| {
        anyhow::anyhow!(
            "the store {} is damaged ({}); `kith check` says what is wrong, and `kith repair` rebuilds it from what can be read and from your peers",
            home.store_path().display(),
            kith_store::repair::panic_text(&panic)
        )
    })?;
    match tidied {
        Ok(Some((before, after))) => tracing::info!(
            before_mib = before >> 20,
            after_mib = after >> 20,
            seconds = tidy_from.elapsed().as_secs_f32(),
            "sealed and compacted the store"
        ),
        Ok(None) => {}
        Err(e @ kith_store::StoreError::Corrupt(_)) => return Err(e.into()),
        Err(e) => tracing::warn!(error = %e, "could not tidy the store"),
    }
    // Local changes are published while their write is flushed (see
    // `Store::begin_session`); a call is answered once it is durable.
    if service.store().recovered_from_crash() {
        tracing::warn!(
            "the last node on this home did not stop cleanly; new changes use a new actor id"
        );
    }
    let mut registry = kith_net::Registry::default();
    let metrics = crate::metrics::NodeMetrics::default();
    metrics.register(&mut registry);
    let net_config = kith_net::NetConfig {
        mdns: config.mdns,
        public: config.public.clone(),
        relay: config.relay,
    };
    let mut swarm = kith_net::build_swarm(
        kith_net::keypair(&service.keys().device),
        &net_config,
        &mut registry,
    )?;
    let net_metrics = kith_net::Metrics::new(&mut registry);
    let registry = std::sync::Arc::new(registry);
    for addr in &config.bootstrap {
        crate::remembered::add(&home.path(PEERS_FILE), addr)?;
    }
    if config.listen.is_empty() {
        let port = std::fs::read_to_string(home.path(PORT_FILE))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(DEFAULT_PORT);
        let stable: Multiaddr = format!("/ip4/0.0.0.0/tcp/{port}")
            .parse()
            .expect("a valid multiaddr");
        if let Err(e) = swarm.listen_on(stable) {
            tracing::warn!(port, error = %e, "port taken; listening on a free one");
            swarm.listen_on("/ip4/0.0.0.0/tcp/0".parse().expect("a valid multiaddr"))?;
        }
        let quic: Multiaddr = format!("/ip4/0.0.0.0/udp/{port}/quic-v1")
            .parse()
            .expect("a valid multiaddr");
        if let Err(e) = swarm.listen_on(quic) {
            tracing::warn!(port, error = %e, "UDP port taken; QUIC on a free one");
            swarm.listen_on(
                "/ip4/0.0.0.0/udp/0/quic-v1"
                    .parse()
                    .expect("a valid multiaddr"),
            )?;
        }
    } else {
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .with_context(|| format!("cannot listen on {addr}"))?;
            // QUIC beside TCP, on the same address and port: hole punching
            // works over either, and a NAT may let one through and not the
            // other.
            if let Some(quic) = quic_beside(addr) {
                swarm
                    .listen_on(quic.clone())
                    .with_context(|| format!("cannot listen on {quic}"))?;
            }
        }
    }

    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (evt_tx, mut evt_rx) = mpsc::channel(EVENT_CAPACITY);
    let (in_tx, in_rx) = mpsc::channel(SERVICE_INPUT_CAPACITY);

    // Last before the service starts: a start that fails earlier must not
    // look like a crash to the next one.
    service.store_mut().begin_session()?;
    let (events, _) = tokio::sync::broadcast::channel(crate::events::EVENT_BUFFER);
    let service_loop = ServiceLoop::new(
        service,
        cmd_tx.clone(),
        api_addr.to_string(),
        home,
        events.clone(),
        metrics.clone(),
        config.findable,
    );
    let thread = std::thread::Builder::new()
        .name("kith-service".into())
        .spawn(move || service_loop.run(in_rx))?;
    let net = tokio::spawn(kith_net::run(
        swarm,
        config.public.clone(),
        net_metrics,
        cmd_rx,
        evt_tx,
    ));
    let forward_tx = in_tx.clone();
    let forward = tokio::spawn(async move {
        while let Some(e) = evt_rx.recv().await {
            if forward_tx.send(ServiceInput::Net(e)).await.is_err() {
                break;
            }
        }
    });
    let tick_tx = in_tx.clone();
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(TICK);
        loop {
            every.tick().await;
            // A busy service skips a tick rather than queueing them.
            let _ = tick_tx.try_send(ServiceInput::Tick);
        }
    });
    if config.probe {
        cmd_tx.send(Command::SubscribeProbe).await?;
    }
    // Bootstrap addresses are in the peers file now.
    for addr in config
        .peers
        .iter()
        .chain(remembered_peers(&home.path(PEERS_FILE)).iter())
    {
        cmd_tx.send(Command::Remember(addr.clone())).await?;
    }
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let logins = crate::api::Logins::default();
    let login = crate::api::login_url(&api_addr.to_string(), &logins.mint()?);
    let handle = crate::handle::ServiceHandle::new(in_tx.clone());
    let parts = crate::api::ApiParts {
        token,
        service: handle.clone(),
        events,
        logins,
        metrics,
        registry,
    };
    let api = tokio::spawn(crate::api::serve(listener, parts, async {
        let _ = stop_rx.await;
    }));

    // Report once the swarm listens (it does within a few polls).
    let mut status = None;
    for _ in 0..250 {
        if let Ok(Reply::Status(s)) = handle.call(Call::Node(NodeCall::Status)).await {
            let listening = !s.listen.is_empty();
            status = Some(s);
            if listening {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(s) = &status {
        started(s, &login);
    }

    signal.await;
    tracing::info!("stopping");
    let _ = stop_tx.send(());
    let _ = api.await;
    ticker.abort();
    let _ = in_tx.send(ServiceInput::Shutdown).await;
    drop(in_tx);
    let joined = tokio::task::spawn_blocking(move || thread.join()).await;
    forward.abort();
    net.abort();
    drop(node_file);
    if !matches!(joined, Ok(Ok(()))) {
        anyhow::bail!("the service thread panicked");
    }
    Ok(())
}
