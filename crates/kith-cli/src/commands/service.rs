//! `kith service install|uninstall|status`: the node as a systemd user unit,
//! so that it runs whenever the person is logged in (and, with
//! `loginctl enable-linger`, when they are not), restarted if it fails.
//!
//! The unit runs this very binary on this home, with the node options given
//! after `--`, checked before anything is written: a unit that fails at every
//! start is worse than an error now.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use clap::Parser;
use serde::Serialize;

use super::Context;
use crate::output;
use crate::untrusted::Untrusted;

/// The unit's name.
pub const UNIT: &str = "kith.service";
/// How every unit kith writes begins (see `unit_text`): a unit that does
/// not is someone else's, and kith neither replaces nor removes it.
const MARK: &str = "# Written by `kith service install`";

/// Refuses to touch a unit at `unit` that kith did not write.
fn ours(unit: &Path) -> anyhow::Result<()> {
    match std::fs::read_to_string(unit) {
        Ok(text) if !text.starts_with(MARK) => anyhow::bail!(
            "{} was not written by kith; move it away first (kith leaves it as it is)",
            unit.display()
        ),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", unit.display())),
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum ServiceCommand {
    /// Write a systemd user unit that runs `kith node` on this home while
    /// you are logged in, then enable and start it.
    Install(InstallArgs),
    /// Stop and disable the unit, and remove it.
    Uninstall,
    /// Whether the unit is installed, what it runs, and whether it runs.
    Status,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Only write the unit; do not ask systemd to enable and start it.
    #[arg(long)]
    no_start: bool,
    /// Options for `kith node`, after `--` (for example
    /// `-- --bootstrap /ip4/203.0.113.7/tcp/4610`).
    #[arg(last = true, value_name = "NODE OPTIONS")]
    node_args: Vec<String>,
}

/// `kith node`'s own parser, to check the options the unit will pass.
#[derive(Debug, Parser)]
#[command(name = "kith node", no_binary_name = true)]
struct NodeLine {
    #[command(flatten)]
    _args: super::node::Args,
}

pub fn run(ctx: &Context, c: ServiceCommand) -> anyhow::Result<()> {
    match c {
        ServiceCommand::Install(a) => install(ctx, a),
        ServiceCommand::Uninstall => uninstall(ctx),
        ServiceCommand::Status => status(ctx),
    }
}

/// Where systemd looks for this user's units.
fn unit_path() -> anyhow::Result<PathBuf> {
    let dirs = directories::BaseDirs::new()
        .context("cannot tell where this user's configuration lives (is HOME set?)")?;
    Ok(dirs.config_dir().join("systemd/user").join(UNIT))
}

/// One word of an `ExecStart=` line, as systemd reads it back: quoted
/// unless plain, with `%` and `$` doubled so that systemd expands nothing.
fn exec_word(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.:@+=,-%$".contains(c));
    if plain {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn unit_text(exe: &Path, home: &Path, node_args: &[String]) -> anyhow::Result<String> {
    let text = |p: &Path, what: &str| {
        p.to_str()
            .map(str::to_owned)
            .with_context(|| format!("the {what} path is not UTF-8, which a unit cannot hold"))
    };
    let mut words = vec![
        text(exe, "kith binary")?,
        "--home".to_owned(),
        text(home, "home")?,
        "node".to_owned(),
    ];
    words.extend(node_args.iter().cloned());
    if words.iter().any(|w| w.contains(['\n', '\r'])) {
        anyhow::bail!("a unit line cannot hold a line break");
    }
    let exec: Vec<String> = words.iter().map(|w| exec_word(w)).collect();
    Ok(format!(
        "# Written by `kith service install`; `kith service uninstall` removes it.\n\
         [Unit]\n\
         Description=kith node\n\
         \n\
         [Service]\n\
         ExecStart={}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         # The node finishes its writes and stops on SIGTERM.\n\
         TimeoutStopSec=30\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        exec.join(" ")
    ))
}

/// Runs `systemctl --user ARGS`; its complaint if it fails.
fn systemctl(args: &[&str]) -> Result<String, String> {
    match Command::new("systemctl").arg("--user").args(args).output() {
        Err(e) => Err(format!("cannot run systemctl: {e}")),
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).trim().into()),
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stderr);
            let said = said.trim();
            let stdout = String::from_utf8_lossy(&out.stdout);
            Err(if said.is_empty() {
                stdout.trim().to_owned()
            } else {
                said.to_owned()
            })
        }
    }
}

