//! Keeping the file small: sealing stored history into compressed blocks,
//! and compacting.

use crate::changelog::{self};
use crate::error::StoreError;
use crate::tx::Writer;

use super::*;

impl Store {
    /// Seals at most `limit` full runs of stored changes into compressed
    /// blocks (see `changelog`); returns how many. A node calls this while
    /// idle, a little at a time, so writes never wait for it.
    pub fn seal(&mut self, limit: usize) -> Result<usize, StoreError> {
        // Sealing is maintenance: it waits for the disk to have room.
        if !self.sealing_due || self.ensure_space().is_err() {
            return Ok(0);
        }
        let txn = self.db()?.begin_write()?;
        let sealed = {
            let mut w = Writer::open(&txn)?;
            changelog::seal(&mut w, limit)?
        };
        if sealed > 0 {
            txn.commit()?;
        }
        // Fewer runs than asked for: everything that can be sealed is.
        self.sealing_due = sealed >= limit;
        Ok(sealed)
    }

    /// Seals every full run of changes, then rewrites the file to give back
    /// the space of freed pages (redb does not shrink it on its own). Slow:
    /// for maintenance, not the hot path. Returns whether the file shrank.
    pub fn compact(&mut self) -> Result<bool, StoreError> {
        while self.seal(1024)? > 0 {}
        Ok(self.db_mut()?.compact()?)
    }

    /// Seals everything, then compacts if more than half of a file of at
    /// least `min_file_bytes` is free space (redb reuses freed pages but
    /// never gives them back). A node does this when it starts. Returns the
    /// file's size before and after, if it compacted.
    pub fn tidy(&mut self, min_file_bytes: u64) -> Result<Option<(u64, u64)>, StoreError> {
        while self.seal(1024)? > 0 {}
        let path = self.path.clone();
        let file_len = || std::fs::metadata(&path).map_or(0, |m| m.len());
        let before = file_len();
        let used = {
            let stats = self.db()?.begin_write()?.stats()?;
            stats.allocated_pages() * stats.page_size() as u64
        };
        if before < min_file_bytes || used * 2 > before || self.ensure_space().is_err() {
            return Ok(None);
        }
        self.db_mut()?.compact()?;
        Ok(Some((before, file_len())))
    }
}
