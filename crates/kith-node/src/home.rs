//! The home directory: a person's keys and store on this device.
//!
//! ```text
//! <home>/identity.key   32-byte identity secret key   (0600)
//! <home>/device.key     32-byte device secret key     (0600)
//! <home>/device.cert    DeviceCertificate protobuf     (0644)
//! <home>/kith.redb      the store
//! ```
//! Secret files are created with mode 0600 and never overwritten; every
//! command refuses to run if one of them is readable by group or others.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kith_core::{DeviceCert, DeviceKey, IdentityKey};

pub const IDENTITY_KEY_FILE: &str = "identity.key";
pub const DEVICE_KEY_FILE: &str = "device.key";
pub const DEVICE_CERT_FILE: &str = "device.cert";
pub const STORE_FILE: &str = "kith.redb";
/// Remembered peers, one multiaddr a line (see [`crate::remembered`]).
pub const PEERS_FILE: &str = "peers";
/// The TCP port the node last listened on, reused on the next start.
pub const PORT_FILE: &str = "port";
/// Where a running node says how to reach its API.
pub const NODE_FILE: &str = "node.json";
/// The API bearer token (mode 0600).
pub const TOKEN_FILE: &str = "api-token";

/// Where a home directory came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeSource {
    Flag,
    Env,
    Platform,
}

/// Problems with the home directory, each with what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    #[error(
        "no home directory: pass --home DIR or set KITH_HOME (the platform data directory is unknown)"
    )]
    NoPlatformDir,
    #[error("home directory {0} does not exist")]
    Missing(PathBuf),
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "{path} is readable by other users (mode {mode:o}); it holds a secret key. Fix it with: chmod 600 {path}"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{path} holds an identity already ({identity}); kith never overwrites an identity")]
    AlreadyInitialized { path: PathBuf, identity: String },
    #[error("{path} is not a 32-byte key file ({len} bytes)")]
    BadKeyFile { path: PathBuf, len: usize },
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Random(#[from] kith_core::RandomError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + '_ {
    move |error| HomeError::Io {
        path: path.to_owned(),
        error,
    }
}

/// The keys of this device, loaded from the home directory.
#[derive(Debug)]
pub struct Keys {
    pub identity: IdentityKey,
    pub device: DeviceKey,
    pub cert: DeviceCert,
}

/// A home directory.
#[derive(Debug, Clone)]
pub struct Home {
    pub dir: PathBuf,
    pub source: HomeSource,
}

impl Home {
    /// `--home DIR`, else `KITH_HOME`, else the platform data directory.
    pub fn resolve(flag: Option<PathBuf>, env: Option<PathBuf>) -> Result<Home, HomeError> {
        if let Some(dir) = flag {
            return Ok(Home {
                dir,
                source: HomeSource::Flag,
            });
        }
        if let Some(dir) = env.filter(|d| !d.as_os_str().is_empty()) {
            return Ok(Home {
                dir,
                source: HomeSource::Env,
            });
        }
        let dirs =
            directories::ProjectDirs::from("", "", "kith").ok_or(HomeError::NoPlatformDir)?;
        Ok(Home {
            dir: dirs.data_dir().to_owned(),
            source: HomeSource::Platform,
        })
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn store_path(&self) -> PathBuf {
        self.path(STORE_FILE)
    }

    /// Whether an identity exists here.
    pub fn is_initialized(&self) -> bool {
        self.path(IDENTITY_KEY_FILE).exists()
    }

    /// Creates the directory (0700) if needed.
    fn ensure_dir(&self) -> Result<(), HomeError> {
        match fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(HomeError::NotADirectory {
                path: self.dir.clone(),
            }),
            Err(_) => {
                fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
                fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                    .map_err(io(&self.dir))
            }
        }
    }

    /// Creates a new identity, device and certificate. Refuses if an
    /// identity exists.
    pub fn init(&self, now_ms: u64) -> Result<Keys, HomeError> {
        self.ensure_dir()?;
        if self.is_initialized() {
            let keys = self.load()?;
            return Err(HomeError::AlreadyInitialized {
                path: self.dir.clone(),
                identity: keys.identity.id().to_string(),
            });
        }
        let identity = IdentityKey::generate()?;
        write_new(
            &self.path(IDENTITY_KEY_FILE),
            &identity.secret_bytes(),
            0o600,
        )
        .map_err(|e| match e {
            HomeError::Io { error, .. } if error.kind() == std::io::ErrorKind::AlreadyExists => {
                HomeError::AlreadyInitialized {
                    path: self.dir.clone(),
                    identity: "(created concurrently)".into(),
                }
            }
            other => other,
        })?;
        self.new_device(&identity, now_ms)
    }

