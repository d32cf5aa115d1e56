//! The tables of one write transaction, opened once, and the interning of
//! ids into the short local numbers that keys use.

use kith_core::{DocId, IdentityId, SpaceId};
use redb::{ReadableTable, Table, WriteTransaction};

use crate::changelog::Rows;
use crate::error::StoreError;
use crate::rows::PersonRow;
use crate::tables::*;

/// Change rows as seen from inside a write transaction.
pub(crate) type WriteRows<'a, 't> = Rows<
    'a,
    Table<'t, &'static [u8; 12], &'static [u8]>,
    Table<'t, &'static [u8; 13], &'static [u8]>,
>;

/// Every table, open for writing in one transaction.
pub(crate) struct Writer<'t> {
    pub docs: Table<'t, u32, &'static [u8]>,
    pub doc_nos: Table<'t, &'static [u8], u32>,
    pub doc_sizes: Table<'t, u32, u32>,
    pub actors: Table<'t, u32, &'static [u8]>,
    pub actor_nos: Table<'t, &'static [u8], u32>,
    pub spaces: Table<'t, u32, &'static [u8; 32]>,
    pub space_nos: Table<'t, &'static [u8; 32], u32>,
    pub person_nos: Table<'t, &'static [u8; 32], u32>,
    pub people: Table<'t, u32, &'static [u8]>,
    pub devices: Table<'t, &'static [u8; 32], &'static [u8]>,
    pub changes: Table<'t, &'static [u8; 12], &'static [u8]>,
    pub sealed: Table<'t, &'static [u8; 13], &'static [u8]>,
    pub clocks: Table<'t, &'static [u8; 8], u32>,
    pub pending: Table<'t, &'static [u8; 12], ()>,
    pub quarantine: Table<'t, &'static [u8; 32], &'static [u8]>,
    pub posts: Table<'t, &'static [u8; 16], &'static [u8]>,
    pub feed: Table<'t, &'static [u8; 28], ()>,
    pub by_author: Table<'t, &'static [u8; 28], ()>,
    pub replies: Table<'t, &'static [u8; 40], ()>,
    pub versions: Table<'t, &'static [u8; 32], u64>,
    pub reactions: Table<'t, &'static [u8], u32>,
    pub follows: Table<'t, &'static [u8; 8], ()>,
    pub blocks: Table<'t, &'static [u8; 8], ()>,
    pub labels: Table<'t, &'static [u8], ()>,
    /// What this transaction changed in the indexes (kept if it commits).
    pub changed: Vec<crate::changed::Changed>,
}

impl<'t> Writer<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Writer {
            docs: txn.open_table(DOCS)?,
            doc_nos: txn.open_table(DOC_NOS)?,
            doc_sizes: txn.open_table(DOC_SIZES)?,
            actors: txn.open_table(ACTORS)?,
            actor_nos: txn.open_table(ACTOR_NOS)?,
            spaces: txn.open_table(SPACES)?,
            space_nos: txn.open_table(SPACE_NOS)?,
            person_nos: txn.open_table(PERSON_NOS)?,
            people: txn.open_table(PEOPLE)?,
            devices: txn.open_table(DEVICES)?,
            changes: txn.open_table(CHANGES)?,
            sealed: txn.open_table(SEALED)?,
            clocks: txn.open_table(CLOCKS)?,
            pending: txn.open_table(PENDING)?,
            quarantine: txn.open_table(QUARANTINE)?,
            posts: txn.open_table(POSTS)?,
            feed: txn.open_table(FEED)?,
            by_author: txn.open_table(BY_AUTHOR)?,
            replies: txn.open_table(REPLIES)?,
            versions: txn.open_table(VERSIONS)?,
            reactions: txn.open_table(REACTIONS)?,
            follows: txn.open_table(FOLLOWS)?,
            blocks: txn.open_table(BLOCKS)?,
            labels: txn.open_table(LABELS)?,
            changed: Vec::new(),
        })
    }

    /// Stored change rows, wherever they live.
    pub fn rows(&self) -> WriteRows<'_, 't> {
        Rows {
            changes: &self.changes,
            sealed: &self.sealed,
        }
    }

    pub fn intern_doc(&mut self, id: &DocId) -> Result<u32, StoreError> {
        let bytes = id.to_bytes();
        if let Some(n) = self.doc_nos.get(&bytes[..])? {
            return Ok(n.value());
        }
        let n = self.docs.last()?.map_or(0, |(k, _)| k.value() + 1);
        self.docs.insert(n, &bytes[..])?;
        self.doc_nos.insert(&bytes[..], n)?;
        Ok(n)
    }

    pub fn intern_actor(&mut self, actor: &[u8]) -> Result<u32, StoreError> {
        if let Some(n) = self.actor_nos.get(actor)? {
            return Ok(n.value());
        }
        let n = self.actors.last()?.map_or(0, |(k, _)| k.value() + 1);
        self.actors.insert(n, actor)?;
        self.actor_nos.insert(actor, n)?;
        Ok(n)
    }

    pub fn intern_space(&mut self, space: &SpaceId) -> Result<u32, StoreError> {
        if space.is_public() {
            return Ok(0);
        }
        if let Some(n) = self.space_nos.get(&space.0)? {
            return Ok(n.value());
        }
        let n = self.spaces.last()?.map_or(1, |(k, _)| k.value() + 1);
        self.spaces.insert(n, &space.0)?;
        self.space_nos.insert(&space.0, n)?;
        Ok(n)
    }

    pub fn intern_person(&mut self, id: &IdentityId) -> Result<u32, StoreError> {
        if let Some(n) = self.person_nos.get(&id.0)? {
            return Ok(n.value());
        }
        let n = self.people.last()?.map_or(0, |(k, _)| k.value() + 1);
        let row = PersonRow {
            identity: *id,
            name: String::new(),
            bio: String::new(),
        };
        self.people.insert(n, row.encode().as_slice())?;
        self.person_nos.insert(&id.0, n)?;
        Ok(n)
    }
}
