//! `kith follow`, `unfollow`, `block`, `unblock`, `label`, `people`.

use kith_core::IdentityId;

use super::Context;
use crate::output;

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
}

#[derive(Debug, Clone, Copy)]
pub enum Relation {
    Unfollow,
    Block,
    Unblock,
}

pub fn follow(ctx: &Context, a: FollowArgs) -> anyhow::Result<()> {
    let mut s = ctx.service()?;
    s.follow(&a.id, &a.labels)?;
    let p = s.person(Some(a.id))?;
    if ctx.json {
        return output::json(&p);
    }
    println!(
        "following {}",
        output::display_name(p.name.as_deref(), &p.id)
    );
    Ok(())
}

pub fn relation(ctx: &Context, a: PersonRef, r: Relation) -> anyhow::Result<()> {
    let mut s = ctx.service()?;
    match r {
        Relation::Unfollow => s.unfollow(&a.id)?,
        Relation::Block => s.block(&a.id)?,
        Relation::Unblock => s.unblock(&a.id)?,
    }
    let p = s.person(Some(a.id))?;
    if ctx.json {
        return output::json(&p);
    }
    let verb = match r {
        Relation::Unfollow => "no longer following",
        Relation::Block => "blocked",
        Relation::Unblock => "unblocked",
    };
    println!("{verb} {}", output::display_name(p.name.as_deref(), &p.id));
    Ok(())
}

pub fn label(ctx: &Context, a: LabelArgs) -> anyhow::Result<()> {
    let mut s = ctx.service()?;
    s.label(&a.id, &a.labels, &a.remove)?;
    let p = s.person(Some(a.id))?;
    if ctx.json {
        return output::json(&p);
    }
    println!(
        "{}: {}",
        output::display_name(p.name.as_deref(), &p.id),
        if p.labels.is_empty() {
            "no labels".to_owned()
        } else {
            p.labels.join(", ")
        }
    );
    Ok(())
}

pub fn people(ctx: &Context, a: PeopleArgs) -> anyhow::Result<()> {
    let s = ctx.service()?;
    let people = s.people(a.label.as_deref())?;
    if ctx.json {
        return output::json(&people);
    }
    if people.is_empty() {
        println!("nobody yet: follow someone with `kith follow ID`");
    }
    for p in &people {
        output::person(p);
    }
    Ok(())
}
