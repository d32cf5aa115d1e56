//! `kith node`: runs the node in the foreground until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use kith_net::Multiaddr;
use kith_node::NodeConfig;

use super::Context;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Listen on this address (repeatable). Default: all interfaces on the
    /// home's stable port (4610 unless taken).
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<Multiaddr>,
    /// Do not discover or announce peers on the LAN with mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// Dial this peer and keep the connection (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    peer: Vec<Multiaddr>,
    /// A node on the internet to start from, with or without
    /// `/p2p/<peer id>` (repeatable). Remembered like `kith peer add`: later
    /// starts dial it without the flag.
    #[arg(long, value_name = "MULTIADDR", num_args = 1..)]
    bootstrap: Vec<Multiaddr>,
    /// The address the internet reaches this node at (repeatable), for an
    /// always-on node with a public IP or a forwarded port. Such a node
    /// serves the DHT, answers reachability probes and relays for nodes
    /// behind NATs.
    #[arg(long, value_name = "MULTIADDR")]
    public_addr: Vec<Multiaddr>,
    /// With --public-addr: do not relay for others.
    #[arg(long)]
    no_relay: bool,
    /// Do not publish where this person's devices are in the DHT: only
    /// people who know an address of this node (an invite key, `peer add`,
    /// the same LAN) can reach it. By default anyone with the person's id
    /// can.
    #[arg(long)]
    not_findable: bool,
    /// Where the local API listens (a loopback address).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    api: SocketAddr,
    /// Join the network probe topic (for benchmarks).
    #[arg(long, hide = true)]
    probe: bool,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let home = ctx.home()?;
    super::init::ensure_identity(&home)?;
    let config = NodeConfig {
        listen: a.listen,
        mdns: !a.no_mdns,
        peers: a.peer,
        bootstrap: a.bootstrap,
        public: a.public_addr,
        relay: !a.no_relay,
        findable: !a.not_findable,
        api: a.api,
        probe: a.probe,
    };
    let json = ctx.json;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(kith_node::node::run(&home, config, |s, app| {
        if json {
            // One line, so that programs can read it as soon as it is printed.
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["app"] = serde_json::Value::from(app);
            println!("{}", crate::untrusted::json(&v.to_string()));
            return;
        }
        println!(
            "kith node {}",
            output::display_name(s.name.as_deref(), &s.identity)
        );
        println!("identity  {}", s.identity);
        println!("device    {}", s.device);
        for addr in &s.listen {
            println!("listening {}", crate::untrusted::Untrusted(addr));
        }
        println!("api       http://{}", s.api);
        println!("app       {app}  (one-time link; `kith open` makes another)");
        println!("ready; press Ctrl-C to stop");
    }))?;
    if !json {
        println!("stopped");
    }
    Ok(())
}
