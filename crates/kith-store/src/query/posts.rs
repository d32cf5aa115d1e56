//! One post: its view, where it lives, its thread, its current body and
//! every text it has had.

use kith_core::{DocId, IdentityId, PostId};
use redb::ReadableDatabase;

use super::*;
use crate::error::StoreError;
use crate::records::{Post, PostRef, PostVersion, ThreadPost};
use crate::rows::*;
use crate::store::Store;
use crate::tables::*;

impl Store {
    /// One post, deleted or not.
    pub fn post(&self, id: &PostId) -> Result<Option<Post>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        match r.row(id)? {
            Some(row) => Ok(Some(r.view(*id, &row)?)),
            None => Ok(None),
        }
    }

    /// What acting on a post needs to know of it, from its index row alone:
    /// where it lives, who wrote it, when, and whether it is deleted. For
    /// replies, edits, reactions and paging, which never show the post.
    pub fn post_ref(&self, id: &PostId) -> Result<Option<PostRef>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        let Some(row) = r.row(id)? else {
            return Ok(None);
        };
        let doc = r.doc_id(row.doc_no)?;
        Ok(Some(PostRef {
            doc,
            author: r.person(row.author_no)?.identity,
            at_ms: row.at_ms,
            deleted: row.deleted,
            key: row.key,
        }))
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
        r.doc_id(doc_no).map(Some)
    }

    /// A post and every reply below it, depth first, replies oldest first.
    /// Posts of people `viewer` mutes stay, marked.
    pub fn thread(
        &self,
        id: &PostId,
        viewer: Option<&IdentityId>,
    ) -> Result<Vec<ThreadPost>, StoreError> {
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
            out.push(ThreadPost {
                depth,
                post: r.view(pid, &row)?,
            });
            for child in r.children(&pid)?.into_iter().rev() {
                stack.push((child, depth + 1));
            }
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
    pub fn history(&self, id: &PostId) -> Result<Vec<PostVersion>, StoreError> {
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
                out.push(PostVersion {
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
                out.push(PostVersion { at_ms: time, text });
            }
        }
        Ok(out)
    }
}
