//! Every action a person can take, as a value: the CLI builds a [`Call`] and
//! either runs it on the store itself (no node running) or sends it to the
//! running node's local API, which runs the same [`execute`].

use std::path::PathBuf;

use crate::views::{PersonView, PostView, ThreadEntry, Version};
use kith_core::{IdentityId, PostId, Role, SpaceId};
use serde::{Deserialize, Serialize};

use crate::groups::{GroupSummary, GroupView, InviteView, NewInvite};
use crate::home::PEERS_FILE;
use crate::service::{ActionError, Service, WhoAmI};
use crate::status::{PeerView, Status};

/// An action or a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    Whoami,
    Post {
        text: String,
        reply_to: Option<PostId>,
        /// Post into this group (its id or name); a reply goes where its
        /// parent is.
        #[serde(default)]
        group: Option<String>,
    },
    Edit {
        post: PostId,
        text: String,
    },
    Delete {
        post: PostId,
    },
    React {
        post: PostId,
        emoji: String,
    },
    Unreact {
        post: PostId,
        emoji: String,
    },
    Feed {
        author: Option<IdentityId>,
        limit: usize,
        /// A group's feed (its id or name) instead of the public one.
        #[serde(default)]
        group: Option<String>,
        /// Only posts older than this one (the last of the previous page).
        #[serde(default)]
        before: Option<PostId>,
        /// The home timeline: public posts and those of this identity's
        /// groups together (`group` and `author` must be unset).
        #[serde(default)]
        home: bool,
    },
    Thread {
        post: PostId,
    },
    History {
        post: PostId,
    },
    SetProfile {
        name: Option<String>,
        bio: Option<String>,
    },
    Person {
        id: Option<IdentityId>,
    },
    Follow {
        id: IdentityId,
        labels: Vec<String>,
    },
    Unfollow {
        id: IdentityId,
    },
    Block {
        id: IdentityId,
    },
    Unblock {
        id: IdentityId,
    },
    Mute {
        id: IdentityId,
    },
    Unmute {
        id: IdentityId,
    },
    Label {
        id: IdentityId,
        add: Vec<String>,
        remove: Vec<String>,
    },
    People {
        label: Option<String>,
    },
    /// Writes an archive (everything this store holds, or with `public`
    /// only what this identity has published) into the home's `exports`
    /// directory under a fresh name, which the reply gives; never anywhere
    /// else. The CLI then writes it where it was asked to.
    Export {
        #[serde(default)]
        public: bool,
    },
    /// Reads an archive from a path on this machine.
    Import {
        path: PathBuf,
    },
    /// The archive itself, for a download (as [`Call::Export`]).
    ExportArchive {
        #[serde(default)]
        public: bool,
    },
    GroupCreate {
        name: String,
        #[serde(default)]
        about: String,
    },
    GroupList,
    GroupShow {
        group: String,
    },
    /// Makes an invite; a running node puts its addresses in the key.
    GroupInvite {
        group: String,
        ttl_ms: u64,
        uses: u32,
        role: Role,
    },
    GroupInvites {
        group: String,
    },
    GroupRevoke {
        group: String,
        invite: String,
    },
    GroupRemove {
        group: String,
        member: String,
    },
    GroupPromote {
        group: String,
        member: String,
    },
    GroupLeave {
        group: String,
    },
    GroupRename {
        group: String,
        name: String,
        about: Option<String>,
    },
    /// Remembers an address in the home's `peers` file (see
    /// [`crate::remembered`]); a running node also dials it now and keeps
    /// redialling it.
    AddPeer {
        address: String,
    },
    /// Forgets a remembered address; a running node also stops redialling
    /// it.
    ForgetPeer {
        address: String,
    },
    /// What only a running node can do (`{"call": "node", "node": …}`).
    Node(NodeCall),
}

