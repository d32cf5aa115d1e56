//! `kith profile set` and `kith profile show`.

use kith_core::IdentityId;
use kith_node::{Call, Reply};

use super::Context;
use crate::output;
use crate::untrusted::Untrusted;

#[derive(Debug, clap::Subcommand)]
pub enum ProfileCommand {
    /// Set your display name and/or bio.
    Set {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        bio: Option<String>,
    },
    /// Show a profile (yours by default).
    Show { id: Option<IdentityId> },
}

pub fn run(ctx: &Context, c: ProfileCommand) -> anyhow::Result<()> {
    let (call, set) = match c {
        ProfileCommand::Set { name, bio } => (Call::SetProfile { name, bio }, true),
        ProfileCommand::Show { id } => (Call::Person { id }, false),
    };
    let Reply::Person(p) = ctx.call(call)? else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&p);
    }
    if set {
        println!(
            "profile updated: {}",
            output::display_name(p.name.as_deref(), &p.id)
        );
        return Ok(());
    }
    println!("{}", output::display_name(p.name.as_deref(), &p.id));
    println!("id       {}", p.id);
    if let Some(bio) = &p.bio {
        let mut bio = bio.lines();
        if let Some(first) = bio.next() {
            println!("bio      {}", Untrusted(first));
        }
        for line in bio {
            println!("         {}", Untrusted(line));
        }
    }
    println!("posts    {}", p.posts);
    println!("follows  {}", p.follows.len());
    if p.following {
        println!("you follow them");
    }
    if p.blocked {
        println!("you block them");
    }
    if p.muted {
        println!("you mute them");
    }
    if !p.labels.is_empty() {
        println!("labels   {}", Untrusted(&p.labels.join(", ")));
    }
    Ok(())
}
