//! Reads, answered from the indexes (DESIGN.md decision 5). Post texts are
//! read from the stored change that the index points at.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use kith_core::group::GroupState;
use kith_core::schema::feed::PostText;
use kith_core::schema::text_of_op;
use kith_core::{DocId, IdentityId, PostId, SpaceId};
use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable};

use crate::changelog::{BlockCache, Rows};
use crate::docs::parse_change;
use crate::error::StoreError;
use crate::rows::*;
use crate::store::Store;
use crate::tables::*;
use crate::views::{PersonView, PostView, ThreadEntry, Version};

/// Which posts `Store::feed` returns.
#[derive(Debug, Clone)]
pub struct FeedQuery {
    pub space: SpaceId,
    /// Only this author's posts.
    pub author: Option<IdentityId>,
    /// Leave out authors this person blocks, and, unless `author` is
    /// given, those this person mutes (whose posts are then marked).
    pub viewer: Option<IdentityId>,
    /// Only posts older than this one (the previous page's last post).
    pub before: Option<(u64, PostId)>,
    pub limit: usize,
}

impl Default for FeedQuery {
    fn default() -> Self {
        FeedQuery {
            space: SpaceId::PUBLIC,
            author: None,
            viewer: None,
            before: None,
            limit: 20,
        }
    }
}

/// Most replies a thread view walks, so a huge thread cannot make one read unbounded.
pub const MAX_THREAD_POSTS: usize = 10_000;

/// The tables a read needs, from one read transaction, each opened when
/// first used: opening a table is a lookup in redb's table of tables, and
/// most reads need two or three of these (a waiting call's check for a new
/// post needs one).
struct Reader<'t> {
    txn: &'t ReadTransaction,
    posts: OnceCell<ReadOnlyTable<&'static [u8; 16], &'static [u8]>>,
    people: OnceCell<ReadOnlyTable<u32, &'static [u8]>>,
    person_nos: OnceCell<ReadOnlyTable<&'static [u8; 32], u32>>,
    changes: OnceCell<ReadOnlyTable<&'static [u8; 12], &'static [u8]>>,
    sealed: OnceCell<ReadOnlyTable<&'static [u8; 13], &'static [u8]>>,
    bodies: OnceCell<ReadOnlyTable<&'static [u8; 20], &'static [u8]>>,
    blocks: RefCell<BlockCache>,
    reactions: OnceCell<ReadOnlyTable<&'static [u8], u32>>,
    replies: OnceCell<ReadOnlyTable<&'static [u8; 40], ()>>,
    spaces: OnceCell<ReadOnlyTable<u32, &'static [u8; 32]>>,
    /// Whom the viewer mutes: views mark their posts and leave out their
    /// reactions. Empty for a read without a viewer.
    muted: BTreeSet<u32>,
}

/// Accessors `fn name(&self) -> Result<&table, StoreError>` for the
/// reader's tables, each opened on first use.
macro_rules! lazy_tables {
    ($($name:ident: $def:ident, $k:ty, $v:ty;)*) => {$(
        fn $name(&self) -> Result<&ReadOnlyTable<$k, $v>, StoreError> {
            if let Some(t) = self.$name.get() {
                return Ok(t);
            }
            let t = self.txn.open_table($def)?;
            Ok(self.$name.get_or_init(|| t))
        }
    )*};
}

