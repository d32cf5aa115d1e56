//! People as a viewer knows them: one person, and the lists of those
//! followed or labelled.

use kith_core::{IdentityId, PostId};
use redb::{ReadTransaction, ReadableDatabase, ReadableTable};

use super::*;
use crate::error::StoreError;
use crate::records::Person;
use crate::rows::*;
use crate::store::Store;
use crate::tables::*;

impl Store {
    /// What `viewer` knows of `id`.
    pub fn person(
        &self,
        viewer: &IdentityId,
        id: &IdentityId,
    ) -> Result<Option<Person>, StoreError> {
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
    ) -> Result<Person, StoreError> {
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
        Ok(Person {
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
    ) -> Result<Vec<Person>, StoreError> {
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
}
