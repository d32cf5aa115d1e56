//! `kith profile set` and `kith profile show`.

use kith_core::IdentityId;

use super::Context;
use crate::output;

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
    let mut s = ctx.service()?;
    match c {
        ProfileCommand::Set { name, bio } => {
            s.set_profile(name.as_deref(), bio.as_deref())?;
            let me = s.person(None)?;
            if ctx.json {
                return output::json(&me);
            }
            println!(
                "profile updated: {}",
                output::display_name(me.name.as_deref(), &me.id)
            );
        }
        ProfileCommand::Show { id } => {
            let p = s.person(id)?;
            if ctx.json {
                return output::json(&p);
            }
            println!("{}", output::display_name(p.name.as_deref(), &p.id));
            println!("id       {}", p.id);
            if let Some(bio) = &p.bio {
                println!("bio      {bio}");
            }
            println!("posts    {}", p.posts);
            println!("follows  {}", p.follows.len());
            if p.following {
                println!("you follow them");
            }
            if p.blocked {
                println!("you block them");
            }
            if !p.labels.is_empty() {
                println!("labels   {}", p.labels.join(", "));
            }
        }
    }
    Ok(())
}
