//! Printing results for people and for programs.
//!
//! Every text that someone else wrote (or that came from the network) is
//! printed through [`Untrusted`], which escapes what could drive the
//! terminal; JSON goes through [`untrusted::json`].

use kith_node::views::{PersonView, PostView};
use serde::Serialize;

use crate::untrusted::{self, Untrusted};

/// Prints `value` as one JSON document.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", untrusted::json(&serde_json::to_string_pretty(value)?));
    Ok(())
}

/// A person's display name, escaped: their name, or the end of their id.
pub fn display_name(name: Option<&str>, id: &kith_core::IdentityId) -> String {
    match name {
        Some(n) => Untrusted(n).to_string(),
        None => format!("…{}", id.short()),
    }
}

/// Prints untrusted `text` line by line, each line escaped and indented by
/// `pad`, so that no line of it can pass for a line of the command's own.
pub fn lines(pad: &str, text: &str) {
    for line in text.lines() {
        println!("{pad}{}", Untrusted(line));
    }
}

/// A reply of the wrong kind: the node and the CLI disagree.
pub fn unexpected() -> anyhow::Error {
    anyhow::anyhow!(
        "the node answered with an unexpected reply; are `kith` and the node the same version?"
    )
}

/// A count with its noun in the right number: `1 post`, `2 posts`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A timestamp for people.
pub fn when(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Prints one post, indented by `depth` levels.
pub fn post(p: &PostView, depth: u32) {
    let pad = "  ".repeat(depth as usize);
    let mut flags = Vec::new();
    if p.edited {
        flags.push("edited".to_owned());
    }
    if p.author_muted {
        flags.push("muted".to_owned());
    }
    if let Some(parent) = &p.reply_to {
        flags.push(format!("reply to {parent}"));
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!("  ({})", flags.join(", "))
    };
    println!(
        "{pad}{}  {}  {}{flags}",
        p.id,
        display_name(p.author_name.as_deref(), &p.author),
        when(p.created_at_ms)
    );
    match &p.text {
        Some(t) => lines(&format!("{pad}  "), t),
        None => println!("{pad}  [deleted]"),
    }
    let mut extra: Vec<String> = p
        .reactions
        .iter()
        .map(|(e, n)| format!("{} {n}", Untrusted(e)))
        .collect();
    if p.replies > 0 {
        extra.push(count(p.replies.into(), "reply", "replies"));
    }
    if !extra.is_empty() {
        println!("{pad}  {}", extra.join("  "));
    }
}

/// Prints one person on a line or two.
pub fn person(p: &PersonView) {
    let mut tags = Vec::new();
    if p.following {
        tags.push("following".to_owned());
    }
    if p.blocked {
        tags.push("blocked".to_owned());
    }
    if p.muted {
        tags.push("muted".to_owned());
    }
    tags.extend(p.labels.iter().map(|l| format!("#{}", Untrusted(l))));
    println!(
        "{}  {}  {}",
        display_name(p.name.as_deref(), &p.id),
        p.id,
        tags.join(" ")
    );
}
