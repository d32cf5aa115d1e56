//! `kith`: the command line of a kith node.
//!
//! Every command works offline on the home directory's store; `kith node`
//! runs the node in the foreground.

mod commands;
mod output;
mod untrusted;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::*;

/// kith — one identity for every relationship; a peer-to-peer social network
/// that nobody owns.
#[derive(Debug, Parser)]
#[command(name = "kith", version, propagate_version = true)]
struct Cli {
    /// Home directory (keys and store). Default: $KITH_HOME, else the
    /// platform data directory.
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Print one machine-readable JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an identity, a device key and its certificate.
    Init(init::Args),
    /// Show this identity and device.
    Whoami,
    /// Run the node in the foreground until Ctrl-C.
    Node(node::Args),
    /// Publish a post or a reply.
    Post(post::PostArgs),
    /// Newest posts first.
    Feed(feed::FeedArgs),
    /// A post and its thread.
    Show(feed::ShowArgs),
    /// Replace the text of one of your posts (the old text stays in its
    /// history until the post is deleted).
    Edit(post::EditArgs),
    /// Delete one of your posts: every version of its text is erased.
    Delete(post::PostRef),
    /// React to a post.
    React(post::ReactArgs),
    /// Take back a reaction.
    Unreact(post::ReactArgs),
    /// Your profile, or someone else's.
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Follow someone, optionally labelling them (labels are private).
    Follow(people::FollowArgs),
    /// Stop following someone.
    Unfollow(people::PersonRef),
    /// Block someone: their posts leave your feed.
    Block(people::PersonRef),
    /// Unblock someone.
    Unblock(people::PersonRef),
    /// Mute someone: their posts leave your timelines but stay on their
    /// profile and in threads; you may still follow them. Only you know.
    Mute(people::PersonRef),
    /// Unmute someone.
    Unmute(people::PersonRef),
    /// Add or remove private labels on someone (colleague, customer, friend, …).
    Label(people::LabelArgs),
    /// Everyone you follow or know, with your labels.
    People(people::PeopleArgs),
    /// Groups: create, invite, join, members.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Open the running node's web app in your browser, logged in.
    Open,
    /// Connected peers (needs a running node).
    Peers,
    /// Manage remembered peers.
    #[command(subcommand)]
    Peer(net::PeerCommand),
    /// The node at a glance: identity, addresses, API, peers, store, sync.
    Status,
    /// Catch-up progress; `--wait` waits until it is done.
    Sync(net::SyncArgs),
    /// Write every signed change to a portable archive.
    Export(archive::FileArgs),
    /// Verify and apply an archive (all or nothing).
    Import(archive::FileArgs),
    /// Verify the store: every change's signature and hash, every index
    /// row; exits non-zero on damage.
    Check,
    /// Rebuild a damaged store: keep it aside, salvage what can be read,
    /// then fetch the rest from peers.
    Repair,
    /// Run the node whenever you are logged in (a systemd user unit).
    #[command(subcommand)]
    Service(service::ServiceCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                // A node with no internet peers has no DHT to bootstrap:
                // expected, not worth a warning every few minutes.
                "warn,libp2p_kad=error".into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let ctx = Context {
        home: cli.home,
        json: cli.json,
    };
    let result = match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Whoami => init::whoami(&ctx),
        Command::Node(a) => node::run(&ctx, a),
        Command::Post(a) => post::post(&ctx, a),
        Command::Feed(a) => feed::feed(&ctx, a),
        Command::Show(a) => feed::show(&ctx, a),
        Command::Edit(a) => post::edit(&ctx, a),
        Command::Delete(a) => post::delete(&ctx, a),
        Command::React(a) => post::react(&ctx, a, true),
        Command::Unreact(a) => post::react(&ctx, a, false),
        Command::Profile(c) => profile::run(&ctx, c),
        Command::Follow(a) => people::follow(&ctx, a),
        Command::Unfollow(a) => people::relation(&ctx, a, people::Relation::Unfollow),
        Command::Block(a) => people::relation(&ctx, a, people::Relation::Block),
        Command::Unblock(a) => people::relation(&ctx, a, people::Relation::Unblock),
        Command::Mute(a) => people::relation(&ctx, a, people::Relation::Mute),
        Command::Unmute(a) => people::relation(&ctx, a, people::Relation::Unmute),
        Command::Label(a) => people::label(&ctx, a),
        Command::People(a) => people::people(&ctx, a),
        Command::Group(c) => group::run(&ctx, c),
        Command::Open => open::run(&ctx),
        Command::Peers => net::peers(&ctx),
        Command::Peer(c) => net::peer(&ctx, c),
        Command::Status => net::status(&ctx),
        Command::Sync(a) => net::sync(&ctx, a),
        Command::Export(a) => archive::export(&ctx, a),
        Command::Import(a) => archive::import(&ctx, a),
        Command::Check => store::check(&ctx),
        Command::Repair => store::repair(&ctx),
        Command::Service(c) => service::run(&ctx, c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Errors can quote what others wrote (a group's name).
            eprintln!("error: {}", untrusted::Untrusted(&error_chain(&err)));
            ExitCode::FAILURE
        }
    }
}

/// `err` and its causes, outermost first, joined with ": " as `{err:#}`
/// joins them, but each said once: many errors quote their cause in their
/// own message (`"…: {0}"` with `#[from]`), and a wrapper may say nothing
/// (libp2p's transport errors), so a cause whose text is already there, or
/// that is empty, is left out.
fn error_chain(err: &anyhow::Error) -> String {
    let mut said = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || said.contains(text) {
            continue;
        }
        if !said.is_empty() {
            said.push_str(": ");
        }
        said.push_str(text);
    }
    said
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::error_chain;

    /// An error whose message is `text` followed by its cause's, as
    /// `#[error("…: {0}")]` with `#[from]` makes one.
    #[derive(Debug)]
    struct Quoting {
        text: &'static str,
        cause: Option<Box<Quoting>>,
    }

    impl fmt::Display for Quoting {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match (&self.cause, self.text.is_empty()) {
                (Some(c), false) => write!(f, "{}: {c}", self.text),
                (Some(_), true) => Ok(()),
                (None, _) => f.write_str(self.text),
            }
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.cause.as_deref().map(|c| c as _)
        }
    }

    fn quoting(text: &'static str, cause: Option<Quoting>) -> Quoting {
        Quoting {
            text,
            cause: cause.map(Box::new),
        }
    }

    #[test]
    fn a_cause_is_said_once() {
        let inner = quoting("not a kith archive", None);
        let err = anyhow::Error::from(quoting("import refused", Some(inner)))
            .context("cannot import a.kith");
        assert_eq!(
            error_chain(&err),
            "cannot import a.kith: import refused: not a kith archive"
        );
    }

    #[test]
    fn an_empty_layer_adds_no_separator() {
        let inner = quoting("address in use", None);
        let err = anyhow::Error::from(quoting("", Some(inner))).context("cannot listen");
        assert_eq!(error_chain(&err), "cannot listen: address in use");
    }
}
