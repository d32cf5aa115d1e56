//! One module per group of subcommands.

pub mod archive;
pub mod feed;
pub mod init;
pub mod node;
pub mod people;
pub mod post;
pub mod profile;

use std::path::PathBuf;

use anyhow::Context as _;
use kith_node::{Home, HomeSource, Service};

/// What every command gets: the global flags.
#[derive(Debug)]
pub struct Context {
    pub home: Option<PathBuf>,
    pub json: bool,
}

impl Context {
    pub fn home(&self) -> anyhow::Result<Home> {
        Ok(Home::resolve(
            self.home.clone(),
            std::env::var_os("KITH_HOME").map(PathBuf::from),
        )?)
    }

    /// Opens the local service, creating an identity on first use (and
    /// saying so on stderr). A home named by `--home` or `KITH_HOME` must
    /// exist: a typo there should not silently start a second identity.
    pub fn service(&self) -> anyhow::Result<Service> {
        let home = self.home()?;
        if home.source != HomeSource::Platform && !home.dir.is_dir() {
            anyhow::bail!(
                "no kith home at {}: create it with `kith init --home {}` (or `kith node --home {}`)",
                home.dir.display(),
                home.dir.display(),
                home.dir.display()
            );
        }
        self.open(home)
    }

    /// Opens the service, creating the home and identity if needed.
    pub fn service_creating_home(&self) -> anyhow::Result<Service> {
        self.open(self.home()?)
    }

    fn open(&self, home: Home) -> anyhow::Result<Service> {
        let (service, created) = Service::open(&home)
            .with_context(|| format!("cannot open kith home {}", home.dir.display()))?;
        if created {
            eprintln!(
                "created a new identity {} in {}",
                service.identity(),
                home.dir.display()
            );
        }
        Ok(service)
    }
}
