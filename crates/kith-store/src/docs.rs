//! Loaded automerge documents, kept in a small bounded cache.
//!
//! Documents are rebuilt from their stored changes when first needed and
//! evicted least-recently-used first: a start-up never loads every document
//! (DESIGN.md decision 5), and feeds are sharded so that no single document
//! grows without bound.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::{AutoCommit, Change};

use crate::changelog::Rows;
use crate::error::StoreError;
use crate::tables::{ChangesTable, SealedTable};

/// How many documents stay loaded at once.
pub const DOC_CACHE_CAPACITY: usize = 64;

/// Parses a stored or received change, containing any panic inside automerge.
pub fn parse_change(bytes: &[u8]) -> Result<Change, String> {
    match catch_unwind(AssertUnwindSafe(|| Change::from_bytes(bytes.to_vec()))) {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("automerge panicked while reading the change".to_owned()),
    }
}

/// Applies changes to a document, containing any panic inside automerge.
pub fn apply(doc: &mut AutoCommit, changes: Vec<Change>) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| doc.apply_changes(changes))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("automerge panicked while applying the change".to_owned()),
    }
}

/// Loads the document `doc_no` from its stored changes.
pub fn load<C, S>(rows: Rows<'_, C, S>, doc_no: u32) -> Result<AutoCommit, StoreError>
where
    C: ChangesTable,
    S: SealedTable,
{
    let mut parsed = Vec::new();
    rows.for_each_in_doc(doc_no, |actor_no, seq, value| {
        let change = value
            .get(64..)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("change {doc_no}/{actor_no}/{seq} is too short"))
            })
            .and_then(|bytes| parse_change(bytes).map_err(StoreError::Corrupt))?;
        parsed.push(change);
        Ok(())
    })?;
    let mut doc = AutoCommit::new();
    apply(&mut doc, parsed).map_err(|e| StoreError::Corrupt(format!("document {doc_no}: {e}")))?;
    Ok(doc)
}

/// A bounded cache of loaded documents by `doc_no`.
#[derive(Default)]
pub struct DocCache {
    docs: HashMap<u32, AutoCommit>,
    order: VecDeque<u32>,
}

impl std::fmt::Debug for DocCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocCache")
            .field("loaded", &self.docs.len())
            .finish()
    }
}

impl DocCache {
    /// The document `doc_no`, loading it from `rows` if needed.
    pub fn get<C, S>(
        &mut self,
        rows: Rows<'_, C, S>,
        doc_no: u32,
    ) -> Result<&mut AutoCommit, StoreError>
    where
        C: ChangesTable,
        S: SealedTable,
    {
        if self.docs.contains_key(&doc_no) {
            self.order.retain(|n| *n != doc_no);
        } else {
            let doc = load(rows, doc_no)?;
            while self.docs.len() >= DOC_CACHE_CAPACITY {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                self.docs.remove(&oldest);
            }
            self.docs.insert(doc_no, doc);
        }
        self.order.push_back(doc_no);
        Ok(self.docs.get_mut(&doc_no).expect("inserted above"))
    }

    /// Forgets a document whose in-memory state may no longer match the store
    /// (a transaction touching it failed); it is reloaded on next use.
    pub fn evict(&mut self, doc_no: u32) {
        self.docs.remove(&doc_no);
        self.order.retain(|n| *n != doc_no);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.docs.clear();
        self.order.clear();
    }
}