impl<'t> Reader<'t> {
    fn new(txn: &'t ReadTransaction) -> Reader<'t> {
        Reader {
            txn,
            posts: OnceCell::new(),
            people: OnceCell::new(),
            person_nos: OnceCell::new(),
            changes: OnceCell::new(),
            sealed: OnceCell::new(),
            bodies: OnceCell::new(),
            blocks: RefCell::default(),
            reactions: OnceCell::new(),
            replies: OnceCell::new(),
            spaces: OnceCell::new(),
            muted: BTreeSet::new(),
        }
    }

    /// A reader for what `viewer` sees: see [`Reader::muted`].
    fn seen_by(txn: &'t ReadTransaction, viewer: Option<&IdentityId>) -> Result<Self, StoreError> {
        let mut r = Reader::new(txn);
        if let Some(no) = viewer.map(|v| r.person_no(v)).transpose()?.flatten() {
            r.muted = pairs_from(txn, MUTES, no)?;
        }
        Ok(r)
    }

    lazy_tables! {
        posts: POSTS, &'static [u8; 16], &'static [u8];
        people: PEOPLE, u32, &'static [u8];
        person_nos: PERSON_NOS, &'static [u8; 32], u32;
        changes: CHANGES, &'static [u8; 12], &'static [u8];
        sealed: SEALED, &'static [u8; 13], &'static [u8];
        bodies: BODIES, &'static [u8; 20], &'static [u8];
        reactions: REACTIONS, &'static [u8], u32;
        replies: REPLIES, &'static [u8; 40], ();
        spaces: SPACES, u32, &'static [u8; 32];
    }

    fn row(&self, id: &PostId) -> Result<Option<PostRow>, StoreError> {
        match self.posts()?.get(&id.0)? {
            None => Ok(None),
            Some(v) => PostRow::decode(v.value())
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("post row {id}"))),
        }
    }

    fn person(&self, no: u32) -> Result<PersonRow, StoreError> {
        self.people()?
            .get(no)?
            .and_then(|v| PersonRow::decode(v.value()))
            .ok_or_else(|| StoreError::Corrupt(format!("person {no}")))
    }

    fn person_no(&self, id: &IdentityId) -> Result<Option<u32>, StoreError> {
        Ok(self.person_nos()?.get(&id.0)?.map(|v| v.value()))
    }

    fn text(&self, row: &PostRow) -> Result<Option<String>, StoreError> {
        let Some(t) = row.text else { return Ok(None) };
        self.text_at(row, t)
    }

    /// The body of one text of a post, if it is kept.
    fn body(&self, doc_no: u32, t: TextRef) -> Result<Option<Vec<u8>>, StoreError> {
        crate::bodies::BodyRows {
            bodies: self.bodies()?,
            rows: Rows {
                changes: self.changes()?,
                sealed: self.sealed()?,
            },
        }
        .get(doc_no, t, &mut self.blocks.borrow_mut())
    }

    /// One text of a post: from its body, or inline in the change for a
    /// post from before bodies. `None` when the body is not here (erased,
    /// or never received).
    fn text_at(&self, row: &PostRow, t: TextRef) -> Result<Option<String>, StoreError> {
        if let Some(body) = self.body(row.doc_no, t)? {
            return Ok(kith_core::body::text_of(&body).map(str::to_owned));
        }
        let rows = Rows {
            changes: self.changes()?,
            sealed: self.sealed()?,
        };
        let key = change_key(row.doc_no, t.actor_no, t.seq);
        let Some(stored) = rows.get_cached(&key, &mut self.blocks.borrow_mut())? else {
            return Err(StoreError::Corrupt(format!(
                "missing change for post {}",
                row.key
            )));
        };
        let change = parse_change(&stored[64..]).map_err(StoreError::Corrupt)?;
        Ok(match text_of_op(&change, t.counter) {
            Some(PostText::Inline(text)) => Some(text),
            Some(PostText::Body(_)) | None => None,
        })
    }

    fn view(&self, id: PostId, row: &PostRow) -> Result<PostView, StoreError> {
        let author = self.person(row.author_no)?;
        let mut reactions: BTreeMap<String, u32> = BTreeMap::new();
        for entry in self.reactions()?.range(&id.0[..]..)? {
            let (k, _) = entry?;
            let k = k.value();
            if !k.starts_with(&id.0) {
                break;
            }
            let reactor = u32::from_be_bytes(k[16..20].try_into().expect("fixed slice"));
            if self.muted.contains(&reactor) {
                continue;
            }
            let emoji = String::from_utf8_lossy(&k[20..]).into_owned();
            *reactions.entry(emoji).or_default() += 1;
        }
        let replies = self
            .replies()?
            .range::<&[u8; 40]>(
                &reply_key(&id, 0, &PostId([0; 16]))
                    ..=&reply_key(&id, u64::MAX, &PostId([0xff; 16])),
            )?
            .count() as u32;
        // Space 0 is the public space; a group's is read only for its posts.
        let space = match row.space_no {
            0 => SpaceId::PUBLIC,
            no => self
                .spaces()?
                .get(no)?
                .map(|v| SpaceId(*v.value()))
                .ok_or_else(|| StoreError::Corrupt(format!("space {no} of post {id}")))?,
        };
        Ok(PostView {
            id,
            space,
            author: author.identity,
            author_name: Some(author.name).filter(|n| !n.is_empty()),
            text: if row.deleted { None } else { self.text(row)? },
            created_at_ms: row.at_ms,
            reply_to: row.reply_to,
            edited: row.edited,
            deleted: row.deleted,
            reactions,
            replies,
            author_muted: self.muted.contains(&row.author_no),
        })
    }

    fn children(&self, id: &PostId) -> Result<Vec<PostId>, StoreError> {
        self.replies()?
            .range::<&[u8; 40]>(
                &reply_key(id, 0, &PostId([0; 16]))..=&reply_key(id, u64::MAX, &PostId([0xff; 16])),
            )?
            .map(|e| {
                e.map(|(k, _)| PostId(k.value()[24..].try_into().expect("fixed slice")))
                    .map_err(StoreError::from)
            })
            .collect()
    }
}

