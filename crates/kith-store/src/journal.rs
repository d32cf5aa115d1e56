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
//! little-endian. A record that is cut short or fails its checksum is
//! skipped, and reading goes on at the next offset where a whole record
//! checks out: a flipped byte costs the one record it hit, never the
//! records after it. Whenever anything is skipped, the original file is
//! first kept aside (`kith.journal.damaged-…`) and only then is the journal
//! rewritten with the records that could be read. A skipped change cannot
//! be told apart from an acknowledged one, so nobody is told it was not:
//! the report says what was skipped, and sync fetches a change back from
//! any peer that has it (the store's own documents are among its interests).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use kith_core::SignedChange;

/// Bytes of journal after which a local commit also checkpoints, so that a
/// replay after a crash stays short and the redb file's unreclaimed pages
/// (freed only by a durable commit) stay few.
pub const CHECKPOINT_BYTES: u64 = 1 << 20;

/// Largest record a journal holds (the protocol's limit for one signed
/// change); a longer length field is damage.
const MAX_RECORD: usize = kith_core::signed::MAX_SIGNED_CHANGE_BYTES;

/// Bytes of a record's header: length and checksum.
const HEADER: usize = 8;

/// The open journal file, positioned at its end.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    len: u64,
    /// Appended since the last sync.
    unsynced: bool,
}

/// What opening a journal found in it.
#[derive(Debug)]
pub struct Opened {
    pub journal: Journal,
    /// The changes of every record that could be read, in order.
    pub changes: Vec<SignedChange>,
    /// What could not be read, if anything.
    pub damage: Option<JournalDamage>,
}

/// Parts of a journal that could not be read, and where the original is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalDamage {
    /// Where the file was kept, byte for byte, before it was rewritten.
    pub kept_at: PathBuf,
    /// The unreadable byte ranges, as `(offset, length)`.
    pub skipped: Vec<(u64, u64)>,
    /// Whether readable records follow the first unreadable range (damage
    /// inside the file rather than a write a crash cut short at its end).
    pub inside: bool,
    /// Records that were read but hold a change the store refuses (damage
    /// their checksum could not see); they were left out.
    pub refused: usize,
}

impl std::fmt::Display for JournalDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        let mut parts = Vec::new();
        if !self.skipped.is_empty() {
            let bytes: u64 = self.skipped.iter().map(|(_, n)| n).sum();
            let places = self.skipped.len() as u64;
            parts.push(format!(
                "{bytes} unreadable byte{} in {places} place{}",
                plural(bytes),
                plural(places)
            ));
        }
        if self.refused > 0 {
            parts.push(format!(
                "{} record{} whose change does not verify",
                self.refused,
                plural(self.refused as u64)
            ));
        }
        write!(
            f,
            "{} {}; the original file is kept at {}",
            parts.join(" and "),
            if self.inside {
                "(damage inside the file; the records after it were kept, and a change lost with it is fetched back from peers that have it)"
            } else {
                "(at its end: most likely a write a crash cut short, before it was acknowledged)"
            },
            self.kept_at.display()
        )
    }
}

