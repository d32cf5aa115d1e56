//! `kith post`, `edit`, `delete`, `react`, `unreact`.

use kith_core::PostId;

use super::Context;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct PostArgs {
    /// The text (at most 10,000 characters).
    text: String,
    /// Reply to this post.
    #[arg(long, value_name = "POST")]
    reply_to: Option<PostId>,
}

#[derive(Debug, clap::Args)]
pub struct PostRef {
    /// The post's id.
    post: PostId,
}

#[derive(Debug, clap::Args)]
pub struct EditArgs {
    post: PostId,
    /// The new text.
    text: String,
}

#[derive(Debug, clap::Args)]
pub struct ReactArgs {
    post: PostId,
    /// An emoji or a short word.
    emoji: String,
}

pub fn post(ctx: &Context, a: PostArgs) -> anyhow::Result<()> {
    let mut s = ctx.service()?;
    let id = s.post(&a.text, a.reply_to)?;
    if ctx.json {
        return output::json(&serde_json::json!({ "id": id }));
    }
    println!("{id}");
    Ok(())
}

pub fn edit(ctx: &Context, a: EditArgs) -> anyhow::Result<()> {
    let mut s = ctx.service()?;
    s.edit(&a.post, &a.text)?;
    if ctx.json {
        return output::json(&serde_json::json!({ "id": a.post, "edited": true }));
    }
    println!("edited {}", a.post);
    Ok(())
}

pub fn delete(ctx: &Context, a: PostRef) -> anyhow::Result<()> {
    let mut s = ctx.service()?;
    s.delete(&a.post)?;
    if ctx.json {
        return output::json(&serde_json::json!({ "id": a.post, "deleted": true }));
    }
    println!("deleted {}", a.post);
    Ok(())
}

pub fn react(ctx: &Context, a: ReactArgs, add: bool) -> anyhow::Result<()> {
    let mut s = ctx.service()?;
    let changed = if add {
        s.react(&a.post, &a.emoji)?
    } else {
        s.unreact(&a.post, &a.emoji)?
    };
    if ctx.json {
        return output::json(
            &serde_json::json!({ "id": a.post, "reaction": a.emoji, "present": add, "changed": changed }),
        );
    }
    match (add, changed) {
        (true, true) => println!("reacted {} to {}", a.emoji, a.post),
        (true, false) => println!("you had already reacted {} to {}", a.emoji, a.post),
        (false, true) => println!("removed {} from {}", a.emoji, a.post),
        (false, false) => println!("you had not reacted {} to {}", a.emoji, a.post),
    }
    Ok(())
}
