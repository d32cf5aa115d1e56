//! `kith open`: opens the running node's web app in the default browser,
//! logged in with a fresh one-time link.
//!
//! Starting a graphical browser only spawns it: on a machine without a
//! graphical session the spawn may succeed and the browser die at once.
//! So without one (and without `$BROWSER`, which may name a text browser)
//! the command does not try, and fails with the link to open elsewhere.

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
    let opened =
        graphical_session().and_then(|()| webbrowser::open(&url).map_err(|e| e.to_string()));
    match opened {
        Ok(()) => {
            println!("opened the app in your browser:");
            println!("{url}");
            Ok(())
        }
        Err(why) => {
            println!("{url}");
            anyhow::bail!(
                "could not start a browser ({why}); open the link above yourself (it logs in once)"
            )
        }
    }
}

/// Whether a browser can show a page here: always on macOS and Windows;
/// elsewhere with `$BROWSER`, an X11 or Wayland display, or WSL's Windows
/// side (as the `webbrowser` crate finds it).
fn graphical_session() -> Result<(), String> {
    if cfg!(any(target_os = "macos", windows)) {
        return Ok(());
    }
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    let wsl = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/WSLInterop")
        .is_ok_and(|s| s.contains("enabled"));
    if set("BROWSER") || set("DISPLAY") || set("WAYLAND_DISPLAY") || wsl {
        Ok(())
    } else {
        Err("no graphical session: neither DISPLAY nor WAYLAND_DISPLAY is set, nor BROWSER".into())
    }
}
