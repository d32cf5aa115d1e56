//! The local service: one person's store and keys, and every action they can
//! take. The CLI uses it directly when no node runs; a running node owns one
//! on its service thread.

use std::path::Path;

use kith_core::archive::Archive;
use kith_core::schema::{feed, labels, profile};
use kith_core::{DocId, IdentityId, PostId, SignedChange, SpaceId, Verified};
use kith_store::{CommitError, FeedQuery, ImportReport, LocalSigner, PostRef, Store};

use crate::home::{Home, HomeError, Keys, now_ms};
use crate::views::{self, PersonView, PostView, ThreadEntry, Version};

/// A feed shard rolls over once it holds this many changes, so that no
/// document's load or sync cost grows without bound (DESIGN.md decision 4).
pub const SHARD_MAX_CHANGES: u32 = 512;

/// Largest archive `kith import` reads.
pub const MAX_ARCHIVE_BYTES: u64 = 1 << 30;

/// The directory of the home where [`Service::stage_export`] writes archives:
/// the only place the service writes one.
pub const EXPORTS_DIR: &str = "exports";

/// Why an action failed. Nothing of a failed action is stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Open(#[from] kith_store::OpenError),
    #[error(transparent)]
    Store(#[from] kith_store::StoreError),
    #[error("{0}")]
    Invalid(String),
    /// No group of this identity's is called so or has this id.
    #[error(
        "this node knows no group of yours called or with the id `{0}` (see `kith group list`)"
    )]
    UnknownGroup(String),
    /// This identity is not a member of the group (`None`: the group's
    /// name is not known here).
    #[error("you are not a member of group {}{id}", name.as_ref().map(|n| format!("{n} ")).unwrap_or_default())]
    NotMember { name: Option<String>, id: SpaceId },
    /// Only the group's admins may do that.
    #[error("only admins of {0} can do that; you are a member")]
    NotAdmin(String),
    /// A name several things answer to.
    #[error("several {among} are called `{name}`: use {instead}")]
    Ambiguous {
        among: String,
        name: String,
        instead: &'static str,
    },
    /// The post is deleted: it takes no reply, reaction or edit.
    #[error("post {0} is deleted")]
    DeletedPost(PostId),
    /// No member admitted this identity to the group.
    #[error("not admitted: {0}")]
    NotAdmitted(String),
    #[error("no post {0} in this store")]
    UnknownPost(PostId),
    #[error("no person {0} is known to this store")]
    UnknownPerson(IdentityId),
    #[error("post {0} is not yours: only its author can edit or delete it")]
    NotYours(PostId),
    #[error("{path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("{path} is {size} bytes, more than the {MAX_ARCHIVE_BYTES}-byte limit for an archive")]
    ArchiveTooLarge { path: String, size: u64 },
    #[error("this needs a running node: start one with `kith node`")]
    NodeOnly,
    #[error("import refused, nothing was applied: {0}")]
    Import(#[from] kith_store::ImportError),
    /// A local change was stored but its journal record could not be made
    /// durable: it is not acknowledged (and may have reached peers).
    #[error(
        "not saved: the change was made but could not be written to disk ({0}); it may have reached your peers already"
    )]
    NotDurable(kith_store::StoreError),
}

