//! `kith export` and `kith import`.
//!
//! The CLI writes an export itself: the node (or, with no node running, the
//! service run here) only stages the archive inside the home directory, and
//! the CLI moves it to the file it was given, readable by this user only and
//! never over an existing file unless `--force` says so.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use kith_node::service::EXPORTS_DIR;
use kith_node::{Call, Home, Reply};

use super::Context;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct FileArgs {
    /// The archive file.
    file: PathBuf,
    /// Export only: replace FILE if it exists (an export never overwrites a
    /// file without it).
    #[arg(long)]
    force: bool,
    /// Export only: just what this identity has published (its profile and
    /// public posts); no labels, blocks or mutes, no groups, nobody else's posts.
    #[arg(long)]
    public: bool,
}

/// The path as the node (which may run in another directory) must see it.
fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("bad path {}", p.display()))
}

fn exists(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} exists: kith export does not overwrite a file; pass --force to replace it, or choose another name",
        path.display()
    )
}

pub fn export(ctx: &Context, a: FileArgs) -> anyhow::Result<()> {
    // Checked again when the file is created; this spares the wait.
    if !a.force && std::fs::symlink_metadata(&a.file).is_ok() {
        return Err(exists(&a.file));
    }
    let Reply::Exported { file, changes } = ctx.call(Call::Export { public: a.public })? else {
        return Err(output::unexpected());
    };
    let staged = staged_path(&ctx.home()?, &file)?;
    let bytes = std::fs::read(&staged)
        .with_context(|| format!("cannot read the staged archive {}", staged.display()));
    // Whatever happens next, the staged copy goes.
    let _ = std::fs::remove_file(&staged);
    write_private(&a.file, &bytes?, a.force)?;
    if ctx.json {
        return output::json(&serde_json::json!({
            "file": a.file, "changes": changes, "public": a.public
        }));
    }
    if a.public {
        println!(
            "exported the {} you published to {}",
            output::count(changes as u64, "signed change", "signed changes"),
            a.file.display()
        );
    } else {
        println!(
            "exported {} to {}, readable only by you (it holds your labels, blocks and mutes)",
            output::count(changes as u64, "signed change", "signed changes"),
            a.file.display()
        );
    }
    Ok(())
}

/// Where the node staged an archive: a file name in the home's exports
/// directory, and nothing else, whatever the reply says.
fn staged_path(home: &Home, name: &str) -> anyhow::Result<PathBuf> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(n)), None) if n == std::ffi::OsStr::new(name) => {
            Ok(home.path(EXPORTS_DIR).join(name))
        }
        _ => Err(output::unexpected()),
    }
}

/// Writes `bytes` to `path` with mode 0600. Without `force` an existing file
/// is never replaced (the file is created new); with it, the old file is
/// replaced only once the new one is complete.
fn write_private(path: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    let target = if force {
        let name = path
            .file_name()
            .with_context(|| format!("{} names no file", path.display()))?;
        path.with_file_name(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ))
    } else {
        path.to_owned()
    };
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !force => {
            return Err(exists(path));
        }
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("cannot create {}", target.display()))
            );
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            if force {
                std::fs::rename(&target, path)
            } else {
                Ok(())
            }
        });
    if let Err(e) = written {
        // No half-written archive is left behind to be mistaken for a backup.
        let _ = std::fs::remove_file(&target);
        return Err(anyhow::Error::new(e).context(format!("cannot write {}", path.display())));
    }
    Ok(())
}

pub fn import(ctx: &Context, a: FileArgs) -> anyhow::Result<()> {
    if a.force || a.public {
        anyhow::bail!(
            "--force and --public are options of `kith export`; `kith import FILE` takes neither"
        );
    }
    let Reply::Imported {
        applied,
        pending,
        duplicates,
        skipped_private,
    } = ctx.call(Call::Import {
        path: absolute(&a.file)?,
    })?
    else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&serde_json::json!({
            "file": a.file, "applied": applied, "pending": pending, "duplicates": duplicates,
            "skipped_private": skipped_private,
        }));
    }
    println!(
        "imported {}: {applied} applied, {pending} waiting for earlier changes, {duplicates} already here",
        a.file.display()
    );
    if skipped_private > 0 {
        let s = if skipped_private == 1 { "" } else { "s" };
        println!(
            "skipped {skipped_private} change{s} of another identity's private documents: \
             labels, blocks and mutes stay with their owner and are never stored here"
        );
    }
    Ok(())
}