impl Store {
    /// Newest posts first, from the FEED (or BY_AUTHOR) index.
    pub fn feed(&self, q: &FeedQuery) -> Result<Vec<PostView>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::seen_by(&txn, q.viewer.as_ref())?;
        self.feed_rows(&txn, &r, q)?
            .into_iter()
            .map(|(id, row)| r.view(id, &row))
            .collect()
    }

    /// The posts [`Store::feed`] answers `q` with, as ids and creation
    /// times only: what a caller waiting for a new post needs, without
    /// building the views.
    pub fn feed_ids(&self, q: &FeedQuery) -> Result<Vec<(PostId, u64)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::seen_by(&txn, q.viewer.as_ref())?;
        Ok(self
            .feed_rows(&txn, &r, q)?
            .into_iter()
            .map(|(id, row)| (id, row.at_ms))
            .collect())
    }

    fn feed_rows(
        &self,
        txn: &ReadTransaction,
        r: &Reader,
        q: &FeedQuery,
    ) -> Result<Vec<(PostId, PostRow)>, StoreError> {
        let blocked = match &q.viewer {
            Some(v) => self.blocked_by(txn, r, v)?,
            None => BTreeSet::new(),
        };
        let space_no = if q.space.is_public() {
            0
        } else {
            match txn.open_table(SPACE_NOS)?.get(&q.space.0)? {
                Some(n) => n.value(),
                None => return Ok(Vec::new()),
            }
        };
        // FEED is keyed by space; BY_AUTHOR by author, across spaces.
        let (table, prefix) = match &q.author {
            Some(a) => match r.person_no(a)? {
                Some(n) => (txn.open_table(BY_AUTHOR)?, n),
                None => return Ok(Vec::new()),
            },
            None => (txn.open_table(FEED)?, space_no),
        };
        let lo = timeline_key(prefix, 0, &PostId([0; 16]));
        let hi = match &q.before {
            Some((at, id)) => timeline_key(prefix, *at, id),
            None => timeline_key(prefix, u64::MAX, &PostId([0xff; 16])),
        };
        let mut out = Vec::with_capacity(q.limit.min(1000));
        let mut removals = Removals::new(txn);
        for entry in table.range::<&[u8; 28]>(&lo..&hi)?.rev() {
            if out.len() >= q.limit {
                break;
            }
            let (k, _) = entry?;
            let id = timeline_post(k.value());
            let Some(row) = r.row(&id)? else { continue };
            if row.deleted || blocked.contains(&row.author_no) || row.space_no != space_no {
                continue;
            }
            // A mute hides its subject from timelines, not from their own page.
            if q.author.is_none() && r.muted.contains(&row.author_no) {
                continue;
            }
            if removals.hide(self, r, &row)? {
                continue;
            }
            out.push((id, row));
        }
        Ok(out)
    }

    fn blocked_by(
        &self,
        txn: &ReadTransaction,
        r: &Reader,
        viewer: &IdentityId,
    ) -> Result<BTreeSet<u32>, StoreError> {
        match r.person_no(viewer)? {
            Some(v) => pairs_from(txn, BLOCKS, v),
            None => Ok(BTreeSet::new()),
        }
    }

    /// One post, deleted or not.
    pub fn post(&self, id: &PostId) -> Result<Option<PostView>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        match r.row(id)? {
            Some(row) => Ok(Some(r.view(*id, &row)?)),
            None => Ok(None),
        }
    }

    /// When a post was made, if this store holds it: where a page of a
    /// timeline below it starts.
    pub fn post_time(&self, id: &PostId) -> Result<Option<u64>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        Ok(r.row(id)?.map(|row| row.at_ms))
    }

    /// Where a post lives: its document, its key there, and its author.
    pub fn post_location(
        &self,
        id: &PostId,
    ) -> Result<Option<(DocId, String, IdentityId)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        let Some(row) = r.row(id)? else {
            return Ok(None);
        };
        let docs = txn.open_table(DOCS)?;
        let doc = docs
            .get(row.doc_no)?
            .and_then(|d| DocId::from_bytes(d.value()).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("doc {}", row.doc_no)))?;
        Ok(Some((doc, row.key, r.person(row.author_no)?.identity)))
    }

    /// The feed shard that holds `reactor`'s reaction `emoji` on `post`, if any.
    pub fn reaction_doc(
        &self,
        post: &PostId,
        reactor: &IdentityId,
        emoji: &str,
    ) -> Result<Option<DocId>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        let Some(no) = r.person_no(reactor)? else {
            return Ok(None);
        };
        let Some(doc_no) = r
            .reactions()?
            .get(reaction_key(post, no, emoji).as_slice())?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let docs = txn.open_table(DOCS)?;
        Ok(docs
            .get(doc_no)?
            .and_then(|d| DocId::from_bytes(d.value()).ok()))
    }

    /// A post and every reply below it, depth first, replies oldest first.
    /// Posts of people `viewer` mutes stay, marked.
    pub fn thread(
        &self,
        id: &PostId,
        viewer: Option<&IdentityId>,
    ) -> Result<Vec<ThreadEntry>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::seen_by(&txn, viewer)?;
        let mut out = Vec::new();
        let mut stack = vec![(*id, 0u32)];
        let mut removals = Removals::new(&txn);
        while let Some((pid, depth)) = stack.pop() {
            if out.len() >= MAX_THREAD_POSTS {
                break;
            }
            let Some(row) = r.row(&pid)? else { continue };
            if removals.hide(self, &r, &row)? {
                continue;
            }
            out.push(ThreadEntry {
                depth,
                post: r.view(pid, &row)?,
            });
            for child in r.children(&pid)?.into_iter().rev() {
                stack.push((child, depth + 1));
            }
        }
        Ok(out)
    }

    /// A home timeline: the newest posts across `spaces` (the public space
    /// and a person's groups), merged newest first, each space read from
    /// its own range of the `FEED` index, so a page costs the same however
    /// many posts are stored. Leaves out whom `viewer` blocks or mutes.
    pub fn home_feed(
        &self,
        spaces: &[SpaceId],
        viewer: Option<&IdentityId>,
        before: Option<(u64, PostId)>,
        limit: usize,
    ) -> Result<Vec<PostView>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::seen_by(&txn, viewer)?;
        let blocked = match viewer {
            Some(v) => self.blocked_by(&txn, &r, v)?,
            None => BTreeSet::new(),
        };
        let space_nos = txn.open_table(SPACE_NOS)?;
        let mut nos = Vec::new();
        for space in spaces {
            if space.is_public() {
                nos.push(0);
            } else if let Some(n) = space_nos.get(&space.0)? {
                nos.push(n.value());
            }
        }
        nos.sort_unstable();
        nos.dedup();
        let feed = txn.open_table(FEED)?;
        let mut ranges = Vec::with_capacity(nos.len());
        for no in &nos {
            let lo = timeline_key(*no, 0, &PostId([0; 16]));
            let hi = match &before {
                Some((at, id)) => timeline_key(*no, *at, id),
                None => timeline_key(*no, u64::MAX, &PostId([0xff; 16])),
            };
            ranges.push(feed.range::<&[u8; 28]>(&lo..&hi)?.rev().peekable());
        }
        let mut out = Vec::with_capacity(limit.min(1000));
        let mut removals = Removals::new(&txn);
        while out.len() < limit {
            // The range whose next key is newest (time, then id).
            let mut best: Option<(usize, [u8; 24])> = None;
            for (i, range) in ranges.iter_mut().enumerate() {
                let Some(next) = range.peek() else { continue };
                let key = match next {
                    Ok((k, _)) => *k.value(),
                    Err(_) => {
                        // Surface the error through `next`.
                        range.next().transpose()?;
                        continue;
                    }
                };
                let order: [u8; 24] = key[4..].try_into().expect("fixed slice");
                if best.is_none_or(|(_, b)| order > b) {
                    best = Some((i, order));
                }
            }
            let Some((i, _)) = best else { break };
            let (k, _) = ranges[i].next().expect("peeked")?;
            let id = timeline_post(k.value());
            let Some(row) = r.row(&id)? else { continue };
            if row.deleted || blocked.contains(&row.author_no) || r.muted.contains(&row.author_no) {
                continue;
            }
            if removals.hide(self, &r, &row)? {
                continue;
            }
            out.push(r.view(id, &row)?);
        }
        Ok(out)
    }

    /// The body (salt and text) of a post's current text, if it has one
    /// and it is here: `None` for a deleted post, a post from before
    /// bodies, or a body never received.
    pub fn current_body(&self, id: &PostId) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        let Some(row) = r.row(id)? else {
            return Ok(None);
        };
        let Some(t) = row.text.filter(|_| !row.deleted) else {
            return Ok(None);
        };
        r.body(row.doc_no, t)
    }

    /// Every text a post has had, oldest first. Empty once deleted.
    pub fn history(&self, id: &PostId) -> Result<Vec<Version>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        let Some(row) = r.row(id)? else {
            return Ok(Vec::new());
        };
        let versions = txn.open_table(VERSIONS)?;
        let mut out = Vec::new();
        // The text it was created with, then every edit. (Rows written
        // before `first` existed have their first text among the versions.)
        if let Some(first) = row.first {
            let probe = PostRow {
                text: Some(first),
                ..row.clone()
            };
            if let Some(text) = r.text(&probe)? {
                out.push(Version {
                    at_ms: row.at_ms,
                    text,
                });
            }
        }
        for entry in versions.range::<&[u8; 32]>(
            &version_key(id, 0, 0, 0)..=&version_key(id, u64::MAX, u32::MAX, u32::MAX),
        )? {
            let (k, counter) = entry?;
            let (time, actor_no, seq) = split_version_key(k.value());
            let probe = PostRow {
                text: Some(TextRef {
                    actor_no,
                    seq,
                    counter: counter.value(),
                }),
                ..row.clone()
            };
            if let Some(text) = r.text(&probe)? {
                out.push(Version { at_ms: time, text });
            }
        }
        Ok(out)
    }

    /// What `viewer` knows of `id`.
    pub fn person(
        &self,
        viewer: &IdentityId,
        id: &IdentityId,
    ) -> Result<Option<PersonView>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        let Some(no) = r.person_no(id)? else {
            return Ok(None);
        };
        let viewer_no = r.person_no(viewer)?;
        Ok(Some(self.person_view(&txn, &r, viewer_no, no)?))
    }

    fn person_view(
        &self,
        txn: &ReadTransaction,
        r: &Reader,
        viewer: Option<u32>,
        no: u32,
    ) -> Result<PersonView, StoreError> {
        let row = r.person(no)?;
        let follows_t = txn.open_table(FOLLOWS)?;
        let blocks_t = txn.open_table(BLOCKS)?;
        let mutes_t = txn.open_table(MUTES)?;
        let labels_t = txn.open_table(LABELS)?;
        let by_author = txn.open_table(BY_AUTHOR)?;
        let (following, blocked, muted, labels) = match viewer {
            Some(v) => {
                let prefix = pair_key(v, no);
                let mut labels = Vec::new();
                for entry in labels_t.range(&prefix[..]..)? {
                    let (k, _) = entry?;
                    let k = k.value();
                    if !k.starts_with(&prefix) {
                        break;
                    }
                    labels.push(String::from_utf8_lossy(&k[8..]).into_owned());
                }
                (
                    follows_t.get(&prefix)?.is_some(),
                    blocks_t.get(&prefix)?.is_some(),
                    mutes_t.get(&prefix)?.is_some(),
                    labels,
                )
            }
            None => (false, false, false, Vec::new()),
        };
        let mut follows = Vec::new();
        for entry in follows_t.range::<&[u8; 8]>(&pair_key(no, 0)..=&pair_key(no, u32::MAX))? {
            let (k, _) = entry?;
            follows.push(r.person(split_pair_key(k.value()).1)?.identity);
        }
        follows.sort();
        let posts = by_author
            .range::<&[u8; 28]>(
                &timeline_key(no, 0, &PostId([0; 16]))
                    ..=&timeline_key(no, u64::MAX, &PostId([0xff; 16])),
            )?
            .count() as u64;
        Ok(PersonView {
            id: row.identity,
            name: Some(row.name).filter(|n| !n.is_empty()),
            bio: Some(row.bio).filter(|b| !b.is_empty()),
            following,
            blocked,
            muted,
            labels,
            follows,
            posts,
        })
    }

    /// Everyone the store knows except the viewer, optionally only those the
    /// viewer gave `label`; people the viewer follows come first.
    pub fn people(
        &self,
        viewer: &IdentityId,
        label: Option<&str>,
    ) -> Result<Vec<PersonView>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        let viewer_no = r.person_no(viewer)?;
        let mut out = Vec::new();
        for entry in r.people()?.iter()? {
            let (k, _) = entry?;
            let no = k.value();
            if Some(no) == viewer_no {
                continue;
            }
            let view = self.person_view(&txn, &r, viewer_no, no)?;
            if label.is_some_and(|l| !view.labels.iter().any(|x| x == l)) {
                continue;
            }
            out.push(view);
        }
        out.sort_by(|a, b| {
            b.following
                .cmp(&a.following)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// The logical content of every index, with local numbers resolved to
    /// global ids: two replicas that hold the same changes return the same
    /// lines, whatever order the changes arrived in.
    pub fn index_dump(&self) -> Result<Vec<String>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        let actors = txn.open_table(ACTORS)?;
        let actor = |no: u32| -> Result<String, StoreError> {
            Ok(actors
                .get(no)?
                .map(|a| a.value().iter().map(|b| format!("{b:02x}")).collect())
                .unwrap_or_default())
        };
        let person =
            |no: u32| -> Result<String, StoreError> { Ok(r.person(no)?.identity.to_string()) };
        let mut lines = Vec::new();
        for entry in r.posts()?.iter()? {
            let (k, v) = entry?;
            let id = PostId(*k.value());
            let row =
                PostRow::decode(v.value()).ok_or_else(|| StoreError::Corrupt("post row".into()))?;
            let view = r.view(id, &row)?;
            lines.push(format!(
                "post {id} {} {:?}",
                person(row.author_no)?,
                (
                    row.at_ms,
                    row.deleted,
                    row.edited,
                    row.reply_to,
                    row.key.as_str(),
                    &view.text,
                    &view.reactions,
                    view.replies
                )
            ));
        }
        for (name, table) in [
            ("feed", txn.open_table(FEED)?),
            ("by_author", txn.open_table(BY_AUTHOR)?),
        ] {
            for entry in table.iter()? {
                let (k, _) = entry?;
                let k = k.value();
                let prefix = u32::from_be_bytes(k[..4].try_into().expect("fixed slice"));
                let who = if name == "feed" {
                    prefix.to_string()
                } else {
                    person(prefix)?
                };
                lines.push(format!("{name} {who} {:?} {}", &k[4..12], timeline_post(k)));
            }
        }
        for entry in r.replies()?.iter()? {
            let (k, _) = entry?;
            lines.push(format!("reply {:?}", k.value()));
        }
        for entry in txn.open_table(VERSIONS)?.iter()? {
            let (k, v) = entry?;
            let (time, actor_no, seq) = split_version_key(k.value());
            lines.push(format!(
                "version {} {time} {} {seq} {}",
                PostId(k.value()[..16].try_into().expect("fixed")),
                actor(actor_no)?,
                v.value()
            ));
        }
        for entry in r.reactions()?.iter()? {
            let (k, _) = entry?;
            let k = k.value();
            let who = u32::from_be_bytes(k[16..20].try_into().expect("fixed slice"));
            lines.push(format!(
                "reaction {} {} {}",
                PostId(k[..16].try_into().expect("fixed")),
                person(who)?,
                String::from_utf8_lossy(&k[20..])
            ));
        }
        for (name, table) in [
            ("follow", txn.open_table(FOLLOWS)?),
            ("block", txn.open_table(BLOCKS)?),
            ("mute", txn.open_table(MUTES)?),
        ] {
            for entry in table.iter()? {
                let (k, _) = entry?;
                let (a, b) = split_pair_key(k.value());
                lines.push(format!("{name} {} {}", person(a)?, person(b)?));
            }
        }
        for entry in txn.open_table(LABELS)?.iter()? {
            let (k, _) = entry?;
            let k = k.value();
            let (a, b) = split_pair_key(k[..8].try_into().expect("fixed slice"));
            lines.push(format!(
                "label {} {} {}",
                person(a)?,
                person(b)?,
                String::from_utf8_lossy(&k[8..])
            ));
        }
        for entry in r.people()?.iter()? {
            let (_, v) = entry?;
            let p = PersonRow::decode(v.value())
                .ok_or_else(|| StoreError::Corrupt("person row".into()))?;
            lines.push(format!("person {} {:?} {:?}", p.identity, p.name, p.bio));
        }
        lines.sort();
        Ok(lines)
    }
}

