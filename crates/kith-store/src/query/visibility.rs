//! Group visibility: which group posts a read hides.

use std::collections::HashMap;
use std::sync::Arc;

use kith_core::SpaceId;
use kith_core::group::GroupState;
use redb::ReadTransaction;

use super::reader::Reader;
use crate::error::StoreError;
use crate::rows::*;
use crate::store::Store;
use crate::tables::*;

/// Finds the group posts a query hides: those written by a former member
/// after the cutoff of their removal. The store refuses such changes once it
/// knows of the removal; one that arrived before the removal did is hidden
/// here, so that every member shows the same posts whatever the arrival
/// order. Each group's state is looked up once per query, not once per post.
pub(super) struct Removals<'t> {
    txn: &'t ReadTransaction,
    /// `SPACES` and `ACTORS`, opened at the first group post.
    tables: Option<(SpacesRead, ActorsRead)>,
    groups: HashMap<u32, Option<Arc<GroupState>>>,
}

impl<'t> Removals<'t> {
    pub(super) fn new(txn: &'t ReadTransaction) -> Self {
        Removals {
            txn,
            tables: None,
            groups: HashMap::new(),
        }
    }

    pub(super) fn hide(
        &mut self,
        store: &Store,
        r: &Reader,
        row: &PostRow,
    ) -> Result<bool, StoreError> {
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
