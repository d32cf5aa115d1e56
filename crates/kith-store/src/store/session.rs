//! A node's session, and the actor suffix it signs with: after a crashed
//! session the next opener takes a new suffix, so that no sequence number
//! a peer may have seen is signed twice.

use kith_core::DeviceId;

use crate::error::StoreError;
use crate::tables::*;

use super::*;

impl Store {
    /// Starts a session in which local commits are not durable until
    /// [`Store::sync_local`] (or [`Store::flush`]), so that a node can publish
    /// a change while its disk write is still under way (and acknowledge it
    /// only after the sync).
    /// A change published and then lost in a crash must never have its
    /// sequence number reused by a different change (peers would see
    /// equivocation), so the session is recorded durably, and whoever opens
    /// the store next and finds it still open gives the store a new actor
    /// suffix: a fresh sequence of numbers.
    pub fn begin_session(&mut self) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(META)?
            .insert(META_SESSION, [1u8].as_slice())?;
        txn.commit()?;
        self.session = true;
        Ok(())
    }

    /// Whether opening found a session left open by a crash (and so chose a
    /// new actor suffix).
    pub fn recovered_from_crash(&self) -> bool {
        self.recovered
    }

    /// Makes everything durable and ends the session (a clean stop).
    pub fn end_session(&mut self) -> Result<(), StoreError> {
        if !self.session {
            return Ok(());
        }
        let txn = self.db()?.begin_write()?;
        txn.open_table(META)?.remove(META_SESSION)?;
        txn.commit()?;
        if !self.journal_owed {
            self.journal.clear()?;
        }
        self.unflushed = false;
        self.session = false;
        Ok(())
    }

    /// The random suffix of this store's actor ids.
    pub fn actor_suffix(&self) -> &[u8] {
        &self.suffix
    }

    /// The automerge actor id this device writes with in this store.
    pub fn actor_for(&self, device: &DeviceId) -> automerge::ActorId {
        kith_core::actor_id(device, &self.suffix)
    }
}

/// Chooses a new random actor suffix and records it: from now on this
/// store's changes start a fresh sequence of numbers.
pub(super) fn new_actor_suffix(meta: &mut MetaWrite<'_>) -> Result<Vec<u8>, StoreError> {
    let suffix = kith_core::keys::random_bytes::<ACTOR_SUFFIX_LEN>()?.to_vec();
    meta.insert(META_ACTOR_SUFFIX, suffix.as_slice())?;
    Ok(suffix)
}
