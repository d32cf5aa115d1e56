//! `kith post`, `edit`, `delete`, `react`, `unreact`.

use kith_core::PostId;
use kith_node::{Call, Reply};

use super::Context;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct PostArgs {
    /// The text (at most 10,000 characters).
    text: String,
    /// Reply to this post (the reply goes where the post is).
    #[arg(long, value_name = "POST")]
    reply_to: Option<PostId>,
    /// Post in this group (its id or name) instead of publicly.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
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
    let Reply::Post(id) = ctx.call(Call::Post {
        text: a.text,
        reply_to: a.reply_to,
        group: a.group,
    })?
    else {
        return Err(output::unexpected());
    };
    if ctx.json {
        return output::json(&serde_json::json!({ "id": id }));
    }
    println!("{id}");
    Ok(())
}

pub fn edit(ctx: &Context, a: EditArgs) -> anyhow::Result<()> {
    ctx.call(Call::Edit {
        post: a.post,
        text: a.text,
    })?;
    if ctx.json {
        return output::json(&serde_json::json!({ "id": a.post, "edited": true }));
    }
    println!("edited {}", a.post);
    Ok(())
}

pub fn delete(ctx: &Context, a: PostRef) -> anyhow::Result<()> {
    ctx.call(Call::Delete { post: a.post })?;
    if ctx.json {
        return output::json(&serde_json::json!({ "id": a.post, "deleted": true }));
    }
    println!(
        "deleted {}: every version of its text is erased here, and by each node as the deletion reaches it (an offline one when it catches up); a copy someone made outside kith cannot be recalled",
        a.post
    );
    Ok(())
}

pub fn react(ctx: &Context, a: ReactArgs, add: bool) -> anyhow::Result<()> {
    let call = if add {
        Call::React {
            post: a.post,
            emoji: a.emoji.clone(),
        }
    } else {
        Call::Unreact {
            post: a.post,
            emoji: a.emoji.clone(),
        }
    };
    let Reply::Changed(changed) = ctx.call(call)? else {
        return Err(output::unexpected());
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
