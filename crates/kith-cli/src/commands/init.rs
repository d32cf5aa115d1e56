//! `kith init` and `kith whoami`.

use anyhow::Context as _;
use kith_node::{Call, Reply, Service};

use super::Context;
use crate::output;
use crate::untrusted::Untrusted;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Your display name.
    #[arg(long)]
    name: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let home = ctx.home()?;
    if let Some(name) = &args.name {
        // Check the name before creating anything, so a bad name leaves no half-made identity.
        let mut probe = automerge::AutoCommit::new();
        kith_core::schema::profile::set_name(&mut probe, name)?;
    }
    home.init(kith_node::home::now_ms())?;
    let (mut service, _) = Service::open(&home)
        .with_context(|| format!("cannot open kith home {}", home.dir.display()))?;
    if let Some(name) = &args.name {
        service.set_profile(Some(name), None)?;
    }
    let me = service.whoami()?;
    if ctx.json {
        return output::json(&me);
    }
    println!("created identity {}", me.identity);
    println!("device           {}", me.device);
    println!("home             {}", me.home);
    Ok(())
}

pub fn whoami(ctx: &Context) -> anyhow::Result<()> {
    let Reply::Whoami(me) = ctx.call(Call::Whoami)? else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&me);
    }
    println!("identity  {}", me.identity);
    println!("device    {}", me.device);
    println!(
        "name      {}",
        me.name
            .as_deref()
            .map_or("(not set: kith profile set --name NAME)".into(), |n| {
                Untrusted(n).to_string()
            })
    );
    println!("home      {}", me.home);
    Ok(())
}
