//! `kith peers`, `kith peer add|list|remove`, `kith status`, `kith sync`:
//! the running node's view of the network, and the peers a home remembers.

use std::time::{Duration, Instant};

use kith_node::home::PEERS_FILE;
use kith_node::remembered;
use kith_node::{Call, NodeCall, PeerView, Reply};

use super::Context;
use crate::output;
use crate::untrusted::Untrusted;

#[derive(Debug, clap::Subcommand)]
pub enum PeerCommand {
    /// Remember a peer: the node dials it now (if it runs) and at every
    /// start, and keeps redialling it.
    Add { address: String },
    /// The remembered peers, and which of them are connected.
    List,
    /// Forget a remembered peer: the node stops dialling it.
    Remove { address: String },
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Wait until catch-up is done, showing progress.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

pub fn peers(ctx: &Context) -> anyhow::Result<()> {
    let Reply::Peers(peers) = ctx.call(Call::Node(NodeCall::Peers))? else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&peers);
    }
    if peers.is_empty() {
        println!("no peers connected");
    }
    for p in &peers {
        let who = match (&p.name, &p.identity) {
            (name, Some(id)) => output::display_name(name.as_deref(), id),
            (Some(n), None) => Untrusted(n).to_string(),
            (None, None) => "(not identified yet)".into(),
        };
        println!(
            "{who}  device …{}  {} {}  {}",
            p.device.short(),
            p.connection,
            Untrusted(p.address.as_deref().unwrap_or("")),
            found(&p.via)
        );
    }
    Ok(())
}

/// How a peer was found ([`PeerView::via`]), for people.
fn found(via: &str) -> &str {
    match via {
        "mdns" => "found on the LAN (mDNS)",
        "dialed" => "dialled by this node",
        "inbound" => "dialled this node",
        other => other,
    }
}

pub fn peer(ctx: &Context, c: PeerCommand) -> anyhow::Result<()> {
    match c {
        PeerCommand::Add { address } => add(ctx, &address),
        PeerCommand::List => list(ctx),
        PeerCommand::Remove { address } => remove(ctx, &address),
    }
}

/// Through the running node, which dials at once; else into the peers
/// file, for the next node to start.
fn add(ctx: &Context, address: &str) -> anyhow::Result<()> {
    let addr = remembered::parse(address)?;
    let call = Call::AddPeer {
        address: addr.to_string(),
    };
    let live = ctx.call_running(call)?.is_some();
    let new = live || remembered::add(&peers_file(ctx)?, &addr)?;
    if ctx.json {
        return output::json(&serde_json::json!({ "added": addr.to_string() }));
    }
    if live {
        println!("added {addr}; the node dials it now and after every restart");
    } else if new {
        println!("added {addr}; the node dials it whenever it runs (start it with `kith node`)");
    } else {
        println!("{addr} is remembered already");
    }
    Ok(())
}

fn list(ctx: &Context) -> anyhow::Result<()> {
    let home = ctx.home()?;
    let addresses = remembered::list(&home.path(PEERS_FILE))?;
    let connected = match ctx.call_running(Call::Node(NodeCall::Peers))? {
        Some(Reply::Peers(peers)) => Some(peers),
        Some(_) => return Err(output::unexpected()),
        None => None,
    };
    let rows: Vec<(&String, Option<bool>)> = addresses
        .iter()
        .map(|a| (a, connected.as_deref().map(|p| is_connected(p, a))))
        .collect();
    if ctx.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(a, c)| serde_json::json!({ "address": a, "connected": c }))
            .collect();
        return output::json(&rows);
    }
    if rows.is_empty() {
        println!("no remembered peers: add one with `kith peer add MULTIADDR`");
    }
    for (address, connected) in rows {
        let state = match connected {
            _ if remembered::parse(address).is_err() => "  (not a multiaddr: the node skips it)",
            Some(true) => "  connected",
            Some(false) => "  not connected",
            None => "",
        };
        println!("{}{state}", Untrusted(address));
    }
    Ok(())
}

/// Whether one of `peers` is connected at `address` (as dialled, perhaps
/// with the peer's id after it).
fn is_connected(peers: &[PeerView], address: &str) -> bool {
    peers.iter().flat_map(|p| &p.addresses).any(|a| {
        a.strip_prefix(address)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Through the running node, which also stops redialling it; else from the
/// peers file.
fn remove(ctx: &Context, address: &str) -> anyhow::Result<()> {
    let call = Call::ForgetPeer {
        address: address.to_owned(),
    };
    if ctx.call_running(call)?.is_none() {
        remembered::forget(&peers_file(ctx)?, address)?;
    }
    if ctx.json {
        return output::json(&serde_json::json!({ "removed": address.trim() }));
    }
    println!("removed {} from the remembered peers", address.trim());
    Ok(())
}

/// The home's peers file, for a change made without a node.
fn peers_file(ctx: &Context) -> anyhow::Result<std::path::PathBuf> {
    let home = ctx.home()?;
    anyhow::ensure!(
        home.dir.is_dir(),
        "no kith home at {}: create it with `kith init --home {}`",
        home.dir.display(),
        home.dir.display()
    );
    Ok(home.path(PEERS_FILE))
}

pub fn status(ctx: &Context) -> anyhow::Result<()> {
    let Reply::Status(s) = ctx.call(Call::Node(NodeCall::Status))? else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&s);
    }
    println!("identity   {}", s.identity);
    println!(
        "name       {}",
        s.name
            .as_deref()
            .map_or("(not set)".into(), |n| Untrusted(n).to_string())
    );
    println!("device     {}", s.device);
    for a in &s.listen {
        println!("listening  {}", Untrusted(a));
    }
    println!("api        http://{}", s.api);
    println!("peers      {}", s.peers);
    println!("reach      {}", Untrusted(&s.reach.summary));
    println!(
        "store      {}, {}, {}, {} waiting",
        output::count(s.counts.documents, "document", "documents"),
        output::count(s.counts.changes, "change", "changes"),
        output::count(s.counts.posts, "post", "posts"),
        s.counts.pending
    );
    if s.syncing {
        let (got, want): (u64, u64) = s
            .sync
            .iter()
            .fold((0, 0), |(g, w), v| (g + v.received, w + v.expected));
        println!(
            "sync       catching up: {got} of {}",
            output::count(want, "change", "changes")
        );
    } else {
        println!("sync       up to date");
    }
    Ok(())
}

pub fn sync(ctx: &Context, a: SyncArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    let bar = (a.wait && !ctx.json).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} catching up {bar:40} {pos}/{len} changes ({eta})",
            )
            .expect("a valid template"),
        );
        bar
    });
    loop {
        let Reply::Status(s) = ctx.call(Call::Node(NodeCall::Status))? else {
            return Err(output::unexpected());
        };
        let (got, want): (u64, u64) = s
            .sync
            .iter()
            .fold((0, 0), |(g, w), v| (g + v.received, w + v.expected));
        if let Some(bar) = &bar {
            bar.set_length(want.max(got));
            bar.set_position(got);
        }
        if !a.wait || !s.syncing {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if ctx.json {
                return output::json(
                    &serde_json::json!({ "syncing": s.syncing, "received": got, "expected": want }),
                );
            }
            if s.syncing {
                println!(
                    "catching up: {got} of {}",
                    output::count(want, "change", "changes")
                );
            } else {
                println!(
                    "up to date ({}, {})",
                    output::count(s.counts.posts, "post", "posts"),
                    output::count(s.peers as u64, "peer", "peers")
                );
            }
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "still catching up after {} s ({got} of {})",
            a.timeout,
            output::count(want, "change", "changes")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
