//! `kith import`: an archive's way into the store. An archive is checked
//! like changes from a peer, all or nothing, and it never brings another
//! identity's private documents in (proto/README.md §8).

use kith_core::archive::Archive;
use kith_core::{DocKind, IdentityId};

use crate::error::ImportError;
use crate::store::{IngestReport, Store};

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Changes applied, waiting for dependencies, or already here.
    pub ingested: IngestReport,
    /// Changes of another identity's private documents, left out.
    pub skipped_private: usize,
}

impl Store {
    /// Imports an archive into the store of `me`, all or nothing: if any
    /// certificate or change fails its checks, nothing is applied and the
    /// first failure is returned.
    ///
    /// The changes of a private document that `me` does not own are left
    /// out before anything is checked, and counted: they are someone else's
    /// labels and blocks, which replicate only among their owner's devices.
    /// The rest of such an archive (what its owner published) is imported.
    pub fn import(
        &mut self,
        mut archive: Archive,
        me: IdentityId,
    ) -> Result<ImportReport, ImportError> {
        let before = archive.changes.len();
        archive
            .changes
            .retain(|c| c.doc.kind != DocKind::Private || c.doc.owner == me);
        let skipped_private = before - archive.changes.len();
        let ingested = self.ingest_inner(&archive.certificates, archive.changes, true, true)?;
        Ok(ImportReport {
            ingested,
            skipped_private,
        })
    }
}