/// The second person of every pair in `table` (`BLOCKS`, `MUTES`) whose
/// first is `owner`.
fn pairs_from(
    txn: &ReadTransaction,
    table: redb::TableDefinition<&[u8; 8], ()>,
    owner: u32,
) -> Result<BTreeSet<u32>, StoreError> {
    txn.open_table(table)?
        .range::<&[u8; 8]>(&pair_key(owner, 0)..=&pair_key(owner, u32::MAX))?
        .map(|e| {
            e.map(|(k, _)| split_pair_key(k.value()).1)
                .map_err(StoreError::from)
        })
        .collect()
}

type SpacesTable = ReadOnlyTable<u32, &'static [u8; 32]>;
type ActorsTable = ReadOnlyTable<u32, &'static [u8]>;

/// Finds the group posts a query hides: those written by a former member
/// after the cutoff of their removal. The store refuses such changes once it
/// knows of the removal; one that arrived before the removal did is hidden
/// here, so that every member shows the same posts whatever the arrival
/// order. Each group's state is looked up once per query, not once per post.
struct Removals<'t> {
    txn: &'t ReadTransaction,
    /// `SPACES` and `ACTORS`, opened at the first group post.
    tables: Option<(SpacesTable, ActorsTable)>,
    groups: HashMap<u32, Option<Arc<GroupState>>>,
}

