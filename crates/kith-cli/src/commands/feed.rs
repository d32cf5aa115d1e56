//! `kith feed` and `kith show`.

use kith_core::{IdentityId, PostId};
use kith_node::{Call, Reply};

use super::Context;
use crate::output;

/// Most posts one `kith feed` prints.
const MAX_LIMIT: u64 = 10_000;

#[derive(Debug, clap::Args)]
pub struct FeedArgs {
    /// Only this person's posts.
    #[arg(long, value_name = "ID")]
    author: Option<IdentityId>,
    /// How many posts.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    limit: u64,
    /// A group's posts (its id or name) instead of public ones.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    post: PostId,
    /// Every text the post has had, oldest first.
    #[arg(long)]
    history: bool,
}

pub fn feed(ctx: &Context, a: FeedArgs) -> anyhow::Result<()> {
    let Reply::Posts(posts) = ctx.call(Call::Feed {
        author: a.author,
        limit: a.limit as usize,
        group: a.group,
        before: None,
        home: false,
    })?
    else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&posts);
    }
    if posts.is_empty() {
        println!("no posts yet: write one with `kith post TEXT`");
    }
    for p in &posts {
        output::post(p, 0);
        println!();
    }
    Ok(())
}

pub fn show(ctx: &Context, a: ShowArgs) -> anyhow::Result<()> {
    if a.history {
        let Reply::History(versions) = ctx.call(Call::History { post: a.post })? else {
            return Err(output::unexpected());
        };
        if ctx.json {
            return output::json(&serde_json::json!({ "id": a.post, "history": versions }));
        }
        if versions.is_empty() {
            println!("{} is deleted: every version of its text is erased", a.post);
        }
        for (i, v) in versions.iter().enumerate() {
            println!("#{i}  {}", output::when(v.at_ms));
            output::lines("  ", &v.text);
        }
        return Ok(());
    }
    let Reply::Thread(thread) = ctx.call(Call::Thread { post: a.post })? else {
        return Err(output::unexpected());
    };
    if ctx.json {
        let (root, replies) = thread.split_first().ok_or_else(output::unexpected)?;
        return output::json(&serde_json::json!({ "post": root.post, "replies": replies }));
    }
    for e in &thread {
        output::post(&e.post, e.depth);
    }
    Ok(())
}
