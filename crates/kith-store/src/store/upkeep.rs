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

    /// Seals everything, then compacts if more than two thirds of a file of
    /// at least `min_file_bytes` is free space (redb reuses freed pages but
    /// never gives them back). A node does this when it starts. Returns the
    /// file's size before and after, if it compacted.
    ///
    /// Measuring the free space walks every page of the file (redb keeps no
    /// running count), which on a large store would cost every start a read
    /// of the whole file. So it is measured only when something may have
    /// freed much: a start that sealed changes, or a file grown by a quarter
    /// since the last measurement (or never measured). Not at half free:
    /// redb doubles a compacted file at its next write, and compacting that
    /// free half would only have it doubled again.
    pub fn tidy(&mut self, min_file_bytes: u64) -> Result<Option<(u64, u64)>, StoreError> {
        let mut sealed = 0;
        loop {
            let n = self.seal(1024)?;
            if n == 0 {
                break;
            }
            sealed += n;
        }
        let path = self.path.clone();
        let file_len = || std::fs::metadata(&path).map_or(0, |m| m.len());
        let before = file_len();
        if before < min_file_bytes {
            return Ok(None);
        }
        let checked = self.tidy_checked()?;
        if sealed == 0 && checked.is_some_and(|len| before <= len + len / 4) {
            return Ok(None);
        }
        // No room to compact into: not worth reading the file to find out.
        if self.ensure_space().is_err() {
            return Ok(None);
        }
        let used = {
            let stats = self.db()?.begin_write()?.stats()?;
            stats.allocated_pages() * stats.page_size() as u64
        };
        if used * 3 > before {
            self.set_tidy_checked(before)?;
            return Ok(None);
        }
        self.db_mut()?.compact()?;
        let after = file_len();
        self.set_tidy_checked(after)?;
        Ok(Some((before, after)))
    }

    fn tidy_checked(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta
            .get(META_TIDY_CHECKED)?
            .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
            .map(u64::from_be_bytes))
    }

    fn set_tidy_checked(&mut self, len: u64) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(META)?
            .insert(META_TIDY_CHECKED, len.to_be_bytes().as_slice())?;
        txn.commit()?;
        Ok(())
    }
}
