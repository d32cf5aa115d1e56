//! kith-store: the redb implementation of kith's storage. It keeps every
//! signed change, the device certificates, and the read indexes (posts by
//! space and time, by author, replies, reactions, people, follows, labels)
//! and updates them in the same write transaction that stores a change.
//! A local change is durable once its record in the journal beside the redb
//! file is synced (see `journal`), which costs the same however big the
//! store has grown.
//!
//! Writes: `store/local` (a change made here) and `store/ingest` (changes
//! from elsewhere), both past one group gate (`groups`) and through one
//! write step (`store/write`: the row, then the indexes of `index`);
//! `store/durability`
//! (group commits, the journal, replay), `store/session` (the actor
//! suffix), `store/upkeep`, `store/scrub` (after an erasure). Reads:
//! `query/` (timelines, posts, people, group visibility), returning the
//! plain values of `records`; `sync` (what a peer may receive). Every
//! table is declared once, in `tables`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = kith_store::Store::open(std::path::Path::new("kith.redb"))?;
//! let newest = store.feed(&kith_store::FeedQuery::default())?;
//! # let _ = newest; Ok(()) }
//! ```

mod archive;
mod bodies;
mod changed;
mod changelog;
mod docs;
mod draft;
mod error;
mod groups;
mod index;
mod journal;
mod query;
pub mod repair;

/// Entry points for the fuzzers under `fuzz/`: the decoders a damaged file
/// reaches, without the file.
#[doc(hidden)]
pub mod fuzzing {
    /// Scans journal bytes as opening a journal does; returns how many
    /// records were read and how many bytes were skipped.
    pub fn scan_journal(bytes: &[u8]) -> (usize, usize) {
        crate::journal::scan(bytes)
    }
}
mod records;
mod rows;
mod store;
mod sync;
mod tables;
mod tx;

pub use archive::ImportReport;
pub use changed::{Changed, MAX_CHANGED};
pub use docs::DOC_CACHE_CAPACITY;
pub use draft::Draft;
pub use error::{CommitError, ImportError, IngestError, OpenError, StoreError};
pub use journal::{CHECKPOINT_BYTES, JournalDamage, JournalError};
pub use kith_core::sync::{ChangeBatch, VersionVector};
pub use query::FeedQuery;
pub use records::{Person, Post, PostRef, PostVersion, ThreadPost};
pub use store::{
    ACTOR_SUFFIX_LEN, Counts, IngestReport, LocalSigner, MAX_PENDING_PER_DOC, MIN_FREE_BYTES,
    SCRUB_DELAY, Store,
};