/// A call only a running node answers: it needs the network, or it waits
/// for something to arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum NodeCall {
    /// Identity, addresses, peers, documents, sync.
    Status,
    /// Connected peers.
    Peers,
    /// The people of connected peers (with `label`, only those labelled so).
    Nearby { label: Option<String> },
    /// Asks members (at the key's addresses and on the LAN) to admit this
    /// identity; answers once admitted and, with `wait`, once the group's
    /// history has arrived, or fails after `timeout_ms`.
    GroupJoin {
        key: String,
        wait: bool,
        timeout_ms: u64,
    },
    /// Answers with a post by `author` that is not in `seen` (their latest
    /// few, at most 16) once one has arrived, or fails after `timeout_ms`
    /// (at most a minute).
    WaitFeed {
        author: IdentityId,
        seen: Vec<PostId>,
        timeout_ms: u64,
    },
    /// What only benchmarks use (`{"node": "bench", "bench": …}`).
    Bench(BenchCall),
}

/// Calls for measuring the network, on a node started with `--probe`
/// (kith-net's probe topic): nothing a person needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "bench", rename_all = "snake_case")]
pub enum BenchCall {
    /// Publishes a probe on the probe topic.
    Probe { nonce: u64 },
    /// Answers once the probe `nonce` has arrived.
    WaitProbe { nonce: u64, timeout_ms: u64 },
}

/// The result of a [`Call`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum Reply {
    Whoami(WhoAmI),
    Post(PostId),
    Done,
    Changed(bool),
    Posts(Vec<PostView>),
    Thread(Vec<ThreadEntry>),
    History(Vec<Version>),
    Person(PersonView),
    People(Vec<PersonView>),
    /// An archive in the home's `exports` directory, by its file name.
    Exported {
        file: String,
        changes: usize,
    },
    Archive(Vec<u8>),
    Imported {
        applied: usize,
        pending: usize,
        duplicates: usize,
        /// Changes of another identity's private documents: never stored.
        #[serde(default)]
        skipped_private: usize,
    },
    Status(Status),
    Peers(Vec<PeerView>),
    Group(GroupView),
    Groups(Vec<GroupSummary>),
    Invite(NewInvite),
    Invites(Vec<InviteView>),
}

