//! Timelines: a feed of one space (and of one author), and the home
//! timeline of every space this identity reads, newest first, without
//! whom the viewer blocks (or mutes).

use std::collections::BTreeSet;

use kith_core::{IdentityId, PostId, SpaceId};
use redb::{ReadTransaction, ReadableDatabase};

use super::*;
use crate::error::StoreError;
use crate::records::Post;
use crate::rows::*;
use crate::store::Store;
use crate::tables::*;

impl Store {
    /// Newest posts first, from the FEED (or BY_AUTHOR) index.
    pub fn feed(&self, q: &FeedQuery) -> Result<Vec<Post>, StoreError> {
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
    ) -> Result<Vec<Post>, StoreError> {
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
}
