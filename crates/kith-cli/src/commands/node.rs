//! `kith node`: runs the node in the foreground.

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> anyhow::Result<()> {
    let mut service = ctx.service_creating_home()?;
    let me = service.whoami()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!("kith node");
    println!("identity  {}", me.identity);
    println!("device    {}", me.device);
    println!("home      {}", me.home);
    println!("store     open; press Ctrl-C to stop");
    runtime.block_on(kith_node::shutdown_signal())?;
    println!("stopped");
    Ok(())
}
