//! The journal of local changes: what makes a user's action durable.
//!
//! A durable redb commit writes every page its copy-on-write trees touched
//! and waits for them, so it costs more the bigger the store: with 100,000
//! posts, a post's commit writes three levels of six trees. Instead, a
//! local change is committed to redb without waiting for the disk, and its
//! signed bytes are appended to this file and synced: one small sequential
//! write, whatever the store holds. A durable redb commit (a checkpoint,
//! [`crate::Store::flush`]) then makes the journal redundant, and it is
//! emptied. Opening a store replays what a crash left in the journal
//! through the same checks as any other change; a change the store holds
//! already is a duplicate, and ignored.
//!
//! A record is `u32 length ‖ u32 CRC-32 ‖ SignedChange protobuf`, lengths
//! little-endian. Reading stops at the first record that is cut short or
//! fails its checksum: a crash in the middle of an append, which nobody was
//! told had succeeded.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use kith_core::SignedChange;

/// Bytes of journal after which a local commit also checkpoints, so that a
/// replay after a crash stays short and the redb file's unreclaimed pages
/// (freed only by a durable commit) stay few.
pub const CHECKPOINT_BYTES: u64 = 1 << 20;

/// Largest record a journal holds; longer means a damaged length field.
const MAX_RECORD: usize = 16 << 20;

/// The open journal file, positioned at its end.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    len: u64,
    /// Appended since the last sync.
    unsynced: bool,
}

/// Why a journal could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads the changes it
    /// holds; a damaged tail is cut off.
    pub fn open(path: &Path) -> Result<(Journal, Vec<SignedChange>), JournalError> {
        let err = |source| JournalError {
            path: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(err)?;
        let (changes, good) = read_records(&bytes);
        if good < bytes.len() {
            tracing::warn!(
                journal = %path.display(),
                dropped = bytes.len() - good,
                "the journal ends in a record cut short by a crash; it was never acknowledged"
            );
            file.set_len(good as u64).map_err(err)?;
        }
        file.seek(SeekFrom::Start(good as u64)).map_err(err)?;
        let journal = Journal {
            file,
            path: path.to_owned(),
            len: good as u64,
            unsynced: false,
        };
        Ok((journal, changes))
    }

    /// Appends `change`; durable after the next [`Journal::sync`].
    pub fn append(&mut self, change: &SignedChange) -> Result<(), JournalError> {
        let payload = change.encode();
        let mut crc = flate2::Crc::new();
        crc.update(&payload);
        let mut record = Vec::with_capacity(8 + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc.sum().to_le_bytes());
        record.extend_from_slice(&payload);
        if let Err(e) = self.file.write_all(&record) {
            // Part of the record may be written: cut it off, so the next
            // record does not follow torn bytes (which would end the journal
            // for a reader).
            let _ = self.truncate(self.len);
            return Err(self.err(e));
        }
        self.len += record.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    /// Takes back every record after the first `len` bytes (as
    /// [`Journal::bytes`] reported them before those were appended).
    pub fn truncate(&mut self, len: u64) -> Result<(), JournalError> {
        self.file.set_len(len).map_err(|e| self.err(e))?;
        self.file
            .seek(SeekFrom::Start(len))
            .map_err(|e| self.err(e))?;
        self.len = len;
        Ok(())
    }

    /// Waits until every appended record is on disk.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.unsynced {
            self.file.sync_data().map_err(|e| self.err(e))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Empties the journal, once a durable commit holds everything in it.
    /// Not synced: should the emptying be lost, the records replay as
    /// duplicates.
    pub fn clear(&mut self) -> Result<(), JournalError> {
        if self.len > 0 {
            self.file.set_len(0).map_err(|e| self.err(e))?;
            self.file
                .seek(SeekFrom::Start(0))
                .map_err(|e| self.err(e))?;
            self.len = 0;
        }
        self.unsynced = false;
        Ok(())
    }

    /// Bytes of records held.
    pub fn bytes(&self) -> u64 {
        self.len
    }

    fn err(&self, source: std::io::Error) -> JournalError {
        JournalError {
            path: self.path.display().to_string(),
            source,
        }
    }
}

/// The changes of every whole record, and how many bytes they span.
fn read_records(bytes: &[u8]) -> (Vec<SignedChange>, usize) {
    let mut changes = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let sum = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len > MAX_RECORD {
            break;
        }
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        let mut crc = flate2::Crc::new();
        crc.update(payload);
        if crc.sum() != sum {
            break;
        }
        let Ok(change) = SignedChange::decode(payload) else {
            break;
        };
        changes.push(change);
        at += 8 + len;
    }
    (changes, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_core::{DocId, IdentityKey, SpaceId};

    fn change(n: u8) -> SignedChange {
        let identity = IdentityKey::from_secret_bytes(&[n; 32]);
        SignedChange {
            doc: DocId::feed(identity.id(), SpaceId::PUBLIC, 0),
            change: vec![n; 40 + n as usize],
            device: kith_core::DeviceId(identity.id().0),
            signature: [n; 64],
        }
    }

    #[test]
    fn records_survive_a_reopen_and_a_clear_empties_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut j, found) = Journal::open(&path).unwrap();
        assert!(found.is_empty());
        j.append(&change(1)).unwrap();
        j.append(&change(2)).unwrap();
        j.sync().unwrap();
        drop(j);
        let (mut j, found) = Journal::open(&path).unwrap();
        assert_eq!(found, vec![change(1), change(2)]);
        j.append(&change(3)).unwrap();
        drop(j);
        let (mut j, found) = Journal::open(&path).unwrap();
        assert_eq!(found, vec![change(1), change(2), change(3)]);
        j.clear().unwrap();
        assert_eq!(j.bytes(), 0);
        j.append(&change(4)).unwrap();
        drop(j);
        let (_, found) = Journal::open(&path).unwrap();
        assert_eq!(found, vec![change(4)]);
    }

    #[test]
    fn a_torn_or_damaged_tail_is_cut_off_and_appends_follow_the_good_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut j, _) = Journal::open(&path).unwrap();
        j.append(&change(1)).unwrap();
        j.append(&change(2)).unwrap();
        drop(j);
        let whole = std::fs::read(&path).unwrap();
        // Every cut inside the second record keeps exactly the first.
        let first = 8 + change(1).encode().len();
        for cut in first..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let (_, found) = Journal::open(&path).unwrap();
            assert_eq!(found, vec![change(1)], "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), first as u64);
        }
        // A flipped byte in the second record's payload fails its checksum.
        let mut damaged = whole.clone();
        *damaged.last_mut().unwrap() ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        let (mut j, found) = Journal::open(&path).unwrap();
        assert_eq!(found, vec![change(1)]);
        j.append(&change(3)).unwrap();
        drop(j);
        let (_, found) = Journal::open(&path).unwrap();
        assert_eq!(found, vec![change(1), change(3)]);
    }
}
