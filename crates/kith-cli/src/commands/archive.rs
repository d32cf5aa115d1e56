//! `kith export` and `kith import`.

use std::path::PathBuf;

use anyhow::Context as _;
use kith_node::{Call, Reply};

use super::Context;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct FileArgs {
    file: PathBuf,
}

/// The path as the node (which may run in another directory) must see it.
fn absolute(p: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("bad path {}", p.display()))
}

pub fn export(ctx: &Context, a: FileArgs) -> anyhow::Result<()> {
    let Reply::Exported { changes } = ctx.call(Call::Export {
        path: absolute(&a.file)?,
    })?
    else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&serde_json::json!({ "file": a.file, "changes": changes }));
    }
    println!("exported {changes} signed changes to {}", a.file.display());
    Ok(())
}

pub fn import(ctx: &Context, a: FileArgs) -> anyhow::Result<()> {
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
             labels and notes stay with their owner and are never stored here"
        );
    }
    Ok(())
}
