//! `kith group …`: create groups, invite people with a key (text or QR
//! code), join with one, and manage members.

use std::io::IsTerminal;
use std::time::Duration;

use kith_core::Role;
use kith_node::groups::{GroupView, InviteView, NewInvite};
use kith_node::{Call, NodeCall, Reply};

use super::Context;
use crate::output;
use crate::untrusted::Untrusted;

#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Create a group; you are its first admin.
    Create {
        /// The group's name (up to 100 characters).
        name: String,
        #[arg(long, default_value = "")]
        about: String,
    },
    /// Your groups.
    List,
    /// A group's name, members with their roles, and (for admins) invites.
    Show {
        /// The group's id or name.
        group: String,
    },
    /// Make an invite key to hand to someone (prints it and a QR code).
    Invite(InviteArgs),
    /// Join a group with an invite key (needs a running node).
    Join(JoinArgs),
    /// A group's invites (admins).
    Invites {
        /// The group's id or name.
        group: String,
    },
    /// Revoke an invite (admins).
    Revoke {
        /// The group's id or name.
        group: String,
        /// The invite's id (at least its first 8 digits).
        invite: String,
    },
    /// Remove a member (admins): they keep what they had, and get nothing after.
    Remove {
        /// The group's id or name.
        group: String,
        /// The member's id or name.
        member: String,
    },
    /// Make a member an admin (admins).
    Promote {
        /// The group's id or name.
        group: String,
        /// The member's id or name.
        member: String,
    },
    /// Leave a group.
    Leave {
        /// The group's id or name.
        group: String,
    },
    /// Rename a group (admins).
    Rename {
        /// The group's id or name.
        group: String,
        /// The new name.
        name: String,
        #[arg(long)]
        about: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct InviteArgs {
    /// The group's id or name.
    group: String,
    /// How long the invite stays usable (e.g. 30m, 12h, 7d).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    expires: Duration,
    /// How many people it can admit.
    #[arg(long, default_value_t = 1)]
    uses: u32,
    /// The role it gives: member or admin.
    #[arg(long, default_value = "member")]
    role: Role,
    /// Print a QR code of the key (the default on a terminal).
    #[arg(long, overrides_with = "no_qr")]
    qr: bool,
    /// Do not print a QR code.
    #[arg(long)]
    no_qr: bool,
}

#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// The invite key (`kith-invite-…`).
    key: String,
    /// Return once admitted; the node goes on fetching the group's history.
    #[arg(long)]
    no_wait: bool,
    /// Give up after this long.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub fn run(ctx: &Context, c: GroupCommand) -> anyhow::Result<()> {
    match c {
        GroupCommand::Create { name, about } => show_reply(ctx, Call::GroupCreate { name, about }),
        GroupCommand::List => list(ctx),
        GroupCommand::Show { group } => show_reply(ctx, Call::GroupShow { group }),
        GroupCommand::Invite(a) => invite(ctx, a),
        GroupCommand::Join(a) => join(ctx, a),
        GroupCommand::Invites { group } => {
            let Reply::Invites(invites) = ctx.call(Call::GroupInvites { group })? else {
                return Err(output::unexpected());
            };
            if ctx.json {
                return output::json(&invites);
            }
            if invites.is_empty() {
                println!("no invites yet: make one with `kith group invite GROUP`");
            }
            for i in &invites {
                print_invite(i);
            }
            Ok(())
        }
        GroupCommand::Revoke { group, invite } => {
            show_reply(ctx, Call::GroupRevoke { group, invite })
        }
        GroupCommand::Remove { group, member } => {
            show_reply(ctx, Call::GroupRemove { group, member })
        }
        GroupCommand::Promote { group, member } => {
            show_reply(ctx, Call::GroupPromote { group, member })
        }
        GroupCommand::Leave { group } => show_reply(ctx, Call::GroupLeave { group }),
        GroupCommand::Rename { group, name, about } => {
            show_reply(ctx, Call::GroupRename { group, name, about })
        }
    }
}

/// Runs a call that answers with a group, and shows it.
fn show_reply(ctx: &Context, call: Call) -> anyhow::Result<()> {
    let Reply::Group(g) = ctx.call(call)? else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&g);
    }
    print_group(&g);
    Ok(())
}

