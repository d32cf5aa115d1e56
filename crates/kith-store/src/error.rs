//! The store's errors.

use kith_core::VerifyError;

/// Opening the store failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the store {path} is in use by another kith process (a running `kith node`?)")]
    InUse { path: String },
    #[error("the store {path} could not be opened")]
    Db {
        path: String,
        source: redb::DatabaseError,
    },
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
    #[error(transparent)]
    Journal(#[from] crate::JournalError),
    #[error("the journal {path} holds a change the store refuses ({reason}); it was left as it is")]
    Replay { path: String, reason: String },
}

/// A storage operation failed; nothing of it was committed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Random(#[from] kith_core::RandomError),
    #[error(transparent)]
    Journal(#[from] crate::JournalError),
}

macro_rules! via_redb_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
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
pub enum CommitError {
    /// The action itself was invalid (empty post, unknown post, …).
    #[error("{0}")]
    Invalid(String),
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