/// Why a journal could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl JournalError {
    /// Whether the disk (or the user's quota) is full.
    pub fn is_disk_full(&self) -> bool {
        crate::error::is_disk_full(&self.source)
    }
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads the changes it
    /// holds. Unreadable parts are skipped; the file is then kept aside and
    /// rewritten with what could be read (see the module's documentation).
    /// Should keeping it aside fail, nothing is rewritten and this fails.
    pub fn open(path: &Path) -> Result<Opened, JournalError> {
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
        let read = read_records(&bytes);
        let mut damage = None;
        let mut len = bytes.len() as u64;
        if !read.skipped.is_empty() {
            let kept_at = keep_aside(path, &bytes).map_err(err)?;
            let good: Vec<u8> = read
                .spans
                .iter()
                .flat_map(|&(at, n)| &bytes[at..at + n])
                .copied()
                .collect();
            drop(file);
            file = rewrite(path, &good).map_err(err)?;
            len = good.len() as u64;
            let last_good_end = read.spans.last().map_or(0, |&(at, n)| at + n);
            let found = JournalDamage {
                kept_at,
                skipped: read
                    .skipped
                    .iter()
                    .map(|&(at, n)| (at as u64, n as u64))
                    .collect(),
                inside: read.skipped[0].0 < last_good_end,
                refused: 0,
            };
            tracing::warn!(journal = %path.display(), "{found}");
            damage = Some(found);
        }
        file.seek(SeekFrom::Start(len)).map_err(err)?;
        let journal = Journal {
            file,
            path: path.to_owned(),
            len,
            unsynced: false,
        };
        Ok(Opened {
            journal,
            changes: read.changes,
            damage,
        })
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

    /// Keeps a copy of the journal as it stands beside it
    /// (`….damaged-…`), durably; returns where.
    pub fn keep_aside(&mut self) -> Result<PathBuf, JournalError> {
        let mut bytes = Vec::new();
        let read = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_end(&mut bytes))
            .and_then(|_| self.file.seek(SeekFrom::Start(self.len)));
        read.map_err(|e| self.err(e))?;
        keep_aside(&self.path, &bytes).map_err(|e| self.err(e))
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

/// How many records `bytes` holds, and how many bytes are unreadable.
pub(crate) fn scan(bytes: &[u8]) -> (usize, usize) {
    let read = read_records(bytes);
    let skipped = read.skipped.iter().map(|(_, n)| n).sum();
    (read.changes.len(), skipped)
}

/// What a scan of journal bytes found.
#[derive(Debug, Default)]
struct Records {
    changes: Vec<SignedChange>,
    /// Each good record's `(offset, length)`, header included.
    spans: Vec<(usize, usize)>,
    /// Each unreadable range's `(offset, length)`.
    skipped: Vec<(usize, usize)>,
}

/// Reads every whole record; past an unreadable one, looks for the next
/// offset where a record checks out (length within bounds, checksum and
/// protobuf good). A false match needs a 32-bit checksum to agree by chance
/// and the bytes to decode as a signed change.
fn read_records(bytes: &[u8]) -> Records {
    let mut out = Records::default();
    let mut at = 0;
    let mut bad_from = None;
    while at < bytes.len() {
        match record_at(bytes, at) {
            Some((change, len)) => {
                if let Some(from) = bad_from.take() {
                    out.skipped.push((from, at - from));
                }
                out.changes.push(change);
                out.spans.push((at, len));
                at += len;
            }
            None => {
                bad_from.get_or_insert(at);
                at += 1;
            }
        }
    }
    if let Some(from) = bad_from {
        out.skipped.push((from, bytes.len() - from));
    }
    out
}

/// The record starting at `at`, if a whole, good one does, and its length.
fn record_at(bytes: &[u8], at: usize) -> Option<(SignedChange, usize)> {
    let header = bytes.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let sum = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(at + HEADER..at + HEADER + len)?;
    let mut crc = flate2::Crc::new();
    crc.update(payload);
    if crc.sum() != sum {
        return None;
    }
    let change = SignedChange::decode(payload).ok()?;
    Some((change, HEADER + len))
}

/// Copies the journal's bytes to a new `….damaged-<unix seconds>[-n]` file
/// beside it, durably, and returns its path.
fn keep_aside(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = path
        .file_name()
        .map_or_else(|| "journal".into(), |n| n.to_string_lossy().into_owned());
    for n in 0..1000 {
        let suffix = if n == 0 {
            format!("{name}.damaged-{secs}")
        } else {
            format!("{name}.damaged-{secs}-{n}")
        };
        let aside = path.with_file_name(suffix);
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&aside) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            // A partial copy is no copy: say so by removing it.
            let _ = std::fs::remove_file(&aside);
            return Err(e);
        }
        sync_dir(path)?;
        return Ok(aside);
    }
    Err(std::io::Error::other(
        "no free name to keep the damaged journal under",
    ))
}