fn list(ctx: &Context) -> anyhow::Result<()> {
    let Reply::Groups(groups) = ctx.call(Call::GroupList)? else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&groups);
    }
    if groups.is_empty() {
        println!("no groups yet: create one with `kith group create NAME`, or join with a key");
    }
    for g in &groups {
        let role = g.role.map_or("left", Role::name);
        println!(
            "{}  {}  {}  ({role})",
            Untrusted(&g.name),
            g.id,
            output::count(g.members as u64, "member", "members")
        );
    }
    Ok(())
}

fn invite(ctx: &Context, a: InviteArgs) -> anyhow::Result<()> {
    let ttl_ms = u64::try_from(a.expires.as_millis()).unwrap_or(u64::MAX);
    let Reply::Invite(NewInvite { key, invite, .. }) = ctx.call(Call::GroupInvite {
        group: a.group,
        ttl_ms,
        uses: a.uses,
        role: a.role,
    })?
    else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&serde_json::json!({ "key": key, "invite": invite }));
    }
    let qr = if a.no_qr {
        false
    } else {
        a.qr || std::io::stdout().is_terminal()
    };
    if qr {
        let code = qrcode::QrCode::new(key.as_bytes())?;
        let art = code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build();
        println!("{art}");
    }
    println!("{key}");
    eprintln!(
        "invite {}: {} as {}, expires {}",
        invite.id,
        output::count(invite.uses.into(), "use", "uses"),
        invite.role.name(),
        output::when(invite.expires_at_ms)
    );
    Ok(())
}

fn join(ctx: &Context, a: JoinArgs) -> anyhow::Result<()> {
    let timeout_ms = u64::try_from(a.timeout.as_millis()).unwrap_or(u64::MAX);
    let done = std::sync::atomic::AtomicBool::new(false);
    let reply = std::thread::scope(|scope| {
        if !ctx.json {
            scope.spawn(|| show_progress(ctx, &done));
        }
        let reply = ctx.call(Call::Node(NodeCall::GroupJoin {
            key: a.key,
            wait: !a.no_wait,
            timeout_ms,
        }));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        reply
    })?;
    let Reply::Group(g) = reply else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&g);
    }
    let name = Untrusted(&g.name);
    if a.no_wait {
        println!("joined {name} ({}); its history keeps arriving", g.id);
    } else {
        println!("joined {name} ({})", g.id);
    }
    Ok(())
}

/// Shows, on stderr, what the node is doing while a join waits: asking
/// members, then fetching the group's history (from the node's sync counts).
fn show_progress(ctx: &Context, done: &std::sync::atomic::AtomicBool) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message("asking members of the group to admit you…");
    bar.enable_steady_tick(Duration::from_millis(100));
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        // Only a running node has progress to show; without one the join
        // fails at once, and the store must not be opened twice.
        if let Ok(Some(Reply::Status(s))) = ctx.call_running(Call::Node(NodeCall::Status)) {
            let (received, expected) = s
                .sync
                .iter()
                .fold((0, 0), |(r, e), p| (r + p.received, e + p.expected));
            if expected > 0 {
                bar.set_message(format!(
                    "fetching the group's history: {received} of {}",
                    output::count(expected, "change", "changes")
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
}

fn print_group(g: &GroupView) {
    println!("{}  {}", Untrusted(&g.name), g.id);
    output::lines("  ", &g.about);
    match g.role {
        Some(r) => println!(
            "  you are {}",
            if r == Role::Admin {
                "an admin"
            } else {
                "a member"
            }
        ),
        None => println!("  you are not a member"),
    }
    if let Some(epoch) = g.epoch {
        println!("  key epoch {epoch}");
    }
    println!("  members:");
    for m in &g.members {
        let invited = match m.invited_by {
            Some(by) => format!("  invited by …{}", by.short()),
            None => "  created the group".to_owned(),
        };
        println!(
            "    {}  {}  {}{invited}",
            output::display_name(m.name.as_deref(), &m.id),
            m.role.name(),
            m.id
        );
    }
    let open: Vec<&InviteView> = g.invites.iter().filter(|i| i.open).collect();
    if !open.is_empty() {
        println!("  open invites:");
        for i in open {
            print!("  ");
            print_invite(i);
        }
    }
}

fn print_invite(i: &InviteView) {
    let state = if i.revoked {
        "revoked".to_owned()
    } else if i.open {
        format!("open until {}", output::when(i.expires_at_ms))
    } else if i.used >= i.uses {
        "used up".to_owned()
    } else {
        "expired".to_owned()
    };
    println!(
        "  {}  {}  {}/{} used  {state}",
        i.id,
        i.role.name(),
        i.used,
        i.uses
    );
}
