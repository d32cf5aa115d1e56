//! `kith check` and `kith repair`: verify a store, rebuild a damaged one.
//!
//! Both need the store to themselves: they refuse while a node runs on the
//! home (stop it first), since a node holds the store open.

use anyhow::Context as _;
use kith_store::repair::{self, Progress};

use super::Context;
use crate::output::count;

/// A progress bar on stderr for the phases of a check or repair; hidden
/// when stderr is no terminal or with `--json`.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(ctx: &Context) -> Bar {
        Bar((!ctx.json).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg:10} {wide_bar} {pos}/{len}")
                    .expect("a valid template"),
            );
            bar
        }))
    }

    fn show(&self, p: Progress) {
        let Some(bar) = &self.0 else { return };
        let (msg, done, total) = match p {
            Progress::Reading { done, total } => ("reading", done, total),
            Progress::Rebuilding { done, total } => ("rebuilding", done, total),
        };
        bar.set_message(msg);
        bar.set_length(total);
        bar.set_position(done);
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Refuses while a node runs on the home.
fn no_node(ctx: &Context) -> anyhow::Result<kith_node::Home> {
    let home = ctx.home()?;
    if super::node_is_running(&home) {
        anyhow::bail!(
            "a node is running on {}: stop it first (Ctrl-C, or `kill` its process)",
            home.dir.display()
        );
    }
    Ok(home)
}

/// `kith check`: exits non-zero when it finds damage.
pub fn check(ctx: &Context) -> anyhow::Result<()> {
    let home = no_node(ctx)?;
    let path = home.store_path();
    let bar = Bar::new(ctx);
    let report = repair::check(&path, |p| bar.show(p))
        .with_context(|| format!("cannot check the store {}", path.display()));
    bar.finish();
    let report = report?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} in {}, {}",
            path.display(),
            count(report.changes, "change", "changes"),
            count(report.documents, "document", "documents"),
            count(report.posts, "post", "posts")
        );
        for finding in &report.findings {
            println!("damage: {finding}");
        }
    }
    if report.findings.is_empty() {
        if !ctx.json {
            println!("no damage found: every change verifies and every index agrees");
        }
        Ok(())
    } else {
        anyhow::bail!(
            "the store is damaged ({} finding{}): `kith repair` rebuilds it, keeping the damaged file aside",
            report.findings.len(),
            if report.findings.len() == 1 { "" } else { "s" }
        )
    }
}

/// `kith repair`: keeps the damaged file aside and rebuilds the store.
pub fn repair(ctx: &Context) -> anyhow::Result<()> {
    let home = no_node(ctx)?;
    let path = home.store_path();
    let bar = Bar::new(ctx);
    let report = repair::repair(&path, |p| bar.show(p))
        .with_context(|| format!("cannot repair the store {}", path.display()));
    bar.finish();
    let report = report?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("the damaged store is kept at {}", report.damaged_kept_at);
    if report.opened {
        println!(
            "read {} and {} from {} ({} could not be read in full)",
            count(report.changes_salvaged, "change", "changes"),
            count(report.certificates, "certificate", "certificates"),
            count(report.documents, "document", "documents"),
            report.unreadable_documents
        );
    } else {
        println!("nothing could be read from it");
    }
    if report.changes_refused > 0 {
        println!(
            "{} of them failed verification and were left out",
            report.changes_refused
        );
    }
    if let Some(c) = report.counts {
        println!(
            "the new store holds {}: {}, {}",
            count(c.changes, "change", "changes"),
            count(c.posts, "post", "posts"),
            count(c.people, "person", "people")
        );
    }
    println!(
        "what could not be read comes back from your peers: run `kith node`, then `kith sync --wait` to follow the catch-up"
    );
    Ok(())
}
