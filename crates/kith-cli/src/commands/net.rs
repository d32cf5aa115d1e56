//! `kith peers`, `kith peer add`, `kith status`, `kith sync`: the running
//! node's view of the network.

use std::time::{Duration, Instant};

use kith_node::{Call, Reply};

use super::Context;
use crate::output;
use crate::untrusted::Untrusted;

#[derive(Debug, clap::Subcommand)]
pub enum PeerCommand {
    /// Dial a peer now and keep redialling it, across restarts.
    Add { address: String },
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
    let Reply::Peers(peers) = ctx.call(Call::Peers)? else {
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
            "{who}  device …{}  {}  {}",
            p.device.short(),
            Untrusted(&p.addresses.join(" ")),
            found(&p.via)
        );
    }
    Ok(())
}

/// How a peer was found ([`kith_node::PeerView::via`]), for people.
fn found(via: &str) -> &str {
    match via {
        "mdns" => "found on the LAN (mDNS)",
        "dialed" => "dialled by this node",
        "inbound" => "dialled this node",
        other => other,
    }
}

pub fn peer(ctx: &Context, c: PeerCommand) -> anyhow::Result<()> {
    let PeerCommand::Add { address } = c;
    ctx.call(Call::AddPeer {
        address: address.clone(),
    })?;
    if ctx.json {
        return output::json(&serde_json::json!({ "added": address }));
    }
    println!("added {address}; the node dials it now and after every restart");
    Ok(())
}

pub fn status(ctx: &Context) -> anyhow::Result<()> {
    let Reply::Status(s) = ctx.call(Call::Status)? else {
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
        let Reply::Status(s) = ctx.call(Call::Status)? else {
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
