//! The store's errors.

use kith_core::VerifyError;

/// Opening the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("the store {path} is in use by another kith process (a running `kith node`?)")]
    InUse { path: String },
    #[error(
        "the store {path} could not be opened ({source}); if it keeps failing, `kith check` says whether it is damaged and `kith repair` rebuilds it"
    )]
    Db {
        path: String,
        source: redb::DatabaseError,
    },
    /// The file is damaged; it was not changed.
    #[error(
        "the store {path} is damaged ({detail}); nothing in it was changed. `kith check` says what is wrong, and `kith repair` rebuilds the store from what can be read and from your peers, keeping the damaged file aside"
    )]
    Damaged { path: String, detail: String },
    /// A `kith repair` was interrupted; only finishing it may open the store.
    #[error(
        "a repair of the store {path} did not finish (the damaged file is kept at {damaged}): run `kith repair` again to finish it"
    )]
    RepairUnfinished { path: String, damaged: String },
    #[error(
        "the store {path} was written by a newer kith (layout {found}, this kith reads {expected})"
    )]
    Schema {
        path: String,
        found: u32,
        expected: u32,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] kith_core::RandomError),
}

impl From<crate::JournalError> for OpenError {
    fn from(e: crate::JournalError) -> Self {
        OpenError::Store(e.into())
    }
}

impl OpenError {
    /// What redb's refusal to open `path` means for a person.
    pub(crate) fn from_db(path: &str, e: redb::DatabaseError) -> OpenError {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse { path: path.into() },
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
                OpenError::Damaged {
                    path: path.into(),
                    detail,
                }
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(io)) if is_disk_full(&io) => {
                OpenError::Store(StoreError::DiskFull {
                    path: path.into(),
                    closed: false,
                })
            }
            source => OpenError::Db {
                path: path.into(),
                source,
            },
        }
    }
}

/// A storage operation failed; nothing of it was committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "database error: {0}; if it keeps failing, `kith check` says whether the store is damaged and `kith repair` rebuilds it"
    )]
    Db(redb::Error),
    /// The disk (or the user's quota) is full: nothing was written.
    #[error(
        "the disk holding {path} is full, so nothing was written; free some space and try again (everything stored so far is kept)"
    )]
    DiskFull {
        path: String,
        /// The write failed inside redb, which then refuses everything
        /// until the store is opened again (see [`StoreError::needs_reopen`]).
        closed: bool,
    },
    /// Reading or writing the disk failed; the store closes and opens again.
    #[error(
        "the disk failed a read or write ({0}); nothing of this action was written. If it keeps failing, `kith check` says whether the store is damaged and `kith repair` rebuilds it"
    )]
    Io(String),
    /// The store closed after a failed write and could not yet open again.
    #[error("the store is closed after a failed write: {0}")]
    Closed(String),
    #[error(
        "the store is damaged: {0}. `kith check` says what is wrong; `kith repair` rebuilds the store, keeping the damaged file aside"
    )]
    Corrupt(String),
    #[error(transparent)]
    Random(#[from] kith_core::RandomError),
}

/// Whether an I/O error means the disk or the quota is full.
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28 | 122)) // ENOSPC, EDQUOT
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(io) if is_disk_full(&io) => StoreError::DiskFull {
                path: "the store".into(),
                closed: true,
            },
            redb::Error::Io(io) => StoreError::Io(io.to_string()),
            redb::Error::PreviousIo => {
                StoreError::Io("an earlier write to the store failed".into())
            }
            redb::Error::Corrupted(detail) => StoreError::Corrupt(detail),
            e => StoreError::Db(e),
        }
    }
}

impl From<crate::JournalError> for StoreError {
    fn from(e: crate::JournalError) -> Self {
        if e.is_disk_full() {
            StoreError::DiskFull {
                path: e.path,
                closed: false,
            }
        } else {
            StoreError::Io(e.to_string())
        }
    }
}

impl StoreError {
    /// Whether the store must close and open again before it is used: a
    /// write failed underneath redb, which then refuses every operation.
    pub fn needs_reopen(&self) -> bool {
        matches!(
            self,
            StoreError::DiskFull { closed: true, .. } | StoreError::Io(_) | StoreError::Closed(_)
        )
    }

    /// Whether this is the full-disk error.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::DiskFull { .. })
    }
}

macro_rules! via_redb_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                redb::Error::from(e).into()
            }
        }
    )*};
}
via_redb_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError
);

/// A local action (post, edit, follow …) was not recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The action itself was invalid (empty post, unknown post, …).
    #[error("{0}")]
    Invalid(String),
    /// A post into a group whose member the author is not.
    #[error("you are not a member of this group")]
    NotMember(kith_core::SpaceId),
    #[error("could not sign the change: {0}")]
    Sign(#[from] VerifyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

macro_rules! commit_via_store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for CommitError {
            fn from(e: $t) -> Self {
                CommitError::Store(e.into())
            }
        }
    )*};
}
commit_via_store_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Why one incoming change was not applied.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IngestError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(
        "equivocation: a different change with actor {actor} and sequence number {seq} is already stored"
    )]
    Equivocation { actor: String, seq: u64 },
    #[error("automerge could not read the change: {0}")]
    Malformed(String),
    #[error("sequence number {0} is beyond what this store accepts")]
    SeqTooLarge(u64),
    #[error(
        "{0} changes of this document already wait for missing dependencies; sync its history first"
    )]
    TooManyPending(usize),
    #[error("refused by group {group}: {why}")]
    Group { group: String, why: String },
    /// Only an import refuses this: a network ingest keeps the change and
    /// drops the body (bodies are not signed, and the change stands alone).
    #[error(
        "{0} of the bodies beside the change do not match a hash the change holds: altered, or beside the wrong change"
    )]
    UnboundBodies(usize),
}

impl IngestError {
    /// Whether a peer that passed the change on is to blame. Not for
    /// equivocation: that is its signer's doing, and an honest peer may hold
    /// one of two conflicting versions (the other is kept as evidence).
    /// Nor for a group's refusal: a change can arrive before the record
    /// that admitted its author.
    pub fn blames_relay(&self) -> bool {
        !matches!(
            self,
            IngestError::Equivocation { .. } | IngestError::Group { .. }
        )
    }
}

macro_rules! import_via_store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for ImportError {
            fn from(e: $t) -> Self {
                ImportError::Store(e.into())
            }
        }
    )*};
}
import_via_store_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// `kith import` refused an archive; nothing of it was applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("{0}")]
    Archive(#[from] kith_core::archive::ArchiveError),
    #[error("change {index} of the archive ({doc}): {error}")]
    Change {
        index: usize,
        doc: String,
        error: IngestError,
    },
    #[error("certificate for device {device}: it is already certified by another identity")]
    CertificateConflict { device: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}