impl<'t> Removals<'t> {
    fn new(txn: &'t ReadTransaction) -> Self {
        Removals {
            txn,
            tables: None,
            groups: HashMap::new(),
        }
    }

    fn hide(&mut self, store: &Store, r: &Reader, row: &PostRow) -> Result<bool, StoreError> {
        if row.space_no == 0 {
            return Ok(false);
        }
        if self.tables.is_none() {
            self.tables = Some((self.txn.open_table(SPACES)?, self.txn.open_table(ACTORS)?));
        }
        let (spaces, actors) = self.tables.as_ref().expect("opened above");
        let group = match self.groups.get(&row.space_no) {
            Some(g) => g.clone(),
            None => {
                let space = spaces.get(row.space_no)?.map(|v| SpaceId(*v.value()));
                let group = match space {
                    Some(space) => store.group(&space)?,
                    None => None,
                };
                self.groups.insert(row.space_no, group.clone());
                group
            }
        };
        let Some(group) = group else {
            return Ok(false);
        };
        if group.removed.is_empty() {
            return Ok(false);
        }
        let author = r.person(row.author_no)?.identity;
        let Some(removal) = group.removed.get(&author) else {
            return Ok(false);
        };
        // The change that created the post.
        let Some(made) = row.first.or(row.text) else {
            return Ok(false);
        };
        let actor = actors
            .get(made.actor_no)?
            .map(|v| v.value().to_vec())
            .unwrap_or_default();
        Ok(removal
            .cutoff
            .get(&actor)
            .is_none_or(|last| made.seq > *last))
    }
}
