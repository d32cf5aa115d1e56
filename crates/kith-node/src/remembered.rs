//! The peers a home remembers: its `peers` file ([`crate::home::PEERS_FILE`]),
//! one multiaddr a line, which a node dials at every start and redials
//! while it runs. `kith peer add`, `list` and `remove` read and write it
//! directly when no node runs; a running node owns it, and the CLI asks the
//! node instead.
//!
//! A change writes a new file beside the old one and renames it into place,
//! so a reader (a node starting) never sees half a list.

use std::path::Path;

use kith_net::Multiaddr;

use crate::service::ActionError;

/// The lines of the peers file, trimmed, without blank ones; unreadable
/// addresses too, so that they can be seen and removed. No file: none.
pub fn list(file: &Path) -> Result<Vec<String>, ActionError> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(file_error(file, error)),
    }
}

/// Parses an address as `kith peer add` and `remove` take it.
pub fn parse(address: &str) -> Result<Multiaddr, ActionError> {
    address
        .trim()
        .parse()
        .map_err(|e| ActionError::Invalid(format!("`{address}` is not a multiaddr: {e}")))
}

/// Adds `addr` to the file; `false` if it was there already.
pub fn add(file: &Path, addr: &Multiaddr) -> Result<bool, ActionError> {
    let mut lines = list(file)?;
    if lines.iter().any(|l| same(l, addr)) {
        return Ok(false);
    }
    lines.push(addr.to_string());
    write(file, &lines)?;
    Ok(true)
}

/// Removes `address` from the file, and returns it parsed (`None` for a
/// line that is not a readable multiaddr, removed all the same). An
/// address the file does not hold is an error that says where to look.
pub fn forget(file: &Path, address: &str) -> Result<Option<Multiaddr>, ActionError> {
    let address = address.trim();
    let parsed: Option<Multiaddr> = address.parse().ok();
    let lines = list(file)?;
    let kept: Vec<String> = lines
        .iter()
        .filter(|l| *l != address && !parsed.as_ref().is_some_and(|a| same(l, a)))
        .cloned()
        .collect();
    if kept.len() == lines.len() {
        return Err(ActionError::Invalid(format!(
            "{address} is not a remembered peer (`kith peer list` shows them)"
        )));
    }
    write(file, &kept)?;
    Ok(parsed)
}

/// Whether a line of the file names `addr`.
fn same(line: &str, addr: &Multiaddr) -> bool {
    line.parse::<Multiaddr>().is_ok_and(|l| l == *addr)
}

/// Replaces the file with `lines`, atomically.
fn write(file: &Path, lines: &[String]) -> Result<(), ActionError> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let tmp = file.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|error| {
            let _ = std::fs::remove_file(&tmp);
            file_error(file, error)
        })
}

fn file_error(file: &Path, error: std::io::Error) -> ActionError {
    ActionError::File {
        path: file.display().to_string(),
        error,
    }
}

/// The remembered peers of a home; unreadable lines are skipped with a warning.
pub fn remembered_peers(file: &std::path::Path) -> Vec<Multiaddr> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match l.trim().parse() {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(line = l, error = %e, "ignoring a bad line in the peers file");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_list_and_forget_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("peers");
        assert!(list(&file).unwrap().is_empty(), "no file: no peers");
        let a = parse("/ip4/192.0.2.7/tcp/4610").unwrap();
        let b = parse("/ip4/192.0.2.8/tcp/4610").unwrap();
        assert!(add(&file, &a).unwrap());
        assert!(add(&file, &b).unwrap());
        assert!(!add(&file, &a).unwrap(), "an address is kept once");
        assert_eq!(list(&file).unwrap(), [a.to_string(), b.to_string()]);
        assert_eq!(forget(&file, " /ip4/192.0.2.7/tcp/4610 ").unwrap(), Some(a));
        assert_eq!(list(&file).unwrap(), [b.to_string()]);
        let err = forget(&file, "/ip4/192.0.2.7/tcp/4610").unwrap_err();
        assert!(err.to_string().contains("kith peer list"), "{err}");
    }

    #[test]
    fn an_unreadable_line_can_be_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("peers");
        std::fs::write(&file, "/ip4/192.0.2.7/tcp/4610\nnot an address\n\n").unwrap();
        assert_eq!(list(&file).unwrap().len(), 2);
        assert_eq!(forget(&file, "not an address").unwrap(), None);
        assert_eq!(list(&file).unwrap(), ["/ip4/192.0.2.7/tcp/4610"]);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