fn install(ctx: &Context, a: InstallArgs) -> anyhow::Result<()> {
    NodeLine::try_parse_from(&a.node_args).map_err(|e| {
        anyhow::anyhow!(
            "the node options for the unit are wrong: {}",
            e.to_string().lines().next().unwrap_or_default()
        )
    })?;
    let home = ctx.home()?;
    super::init::ensure_identity(&home)?;
    let home = std::path::absolute(&home.dir).context("cannot make the home path absolute")?;
    let exe = std::env::current_exe().context("cannot tell where this kith binary is")?;
    let unit = unit_path()?;
    ours(&unit)?;
    let text = unit_text(&exe, &home, &a.node_args)?;
    let dir = unit.parent().expect("a unit path has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Written whole or not at all: a half-written unit would not start.
    let tmp = dir.join(format!(".{UNIT}.tmp"));
    let written = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, &unit));
    if let Err(e) = written {
        // A full disk leaves no half-written temporary file behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", unit.display()));
    }
    if a.no_start {
        println!("wrote {}", unit.display());
        println!("start it with: systemctl --user enable --now {UNIT}");
        return Ok(());
    }
    systemctl(&["daemon-reload"])
        .and_then(|_| systemctl(&["enable", "--now", UNIT]))
        .map_err(|e| {
            anyhow::anyhow!(
                "wrote {}, but systemd did not start it: {}; on a system without a systemd user session, run `kith node` instead",
                unit.display(),
                Untrusted(&e)
            )
        })?;
    println!(
        "kith node runs as {UNIT} while you are logged in ({})",
        unit.display()
    );
    println!("to keep it running after you log out: loginctl enable-linger");
    Ok(())
}

fn uninstall(_ctx: &Context) -> anyhow::Result<()> {
    let unit = unit_path()?;
    if !unit.exists() {
        println!(
            "no kith service is installed ({} does not exist)",
            unit.display()
        );
        return Ok(());
    }
    ours(&unit)?;
    // Stopped first, so the node is not left running unmanaged; without
    // systemd there is nothing to stop, and the file still goes.
    let stopped = systemctl(&["disable", "--now", UNIT]);
    std::fs::remove_file(&unit).with_context(|| format!("cannot remove {}", unit.display()))?;
    let _ = systemctl(&["daemon-reload"]);
    match stopped {
        Ok(_) => println!("stopped, disabled and removed {UNIT}"),
        Err(e) => println!(
            "removed {} (systemd could not stop it: {})",
            unit.display(),
            Untrusted(&e)
        ),
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct ServiceStatus {
    unit: String,
    installed: bool,
    /// The command line the unit runs.
    exec_start: Option<String>,
    /// What systemd says (`active`, `inactive`, `failed`, …), if it answers.
    active: Option<String>,
    /// Why systemd did not answer.
    systemd_error: Option<String>,
}

fn status(ctx: &Context) -> anyhow::Result<()> {
    let unit = unit_path()?;
    let text = match std::fs::read_to_string(&unit) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", unit.display())),
    };
    let exec_start = text.as_deref().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .map(str::to_owned)
    });
    // `is-active` says "inactive" with a failing status: that is an answer.
    let (active, systemd_error) = match Command::new("systemctl")
        .args(["--user", "is-active", UNIT])
        .output()
    {
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if said.is_empty() {
                (
                    None,
                    Some(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
                )
            } else {
                (Some(said), None)
            }
        }
        Err(e) => (None, Some(format!("cannot run systemctl: {e}"))),
    };
    let s = ServiceStatus {
        unit: unit.display().to_string(),
        installed: text.is_some(),
        exec_start,
        active,
        systemd_error,
    };
    if ctx.json {
        return output::json(&s);
    }
    if !s.installed {
        println!(
            "not installed ({} does not exist); `kith service install` installs it",
            s.unit
        );
        return Ok(());
    }
    println!("installed: {}", Untrusted(&s.unit));
    if let Some(e) = &s.exec_start {
        println!("runs:      {}", Untrusted(e));
    }
    match (&s.active, &s.systemd_error) {
        (Some(a), _) => println!("systemd:   {}", Untrusted(a)),
        (None, Some(e)) => println!("systemd:   no answer ({})", Untrusted(e)),
        (None, None) => println!("systemd:   no answer"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_systemd_would_expand_or_split_are_quoted() {
        assert_eq!(exec_word("/usr/bin/kith"), "/usr/bin/kith");
        assert_eq!(exec_word("/ip4/1.2.3.4/tcp/4610"), "/ip4/1.2.3.4/tcp/4610");
        assert_eq!(exec_word("/home/a b/kith"), "\"/home/a b/kith\"");
        assert_eq!(exec_word("100%"), "100%%");
        assert_eq!(exec_word("$HOME"), "$$HOME");
        assert_eq!(exec_word("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(exec_word(""), "\"\"");
    }

    #[test]
    fn the_unit_runs_this_binary_on_this_home() {
        let text = unit_text(
            Path::new("/opt/kith/bin/kith"),
            Path::new("/home/ada/my kith"),
            &["--bootstrap".into(), "/ip4/203.0.113.7/tcp/4610".into()],
        )
        .unwrap();
        assert!(text.contains(
            "ExecStart=/opt/kith/bin/kith --home \"/home/ada/my kith\" node --bootstrap /ip4/203.0.113.7/tcp/4610\n"
        ), "{text}");
        assert!(text.contains("WantedBy=default.target"));
        assert!(text.starts_with(MARK), "uninstall knows it by this");
        assert!(unit_text(Path::new("/k"), Path::new("/h"), &["a\nb".into()]).is_err());
    }

    #[test]
    fn node_options_are_checked_with_the_node_parser() {
        assert!(NodeLine::try_parse_from(["--no-mdns", "--not-findable"]).is_ok());
        assert!(NodeLine::try_parse_from(["--no-such-option"]).is_err());
        assert!(NodeLine::try_parse_from(["--listen", "not an address"]).is_err());
    }
}
