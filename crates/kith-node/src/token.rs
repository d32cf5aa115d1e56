//! The local API's bearer token: 32 random bytes, hex, in a 0600 file of the
//! home directory, created on first use.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context as _;

/// Reads the token, creating it if missing; refuses a file others can read.
pub fn load_or_create(path: &Path) -> anyhow::Result<String> {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        anyhow::ensure!(
            mode & 0o077 == 0,
            "{} is readable by other users (mode {mode:o}); fix it with: chmod 600 {}",
            path.display(),
            path.display()
        );
        let token = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        return Ok(token.trim().to_owned());
    }
    let bytes = kith_core::keys::random_bytes::<32>()?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(token.as_bytes())?;
    Ok(token)
}