/// Replaces the journal with `good`, atomically: a crash leaves either the
/// old file or the new one.
fn rewrite(path: &Path, good: &[u8]) -> std::io::Result<File> {
    let tmp = path.with_extension("journal-rewrite");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(good)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path)?;
    OpenOptions::new().read(true).write(true).open(path)
}

/// Makes a rename or a new file in `path`'s directory durable.
pub(crate) fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
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
            // A record carries its post's body: it is part of what was acknowledged.
            bodies: vec![[vec![n; kith_core::body::SALT_LEN], b"text".to_vec()].concat()],
        }
    }

    fn open(path: &Path) -> (Journal, Vec<SignedChange>, Option<JournalDamage>) {
        let o = Journal::open(path).unwrap();
        (o.journal, o.changes, o.damage)
    }

    #[test]
    fn records_survive_a_reopen_and_a_clear_empties_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut j, found, _) = open(&path);
        assert!(found.is_empty());
        j.append(&change(1)).unwrap();
        j.append(&change(2)).unwrap();
        j.sync().unwrap();
        drop(j);
        let (mut j, found, damage) = open(&path);
        assert_eq!(found, vec![change(1), change(2)]);
        assert_eq!(damage, None);
        j.append(&change(3)).unwrap();
        drop(j);
        let (mut j, found, _) = open(&path);
        assert_eq!(found, vec![change(1), change(2), change(3)]);
        j.clear().unwrap();
        assert_eq!(j.bytes(), 0);
        j.append(&change(4)).unwrap();
        drop(j);
        let (_, found, _) = open(&path);
        assert_eq!(found, vec![change(4)]);
    }

    #[test]
    fn a_torn_tail_is_kept_aside_then_dropped_and_appends_follow_the_good_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut j, _, _) = open(&path);
        j.append(&change(1)).unwrap();
        j.append(&change(2)).unwrap();
        drop(j);
        let whole = std::fs::read(&path).unwrap();
        // Every cut inside the second record keeps exactly the first, and
        // the bytes as they were are kept aside first.
        let first = HEADER + change(1).encode().len();
        for cut in first + 1..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let (_, found, damage) = open(&path);
            assert_eq!(found, vec![change(1)], "cut at {cut}");
            let damage = damage.expect("the cut is reported");
            assert!(!damage.inside, "cut at {cut}: a cut tail is not inside");
            assert_eq!(damage.skipped, vec![(first as u64, (cut - first) as u64)]);
            assert_eq!(std::fs::read(&damage.kept_at).unwrap(), &whole[..cut]);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), first as u64);
        }
        let (mut j, _, _) = open(&path);
        j.append(&change(3)).unwrap();
        drop(j);
        let (_, found, damage) = open(&path);
        assert_eq!(found, vec![change(1), change(3)]);
        assert_eq!(damage, None);
    }

    #[test]
    fn a_flipped_byte_costs_only_the_record_it_hits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut j, _, _) = open(&path);
        let all: Vec<SignedChange> = (1..=5).map(change).collect();
        for c in &all {
            j.append(c).unwrap();
        }
        drop(j);
        let whole = std::fs::read(&path).unwrap();
        let mut starts = vec![0];
        for c in &all {
            starts.push(starts.last().unwrap() + HEADER + c.encode().len());
        }
        // A flip anywhere in record k (header or payload) loses record k
        // alone; the original is kept aside byte for byte.
        for at in 0..whole.len() {
            let hit = starts.iter().rposition(|&s| s <= at).unwrap();
            let mut damaged = whole.clone();
            damaged[at] ^= 0x10;
            std::fs::write(&path, &damaged).unwrap();
            let (_, found, damage) = open(&path);
            let mut expected = all.clone();
            expected.remove(hit);
            assert_eq!(found, expected, "flip at {at}");
            let damage = damage.expect("the flip is reported");
            assert_eq!(damage.inside, hit + 1 < all.len(), "flip at {at}");
            assert_eq!(std::fs::read(&damage.kept_at).unwrap(), damaged);
            std::fs::remove_file(&damage.kept_at).unwrap();
        }
    }
}
