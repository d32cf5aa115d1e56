//! `kith follow`, `unfollow`, `block`, `unblock`, `mute`, `unmute`, `label`,
//! `people`.

use kith_core::IdentityId;
use kith_node::{Call, NodeCall, Reply};

use super::Context;
use crate::output;
use crate::untrusted::Untrusted;

#[derive(Debug, clap::Args)]
pub struct PersonRef {
    /// Their identity id (did:key:…).
    id: IdentityId,
}

#[derive(Debug, clap::Args)]
pub struct FollowArgs {
    id: IdentityId,
    /// A private label (colleague, customer, vendor, friend, any word); repeatable.
    #[arg(long = "label", value_name = "LABEL")]
    labels: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct LabelArgs {
    id: IdentityId,
    /// Labels to add.
    labels: Vec<String>,
    /// Labels to remove; repeatable.
    #[arg(long = "remove", value_name = "LABEL")]
    remove: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PeopleArgs {
    /// Only people with this label.
    #[arg(long)]
    label: Option<String>,
    /// Only people whose nodes are connected now (needs a running node).
    #[arg(long)]
    nearby: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum Relation {
    Unfollow,
    Block,
    Unblock,
    Mute,
    Unmute,
}

fn person(ctx: &Context, call: Call, verb: &str) -> anyhow::Result<()> {
    let Reply::Person(p) = ctx.call(call)? else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&p);
    }
    if verb.is_empty() {
        let labels = if p.labels.is_empty() {
            "no labels".to_owned()
        } else {
            Untrusted(&p.labels.join(", ")).to_string()
        };
        println!(
            "{}: {labels}",
            output::display_name(p.name.as_deref(), &p.id)
        );
    } else {
        println!("{verb} {}", output::display_name(p.name.as_deref(), &p.id));
    }
    Ok(())
}

pub fn follow(ctx: &Context, a: FollowArgs) -> anyhow::Result<()> {
    person(
        ctx,
        Call::Follow {
            id: a.id,
            labels: a.labels,
        },
        "following",
    )
}

pub fn relation(ctx: &Context, a: PersonRef, r: Relation) -> anyhow::Result<()> {
    match r {
        Relation::Unfollow => person(ctx, Call::Unfollow { id: a.id }, "no longer following"),
        Relation::Block => person(ctx, Call::Block { id: a.id }, "blocked"),
        Relation::Unblock => person(ctx, Call::Unblock { id: a.id }, "unblocked"),
        Relation::Mute => person(ctx, Call::Mute { id: a.id }, "muted"),
        Relation::Unmute => person(ctx, Call::Unmute { id: a.id }, "unmuted"),
    }
}

pub fn label(ctx: &Context, a: LabelArgs) -> anyhow::Result<()> {
    person(
        ctx,
        Call::Label {
            id: a.id,
            add: a.labels,
            remove: a.remove,
        },
        "",
    )
}

pub fn people(ctx: &Context, a: PeopleArgs) -> anyhow::Result<()> {
    let call = if a.nearby {
        Call::Node(NodeCall::Nearby { label: a.label })
    } else {
        Call::People { label: a.label }
    };
    let Reply::People(people) = ctx.call(call)? else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&people);
    }
    if people.is_empty() {
        if a.nearby {
            println!("nobody nearby right now");
        } else {
            println!("nobody yet: follow someone with `kith follow ID`");
        }
    }
    for p in &people {
        output::person(p);
    }
    Ok(())
}