impl ActionError {
    /// A stable, machine-readable code for the local API.
    pub fn code(&self) -> &'static str {
        match self {
            ActionError::Open(kith_store::OpenError::Store(e)) | ActionError::Store(e)
                if e.is_disk_full() =>
            {
                "disk_full"
            }
            ActionError::Open(kith_store::OpenError::Damaged { .. })
            | ActionError::Open(kith_store::OpenError::RepairUnfinished { .. })
            | ActionError::Store(kith_store::StoreError::Corrupt(_)) => "store_damaged",
            ActionError::Home(_) | ActionError::Open(_) => "home",
            ActionError::Store(_) => "store",
            ActionError::Invalid(_) => "invalid",
            ActionError::UnknownGroup(_) => "unknown_group",
            ActionError::NotMember { .. } => "not_member",
            ActionError::NotAdmin(_) => "not_admin",
            ActionError::Ambiguous { .. } => "ambiguous",
            ActionError::DeletedPost(_) => "deleted_post",
            ActionError::NotAdmitted(_) => "not_admitted",
            ActionError::UnknownPost(_) => "unknown_post",
            ActionError::UnknownPerson(_) => "unknown_person",
            ActionError::NotYours(_) => "not_yours",
            ActionError::File { .. } => "file",
            ActionError::ArchiveTooLarge { .. } => "archive_too_large",
            ActionError::NodeOnly => "node_only",
            ActionError::Import(_) => "import_refused",
            ActionError::NotDurable(e) if e.is_disk_full() => "disk_full",
            ActionError::NotDurable(_) => "store",
        }
    }
}

impl From<CommitError> for ActionError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Invalid(msg) => ActionError::Invalid(msg),
            CommitError::NotMember(id) => ActionError::NotMember { name: None, id },
            CommitError::Store(e) => ActionError::Store(e),
            CommitError::Sign(e) => ActionError::Invalid(format!("could not sign: {e}")),
            e => ActionError::Invalid(e.to_string()),
        }
    }
}

/// Who this device is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WhoAmI {
    pub identity: IdentityId,
    pub device: kith_core::DeviceId,
    pub name: Option<String>,
    pub home: String,
}

/// One person's store and keys.
#[derive(Debug)]
pub struct Service {
    store: Store,
    keys: Keys,
    home: Home,
    /// The feed shard new posts go to, per space; found on first use.
    shards: std::collections::HashMap<SpaceId, u32>,
    /// Changes made here since the last call to `take_outbox`, stored and
    /// waiting to be published.
    outbox: Vec<Verified<SignedChange>>,
    /// Where a running node can be reached (multiaddr bytes, the best
    /// first), for the invite keys it makes; empty without a node.
    reachable_at: Vec<Vec<u8>>,
}

impl Service {
    /// Opens the home's store, creating the identity first if there is none.
    /// Returns whether an identity was created.
    pub fn open(home: &Home) -> Result<(Service, bool), ActionError> {
        let (keys, created) = home.load_or_init()?;
        let mut store = Store::open(&home.store_path())?;
        // Catching up is mostly signature checks: use every core for them.
        store.set_verify_threads(
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        );
        store.add_certificate(&keys.cert)?;
        let mut service = Service {
            store,
            keys,
            home: home.clone(),
            shards: Default::default(),
            outbox: Vec::new(),
            reachable_at: Vec::new(),
        };
        service.make_blocks_private()?;
        Ok((service, created))
    }

    pub fn identity(&self) -> IdentityId {
        self.keys.identity.id()
    }

    /// This device's keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The home directory this service opened.
    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The changes made here since the last call, each stored: a node
    /// publishes them before it syncs the journal (see
    /// `Store::commit_local`).
    pub fn take_outbox(&mut self) -> Vec<Verified<SignedChange>> {
        std::mem::take(&mut self.outbox)
    }