    /// Loads the keys, finishing an interrupted `init` (device key or
    /// certificate missing) if needed.
    pub fn load(&self) -> Result<Keys, HomeError> {
        if !self.dir.exists() {
            return Err(HomeError::Missing(self.dir.clone()));
        }
        let identity = IdentityKey::from_secret_bytes(&read_secret(&self.path(IDENTITY_KEY_FILE))?);
        let device_path = self.path(DEVICE_KEY_FILE);
        if !device_path.exists() {
            return self.new_device(&identity, now_ms());
        }
        let device = DeviceKey::from_secret_bytes(&read_secret(&device_path)?);
        let cert_path = self.path(DEVICE_CERT_FILE);
        let cert = match fs::read(&cert_path)
            .ok()
            .and_then(|b| DeviceCert::decode(&b).ok())
        {
            Some(c) if c.identity == identity.id() && c.device == device.id() => c,
            _ => {
                let c = DeviceCert::issue(&identity, &device, now_ms());
                replace(&cert_path, &c.encode(), 0o644)?;
                c
            }
        };
        Ok(Keys {
            identity,
            device,
            cert,
        })
    }

    /// Loads the keys, creating an identity first if there is none.
    pub fn load_or_init(&self) -> Result<(Keys, bool), HomeError> {
        if self.is_initialized() {
            Ok((self.load()?, false))
        } else {
            Ok((self.init(now_ms())?, true))
        }
    }

    fn new_device(&self, identity: &IdentityKey, now_ms: u64) -> Result<Keys, HomeError> {
        let device = DeviceKey::generate()?;
        replace(&self.path(DEVICE_KEY_FILE), &device.secret_bytes(), 0o600)?;
        let cert = DeviceCert::issue(identity, &device, now_ms);
        replace(&self.path(DEVICE_CERT_FILE), &cert.encode(), 0o644)?;
        Ok(Keys {
            identity: IdentityKey::from_secret_bytes(&identity.secret_bytes()),
            device,
            cert,
        })
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads a 32-byte secret, refusing files others can read.
fn read_secret(path: &Path) -> Result<[u8; 32], HomeError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(HomeError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    let bytes = fs::read(path).map_err(io(path))?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| HomeError::BadKeyFile {
            path: path.to_owned(),
            len: bytes.len(),
        })
}

/// Writes a file that must not exist yet, atomically: a temporary file with
/// the final mode is linked into place, which fails if the name is taken.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), HomeError> {
    let tmp = write_tmp(path, bytes, mode)?;
    let linked = fs::hard_link(&tmp, path).map_err(io(path));
    let _ = fs::remove_file(&tmp);
    linked
}

/// Writes a file atomically, replacing any old one.
fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), HomeError> {
    let tmp = write_tmp(path, bytes, mode)?;
    fs::rename(&tmp, path).map_err(io(path))
}

fn write_tmp(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, HomeError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home {
            dir: dir.path().join("kith"),
            source: HomeSource::Flag,
        };
        (dir, home)
    }

    #[test]
    fn init_creates_secret_files_with_mode_0600() {
        let (_tmp, home) = home();
        let keys = home.init(1).unwrap();
        for f in [IDENTITY_KEY_FILE, DEVICE_KEY_FILE] {
            let mode = fs::metadata(home.path(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        assert_eq!(home.load().unwrap().identity.id(), keys.identity.id());
    }

    #[test]
    fn init_never_overwrites_an_identity() {
        let (_tmp, home) = home();
        let first = home.init(1).unwrap();
        assert!(matches!(
            home.init(2),
            Err(HomeError::AlreadyInitialized { .. })
        ));
        assert_eq!(home.load().unwrap().identity.id(), first.identity.id());
    }

    #[test]
    fn exposed_secret_keys_are_refused() {
        let (_tmp, home) = home();
        home.init(1).unwrap();
        fs::set_permissions(
            home.path(IDENTITY_KEY_FILE),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = home.load().unwrap_err();
        assert!(
            matches!(err, HomeError::Exposed { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn a_lost_device_key_gives_a_new_certified_device() {
        let (_tmp, home) = home();
        let first = home.init(1).unwrap();
        fs::remove_file(home.path(DEVICE_KEY_FILE)).unwrap();
        let again = home.load().unwrap();
        assert_eq!(again.identity.id(), first.identity.id());
        assert_ne!(again.device.id(), first.device.id());
        assert!(again.cert.verify().is_ok());
    }
}