/// Runs a call that needs only the store. Node-only calls are refused here.
pub fn execute(service: &mut Service, call: Call) -> Result<Reply, ActionError> {
    Ok(match call {
        Call::Whoami => Reply::Whoami(service.whoami()?),
        Call::Post {
            text,
            reply_to,
            group,
        } => {
            let space = group.map(|g| service.resolve_group(&g)).transpose()?;
            Reply::Post(service.post_to(space, &text, reply_to)?)
        }
        Call::Edit { post, text } => {
            service.edit(&post, &text)?;
            Reply::Done
        }
        Call::Delete { post } => {
            service.delete(&post)?;
            Reply::Done
        }
        Call::React { post, emoji } => Reply::Changed(service.react(&post, &emoji)?),
        Call::Unreact { post, emoji } => Reply::Changed(service.unreact(&post, &emoji)?),
        Call::Feed {
            home: true,
            author: None,
            group: None,
            limit,
            before,
        } => Reply::Posts(service.home_page(limit, before)?),
        Call::Feed { home: true, .. } => {
            return Err(ActionError::Invalid(
                "the home timeline takes neither a group nor an author".into(),
            ));
        }
        Call::Feed {
            author,
            limit,
            group,
            before,
            home: false,
        } => {
            let space = match group {
                Some(g) => service.resolve_group(&g)?,
                None => SpaceId::PUBLIC,
            };
            Reply::Posts(service.feed_page(space, author, limit, before)?)
        }
        Call::ExportArchive { public } => Reply::Archive(service.export(public)?.encode()),
        Call::GroupCreate { name, about } => Reply::Group(service.group_create(&name, &about)?),
        Call::GroupList => Reply::Groups(service.group_list()?),
        Call::GroupShow { group } => {
            let g = service.resolve_group(&group)?;
            Reply::Group(service.group_show(&g)?)
        }
        Call::GroupInvite {
            group,
            ttl_ms,
            uses,
            role,
        } => {
            let g = service.resolve_group(&group)?;
            Reply::Invite(service.group_invite(&g, ttl_ms, uses, role)?)
        }
        Call::GroupInvites { group } => {
            let g = service.resolve_group(&group)?;
            Reply::Invites(service.group_invites(&g)?)
        }
        Call::GroupRevoke { group, invite } => {
            let g = service.resolve_group(&group)?;
            service.group_revoke(&g, &invite)?;
            Reply::Group(service.group_show(&g)?)
        }
        Call::GroupRemove { group, member } => {
            let g = service.resolve_group(&group)?;
            service.group_remove(&g, &member)?;
            Reply::Group(service.group_show(&g)?)
        }
        Call::GroupPromote { group, member } => {
            let g = service.resolve_group(&group)?;
            service.group_promote(&g, &member)?;
            Reply::Group(service.group_show(&g)?)
        }
        Call::GroupLeave { group } => {
            let g = service.resolve_group(&group)?;
            service.group_leave(&g)?;
            Reply::Group(service.group_show(&g)?)
        }
        Call::GroupRename { group, name, about } => {
            let g = service.resolve_group(&group)?;
            service.group_rename(&g, &name, about.as_deref())?;
            Reply::Group(service.group_show(&g)?)
        }
        Call::Thread { post } => Reply::Thread(service.thread(&post)?),
        Call::History { post } => Reply::History(service.history(&post)?),
        Call::SetProfile { name, bio } => {
            service.set_profile(name.as_deref(), bio.as_deref())?;
            Reply::Person(service.person(None)?)
        }
        Call::Person { id } => Reply::Person(service.person(id)?),
        Call::Follow { id, labels } => {
            service.follow(&id, &labels)?;
            Reply::Person(service.person(Some(id))?)
        }
        Call::Unfollow { id } => {
            service.unfollow(&id)?;
            Reply::Person(service.person(Some(id))?)
        }
        Call::Block { id } => {
            service.block(&id)?;
            Reply::Person(service.person(Some(id))?)
        }
        Call::Unblock { id } => {
            service.unblock(&id)?;
            Reply::Person(service.person(Some(id))?)
        }
        Call::Mute { id } => {
            service.mute(&id)?;
            Reply::Person(service.person(Some(id))?)
        }
        Call::Unmute { id } => {
            service.unmute(&id)?;
            Reply::Person(service.person(Some(id))?)
        }
        Call::Label { id, add, remove } => {
            service.label(&id, &add, &remove)?;
            Reply::Person(service.person(Some(id))?)
        }
        Call::People { label } => Reply::People(service.people(label.as_deref())?),
        Call::Export { public } => {
            let (file, changes) = service.stage_export(public)?;
            Reply::Exported { file, changes }
        }
        Call::Import { path } => {
            let r = service.import(&path)?;
            Reply::Imported {
                applied: r.ingested.applied,
                pending: r.ingested.pending,
                duplicates: r.ingested.duplicates,
                skipped_private: r.skipped_private,
            }
        }
        Call::AddPeer { address } => {
            let addr = crate::remembered::parse(&address)?;
            crate::remembered::add(&service.home().path(PEERS_FILE), &addr)?;
            Reply::Done
        }
        Call::ForgetPeer { address } => {
            crate::remembered::forget(&service.home().path(PEERS_FILE), &address)?;
            Reply::Done
        }
        Call::Node(_) => return Err(ActionError::NodeOnly),
    })
}

impl Call {
    /// Whether the call changes what other nodes should hear about.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Call::Post { .. }
                | Call::Edit { .. }
                | Call::Delete { .. }
                | Call::React { .. }
                | Call::Unreact { .. }
                | Call::SetProfile { .. }
                | Call::Follow { .. }
                | Call::Unfollow { .. }
                | Call::Block { .. }
                | Call::Unblock { .. }
                | Call::Mute { .. }
                | Call::Unmute { .. }
                | Call::Label { .. }
                | Call::Import { .. }
                | Call::GroupCreate { .. }
                | Call::GroupInvite { .. }
                | Call::GroupRevoke { .. }
                | Call::GroupRemove { .. }
                | Call::GroupPromote { .. }
                | Call::GroupLeave { .. }
                | Call::GroupRename { .. }
        )
    }
}