    /// Runs a local edit on `doc` and records the change.
    pub(crate) fn commit<T, E: std::fmt::Display>(
        &mut self,
        doc: DocId,
        f: impl FnOnce(&mut kith_store::Draft<'_>) -> Result<T, E>,
    ) -> Result<T, ActionError> {
        let signer = LocalSigner {
            key: &self.keys.device,
            author: self.keys.identity.id(),
        };
        let (value, change) = self.store.commit_local(doc, signer, now_ms(), f)?;
        self.outbox.extend(change);
        Ok(value)
    }

    pub fn whoami(&mut self) -> Result<WhoAmI, ActionError> {
        let me = self.identity();
        let name = self.store.read_doc(&DocId::profile(me), profile::name)?;
        Ok(WhoAmI {
            identity: me,
            device: self.keys.device.id(),
            name,
            home: self.home.dir.display().to_string(),
        })
    }

    /// The feed shard of `space` that new entries go to.
    fn current_shard(&mut self, space: SpaceId) -> Result<DocId, ActionError> {
        let me = self.identity();
        let mut shard = self.shards.get(&space).copied().unwrap_or(0);
        while self.store.doc_size(&DocId::feed(me, space, shard))? >= SHARD_MAX_CHANGES {
            shard += 1;
        }
        self.shards.insert(space, shard);
        Ok(DocId::feed(me, space, shard))
    }

    /// Publishes a public post (or a reply, which goes where its parent is)
    /// and returns its id.
    pub fn post(&mut self, text: &str, reply_to: Option<PostId>) -> Result<PostId, ActionError> {
        self.post_to(None, text, reply_to)
    }

    /// Publishes a post in `group` (`None`: the public space, or for a
    /// reply the parent's space) and returns its id.
    pub fn post_to(
        &mut self,
        group: Option<SpaceId>,
        text: &str,
        reply_to: Option<PostId>,
    ) -> Result<PostId, ActionError> {
        feed::check_text(text).map_err(|e| ActionError::Invalid(e.to_string()))?;
        let mut space = group.unwrap_or(SpaceId::PUBLIC);
        if let Some(parent) = reply_to {
            let parent_post = self.live_post(&parent)?;
            if group.is_some_and(|g| g != parent_post.doc.space) {
                return Err(ActionError::Invalid(format!(
                    "post {parent} is in another space: a reply goes where its parent is"
                )));
            }
            space = parent_post.doc.space;
        }
        let doc = self.current_shard(space)?;
        let key = data_encoding::BASE32_NOPAD
            .encode(&kith_core::keys::random_bytes::<8>().map_err(HomeError::from)?)
            .to_ascii_lowercase();
        let at = now_ms();
        self.commit(doc, |d| d.create_post(&key, text, at, reply_to))?;
        Ok(PostId::derive(&doc, &key))
    }

    /// A post that exists and is not deleted: what a reply or a reaction
    /// needs.
    fn live_post(&self, id: &PostId) -> Result<PostRef, ActionError> {
        let post = self
            .store
            .post_ref(id)?
            .ok_or(ActionError::UnknownPost(*id))?;
        if post.deleted {
            return Err(ActionError::DeletedPost(*id));
        }
        Ok(post)
    }

    fn own_post(&self, id: &PostId) -> Result<(DocId, String), ActionError> {
        let post = self
            .store
            .post_ref(id)?
            .ok_or(ActionError::UnknownPost(*id))?;
        if post.author != self.identity() {
            return Err(ActionError::NotYours(*id));
        }
        Ok((post.doc, post.key))
    }

    pub fn edit(&mut self, id: &PostId, text: &str) -> Result<(), ActionError> {
        let (doc, key) = self.own_post(id)?;
        self.commit(doc, |d| d.edit_post(&key, text))
    }

    pub fn delete(&mut self, id: &PostId) -> Result<(), ActionError> {
        let (doc, key) = self.own_post(id)?;
        self.commit(doc, |d| feed::delete_post(d, &key))
    }

    /// Adds a reaction; returns false if it was already there.
    pub fn react(&mut self, id: &PostId, emoji: &str) -> Result<bool, ActionError> {
        feed::check_reaction(emoji).map_err(|e| ActionError::Invalid(e.to_string()))?;
        let post = self.live_post(id)?;
        if self
            .store
            .reaction_doc(id, &self.identity(), emoji)?
            .is_some()
        {
            return Ok(false);
        }
        let space_doc = post.doc;
        let doc = self.current_shard(space_doc.space)?;
        self.commit(doc, |d| feed::react(d, id, emoji))?;
        Ok(true)
    }

    /// Removes a reaction; returns false if there was none.
    pub fn unreact(&mut self, id: &PostId, emoji: &str) -> Result<bool, ActionError> {
        if self.store.post_ref(id)?.is_none() {
            return Err(ActionError::UnknownPost(*id));
        }
        let Some(doc) = self.store.reaction_doc(id, &self.identity(), emoji)? else {
            return Ok(false);
        };
        self.commit(doc, |d| feed::unreact(d, id, emoji))?;
        Ok(true)
    }

    pub fn set_profile(
        &mut self,
        name: Option<&str>,
        bio: Option<&str>,
    ) -> Result<(), ActionError> {
        if name.is_none() && bio.is_none() {
            return Err(ActionError::Invalid(
                "nothing to set: give --name and/or --bio".into(),
            ));
        }
        let doc = DocId::profile(self.identity());
        self.commit(doc, |d| -> Result<(), profile::ProfileError> {
            if let Some(n) = name {
                profile::set_name(d, n)?;
            }
            if let Some(b) = bio {
                profile::set_bio(d, b)?;
            }
            Ok(())
        })
    }

    fn not_me(&self, who: &IdentityId, what: &str) -> Result<(), ActionError> {
        if *who == self.identity() {
            return Err(ActionError::Invalid(format!("you cannot {what} yourself")));
        }
        Ok(())
    }

    /// Follows `who`, adding `labels` (checked before anything is written).
    pub fn follow(&mut self, who: &IdentityId, new_labels: &[String]) -> Result<(), ActionError> {
        self.not_me(who, "follow")?;
        let normalised = normalise_labels(new_labels)?;
        let key = profile::follow_key(who);
        self.commit(DocId::profile(self.identity()), |d| profile::add(d, &key))?;
        self.add_labels(who, &normalised)
    }

    pub fn unfollow(&mut self, who: &IdentityId) -> Result<(), ActionError> {
        let key = profile::follow_key(who);
        self.commit(DocId::profile(self.identity()), |d| {
            profile::remove(d, &key)
        })
    }

    /// Blocks `who`, in the private document: only this identity's own
    /// devices learn of it.
    pub fn block(&mut self, who: &IdentityId) -> Result<(), ActionError> {
        self.not_me(who, "block")?;
        let who = *who;
        self.commit(DocId::private(self.identity()), |d| {
            labels::set_block(d, &who, true)
        })
    }

    pub fn unblock(&mut self, who: &IdentityId) -> Result<(), ActionError> {
        let who = *who;
        self.commit(DocId::private(self.identity()), |d| {
            labels::set_block(d, &who, false)
        })?;
        // A block an earlier version published goes too.
        let key = format!("{}{who}", profile::LEGACY_BLOCK_PREFIX);
        self.commit(DocId::profile(self.identity()), |d| {
            profile::remove(d, &key)
        })
    }

    /// Mutes `who`, in the private document as a block is: their posts leave
    /// this identity's timelines but stay on their profile and in threads.
    /// Unlike a block, a mute stops nothing else: they may still be followed.
    pub fn mute(&mut self, who: &IdentityId) -> Result<(), ActionError> {
        self.not_me(who, "mute")?;
        let who = *who;
        self.commit(DocId::private(self.identity()), |d| {
            labels::set_mute(d, &who, true)
        })
    }

    pub fn unmute(&mut self, who: &IdentityId) -> Result<(), ActionError> {
        let who = *who;
        self.commit(DocId::private(self.identity()), |d| {
            labels::set_mute(d, &who, false)
        })
    }

    /// Moves the blocks an earlier version published in the profile to the
    /// private document, so that they stop being public from now on (their
    /// signed history stays, as any change does).
    fn make_blocks_private(&mut self) -> Result<(), ActionError> {
        let me = self.identity();
        let legacy = self
            .store
            .read_doc(&DocId::profile(me), profile::legacy_blocks)?;
        if legacy.is_empty() {
            return Ok(());
        }
        self.commit(DocId::private(me), |d| {
            legacy
                .iter()
                .try_for_each(|who| labels::set_block(d, who, true))
        })?;
        self.commit(DocId::profile(me), |d| {
            legacy.iter().try_for_each(|who| {
                profile::remove(d, &format!("{}{who}", profile::LEGACY_BLOCK_PREFIX))
            })
        })?;
        tracing::info!(
            blocks = legacy.len(),
            "moved blocks from the public profile to the private document"
        );
        Ok(())
    }

    /// Adds and removes private labels on `who`.
    pub fn label(
        &mut self,
        who: &IdentityId,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ActionError> {
        if add.is_empty() && remove.is_empty() {
            return Err(ActionError::Invalid("give at least one label".into()));
        }
        let add = normalise_labels(add)?;
        let remove = normalise_labels(remove)?;
        self.add_labels(who, &add)?;
        if !remove.is_empty() {
            let who = *who;
            self.commit(
                DocId::private(self.identity()),
                |d| -> Result<(), profile::ProfileError> {
                    for l in &remove {
                        profile::remove(d, &labels::label_key(&who, l))?;
                    }
                    Ok(())
                },
            )?;
        }
        Ok(())
    }

    fn add_labels(&mut self, who: &IdentityId, add: &[String]) -> Result<(), ActionError> {
        if add.is_empty() {
            return Ok(());
        }
        let who = *who;
        self.commit(
            DocId::private(self.identity()),
            |d| -> Result<(), labels::LabelError> {
                for l in add {
                    labels::add(d, &who, l)?;
                }
                Ok(())
            },
        )
    }

    pub fn feed(
        &self,
        author: Option<IdentityId>,
        limit: usize,
    ) -> Result<Vec<PostView>, ActionError> {
        self.feed_in(SpaceId::PUBLIC, author, limit)
    }

    /// Newest posts first in `space` (public, or a group).
    pub fn feed_in(
        &self,
        space: SpaceId,
        author: Option<IdentityId>,
        limit: usize,
    ) -> Result<Vec<PostView>, ActionError> {
        self.feed_page(space, author, limit, None)
    }

    /// Where a page below `before` starts in a timeline index.
    fn cursor(&self, before: Option<PostId>) -> Result<Option<(u64, PostId)>, ActionError> {
        before
            .map(|id| {
                let at = self
                    .store
                    .post_ref(&id)?
                    .ok_or(ActionError::UnknownPost(id))?
                    .at_ms;
                Ok((at, id))
            })
            .transpose()
    }

    /// A page of the home timeline: public posts and those of this
    /// identity's groups, newest first, older than `before` if given.
    pub fn home_page(
        &self,
        limit: usize,
        before: Option<PostId>,
    ) -> Result<Vec<PostView>, ActionError> {
        let before = self.cursor(before)?;
        let mut spaces = vec![SpaceId::PUBLIC];
        spaces.extend(self.my_groups()?.into_keys());
        let me = self.identity();
        Ok(views::all(self.store.home_feed(
            &spaces,
            Some(&me),
            before,
            limit,
        )?))
    }

    /// A page of `space`'s feed: the `limit` newest posts older than
    /// `before` (the last post of the previous page), or the newest.
    pub fn feed_page(
        &self,
        space: SpaceId,
        author: Option<IdentityId>,
        limit: usize,
        before: Option<PostId>,
    ) -> Result<Vec<PostView>, ActionError> {
        let before = self.cursor(before)?;
        let q = FeedQuery {
            space,
            author,
            before,
            viewer: Some(self.identity()),
            limit,
        };
        Ok(views::all(self.store.feed(&q)?))
    }

    /// The ids and creation times of `author`'s newest public posts, as
    /// [`Service::feed`] shows them.
    /// Sets where the running node can be reached: invite keys carry these
    /// addresses so a joiner can dial a member.
    pub fn set_reachable_at(&mut self, addresses: Vec<Vec<u8>>) {
        self.reachable_at = addresses;
    }

    /// See [`Service::set_reachable_at`].
    pub fn reachable_at(&self) -> &[Vec<u8>] {
        &self.reachable_at
    }

    pub fn newest_ids(
        &self,
        author: IdentityId,
        limit: usize,
    ) -> Result<Vec<(PostId, u64)>, ActionError> {
        let q = FeedQuery {
            space: SpaceId::PUBLIC,
            author: Some(author),
            before: None,
            viewer: Some(self.identity()),
            limit,
        };
        Ok(self.store.feed_ids(&q)?)
    }

    pub fn thread(&self, id: &PostId) -> Result<Vec<ThreadEntry>, ActionError> {
        let t = self.store.thread(id, Some(&self.identity()))?;
        if t.is_empty() {
            return Err(ActionError::UnknownPost(*id));
        }
        Ok(views::all(t))
    }

    pub fn history(&self, id: &PostId) -> Result<Vec<Version>, ActionError> {
        if self.store.post_ref(id)?.is_none() {
            return Err(ActionError::UnknownPost(*id));
        }
        Ok(views::all(self.store.history(id)?))
    }

    pub fn person(&self, who: Option<IdentityId>) -> Result<PersonView, ActionError> {
        let me = self.identity();
        let who = who.unwrap_or(me);
        match self.store.person(&me, &who)? {
            Some(p) => Ok(p.into()),
            None if who == me => Ok(PersonView::unknown(me)),
            None => Err(ActionError::UnknownPerson(who)),
        }
    }

    pub fn people(&self, label: Option<&str>) -> Result<Vec<PersonView>, ActionError> {
        let label = label
            .map(|l| labels::normalise(l).map_err(|e| ActionError::Invalid(e.to_string())))
            .transpose()?;
        Ok(views::all(
            self.store.people(&self.identity(), label.as_deref())?,
        ))
    }

    /// Every stored change and certificate, private documents included; or,
    /// `public`, only what this identity has published.
    pub fn export(&self, public: bool) -> Result<Archive, ActionError> {
        let archive = self.store.export()?;
        Ok(if public {
            archive.published_by(self.identity())
        } else {
            archive
        })
    }

    /// Writes [`Service::export`] into the home's [`EXPORTS_DIR`] under a
    /// fresh name, readable by this user only, and returns the name and the
    /// number of changes. The service writes an archive nowhere else, so no
    /// caller of the API can make a node write a path of its choosing: the
    /// CLI moves the archive where it was asked to (`kith export`).
    pub fn stage_export(&self, public: bool) -> Result<(String, usize), ActionError> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};

        let archive = self.export(public)?;
        let dir = self.home.path(EXPORTS_DIR);
        let file_error = |path: &Path| {
            let path = path.display().to_string();
            move |error| ActionError::File { path, error }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(file_error(&dir))?;
        let nonce = kith_core::keys::random_bytes::<8>()
            .map_err(|e| ActionError::Invalid(format!("no randomness for a file name: {e}")))?;
        let name = format!("export-{}.kith", data_encoding::HEXLOWER.encode(&nonce));
        let path = dir.join(&name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(file_error(&path))?;
        if let Err(e) = file.write_all(&archive.encode()) {
            // A part of an archive is no use to anyone (a full disk, say).
            let _ = std::fs::remove_file(&path);
            return Err(file_error(&path)(e));
        }
        Ok((name, archive.changes.len()))
    }

    /// Verifies and applies an archive, all or nothing. Another identity's
    /// private documents in it are skipped, and counted in the report.
    pub fn import(&mut self, path: &Path) -> Result<ImportReport, ActionError> {
        let shown = path.display().to_string();
        let size = std::fs::metadata(path)
            .map_err(|error| ActionError::File {
                path: shown.clone(),
                error,
            })?
            .len();
        if size > MAX_ARCHIVE_BYTES {
            return Err(ActionError::ArchiveTooLarge { path: shown, size });
        }
        let bytes =
            std::fs::read(path).map_err(|error| ActionError::File { path: shown, error })?;
        let archive = Archive::decode(&bytes).map_err(kith_store::ImportError::from)?;
        let me = self.identity();
        Ok(self.store.import(archive, me)?)
    }
}

fn normalise_labels(ls: &[String]) -> Result<Vec<String>, ActionError> {
    ls.iter()
        .map(|l| labels::normalise(l).map_err(|e| ActionError::Invalid(e.to_string())))
        .collect()
}
