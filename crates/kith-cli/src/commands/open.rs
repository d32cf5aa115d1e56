//! `kith open`: opens the running node's web app in the default browser,
//! logged in with a fresh one-time link.

use super::Context;
use crate::output;

pub fn run(ctx: &Context) -> anyhow::Result<()> {
    let home = ctx.home()?;
    let reply = super::node_post(&home, "/api/login-url")?;
    let url = reply["url"]
        .as_str()
        .ok_or_else(output::unexpected)?
        .to_owned();
    if ctx.json {
        return output::json(&serde_json::json!({ "url": url }));
    }
    match webbrowser::open(&url) {
        Ok(()) => println!("opened the app in your browser"),
        Err(e) => println!("could not start a browser ({e}); open this link yourself:"),
    }
    println!("{url}");
    Ok(())
}
