//! `kith init` and `kith whoami`, and the naming of a new identity.
//!
//! An identity without a name shows up nowhere that people look for each
//! other ("nearby", people lists show only the end of its id), so whatever
//! command creates one also gives it a name: `--name` if given, else one
//! typed on the terminal, else the system account's. The command says which
//! name it took and how to change it.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;
use kith_node::{Call, Home, Reply, Service};

use super::Context;
use crate::output;
use crate::untrusted::Untrusted;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Your display name (default: asked on a terminal, else your system
    /// account's name).
    #[arg(long)]
    name: Option<String>,
}

/// Where the name of a new identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameSource {
    /// `--name`.
    Flag,
    /// Typed at the prompt.
    Typed,
    /// The system account's full or login name.
    Account,
}

/// The name a new identity took, if any.
#[derive(Debug)]
struct Named(Option<(String, NameSource)>);

impl Named {
    /// Which name was taken and how to change it; nothing for `--name`.
    fn note(&self) -> Option<String> {
        const CHANGE: &str = "`kith profile set --name NAME`";
        match &self.0 {
            Some((_, NameSource::Flag)) => None,
            Some((name, NameSource::Typed)) => Some(format!(
                "named it \"{}\"; change it any time with {CHANGE}",
                Untrusted(name)
            )),
            Some((name, NameSource::Account)) => Some(format!(
                "named it \"{}\" after your system account; change it with {CHANGE}",
                Untrusted(name)
            )),
            None => Some(format!(
                "it has no name yet, so others see only the end of its id: set one with {CHANGE}"
            )),
        }
    }
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let home = ctx.home()?;
    if let Some(name) = &args.name {
        // Check the name before creating anything, so a bad name leaves no half-made identity.
        check_name(name)?;
    }
    let (mut service, named) = create(&home, args.name)?;
    let me = service.whoami()?;
    if ctx.json {
        return output::json(&me);
    }
    println!("created identity {}", me.identity);
    println!("device           {}", me.device);
    println!("home             {}", me.home);
    if let Some(note) = named.note() {
        eprintln!("{note}");
    }
    Ok(())
}

/// Creates a named identity if `home` has none (see the module's
/// overview), saying so on stderr; for every command but `kith init`.
pub fn ensure_identity(home: &Home) -> anyhow::Result<()> {
    if home.is_initialized() {
        return Ok(());
    }
    let (service, named) = create(home, None)?;
    eprintln!(
        "created a new identity {} in {}",
        service.identity(),
        home.dir.display()
    );
    if let Some(note) = named.note() {
        eprintln!("{note}");
    }
    Ok(())
}

/// Creates the identity with a name (see the module's overview); refuses
/// if `home` has one already.
fn create(home: &Home, name: Option<String>) -> anyhow::Result<(Service, Named)> {
    let named = match name {
        Some(n) => Named(Some((n, NameSource::Flag))),
        None if home.is_initialized() => Named(None),
        None => Named(choose_name()),
    };
    home.init(kith_node::home::now_ms())?;
    let (mut service, _) = Service::open(home)
        .with_context(|| format!("cannot open kith home {}", home.dir.display()))?;
    let named = match named.0 {
        Some((name, source)) => match service.set_profile(Some(&name), None) {
            Ok(()) => Named(Some((name, source))),
            Err(e) if source == NameSource::Account => {
                eprintln!(
                    "warning: your system account's name \"{}\" cannot be a kith name ({e})",
                    Untrusted(&name)
                );
                Named(None)
            }
            Err(e) => return Err(e.into()),
        },
        None => Named(None),
    };
    Ok((service, named))
}

/// Whether `name` can be a display name.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut probe = automerge::AutoCommit::new();
    kith_core::schema::profile::set_name(&mut probe, name)?;
    Ok(())
}

/// Asks for a name if stdin is a terminal (the system account's name is the
/// default), else takes the account's name.
fn choose_name() -> Option<(String, NameSource)> {
    let account = account_name();
    if !std::io::stdin().is_terminal() {
        return account.map(|n| (n, NameSource::Account));
    }
    eprintln!("This home has no identity yet; kith creates one now.");
    let stdin = std::io::stdin();
    loop {
        match &account {
            Some(n) => eprint!("Your name, as others will see it [{}]: ", Untrusted(n)),
            None => eprint!("Your name, as others will see it (Enter to skip): "),
        }
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
            // End of input: take the default rather than ask forever.
            eprintln!();
            return account.map(|n| (n, NameSource::Account));
        }
        let typed = line.trim();
        if typed.is_empty() {
            return account.map(|n| (n, NameSource::Account));
        }
        match check_name(typed) {
            Ok(()) => return Some((typed.to_owned(), NameSource::Typed)),
            Err(e) => eprintln!("{e:#}; try another"),
        }
    }
}

/// The system account's full name (the first field of its passwd GECOS
/// entry), else its login name ($USER, $LOGNAME, the passwd entry's).
fn account_name() -> Option<String> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::current())
        .ok()
        .flatten();
    let full = user.as_ref().and_then(|u| {
        let gecos = u.gecos.to_string_lossy();
        let first = gecos.split(',').next().unwrap_or_default().trim();
        (!first.is_empty()).then(|| first.to_owned())
    });
    full.or_else(|| {
        ["USER", "LOGNAME"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .chain(user.map(|u| u.name))
            .map(|n| n.trim().to_owned())
            .find(|n| !n.is_empty())
    })
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
