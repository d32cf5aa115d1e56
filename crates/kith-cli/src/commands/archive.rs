//! `kith export` and `kith import`.

use std::path::PathBuf;

use super::Context;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct FileArgs {
    file: PathBuf,
}

pub fn export(ctx: &Context, a: FileArgs) -> anyhow::Result<()> {
    let s = ctx.service()?;
    let n = s.export(&a.file)?;
    if ctx.json {
        return output::json(&serde_json::json!({ "file": a.file, "changes": n }));
    }
    println!("exported {n} signed changes to {}", a.file.display());
    Ok(())
}

pub fn import(ctx: &Context, a: FileArgs) -> anyhow::Result<()> {
    let mut s = ctx.service()?;
    let r = s.import(&a.file)?;
    if ctx.json {
        return output::json(&serde_json::json!({
            "file": a.file, "applied": r.applied, "pending": r.pending, "duplicates": r.duplicates
        }));
    }
    println!(
        "imported {}: {} applied, {} waiting for earlier changes, {} already here",
        a.file.display(),
        r.applied,
        r.pending,
        r.duplicates
    );
    Ok(())
}
