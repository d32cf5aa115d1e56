//! A store's whole contents as a portable archive (proto/README.md §8):
//! every certificate, then every change with the bodies kept for it.

use kith_core::archive::Archive;
use kith_core::{DeviceId, DocId, SignedChange};
use redb::{ReadableDatabase, ReadableTable};

use super::Store;
use crate::changelog::Rows;
use crate::docs::parse_change;
use crate::error::StoreError;
use crate::tables::*;

impl Store {
    /// Everything this store holds, as a portable archive.
    pub fn export(&self) -> Result<Archive, StoreError> {
        let txn = self.db()?.begin_read()?;
        let mut archive = Archive::default();
        for entry in txn.open_table(DEVICES)?.iter()? {
            let (_, v) = entry?;
            archive.certificates.push(stored_cert(v.value())?);
        }
        let actors = txn.open_table(ACTORS)?;
        let (changes, sealed) = (txn.open_table(CHANGES)?, txn.open_table(SEALED)?);
        let rows = Rows {
            changes: &changes,
            sealed: &sealed,
        };
        let bodies = txn.open_table(BODIES)?;
        let bodies = crate::bodies::BodyRows {
            bodies: &bodies,
            rows,
        };
        let mut body_cache = crate::changelog::BlockCache::default();
        for entry in txn.open_table(DOCS)?.iter()? {
            let (doc_no, doc) = entry?;
            let doc_no = doc_no.value();
            let doc = DocId::from_bytes(doc.value())
                .map_err(|_| StoreError::Corrupt(format!("doc {doc_no} has a bad id")))?;
            rows.for_each_in_doc(doc_no, |actor_no, seq, row| {
                let actor = actors
                    .get(actor_no)?
                    .map(|a| a.value().to_vec())
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown actor {actor_no}")))?;
                let change = parse_change(&row[64..]).map_err(StoreError::Corrupt)?;
                archive.changes.push(SignedChange {
                    doc,
                    change: change.raw_bytes().to_vec(),
                    device: DeviceId::from_slice(&actor[..32])
                        .ok_or_else(|| StoreError::Corrupt("short actor".into()))?,
                    signature: row[..64].try_into().expect("row has 64 signature bytes"),
                    bodies: bodies.of_change(doc_no, actor_no, seq, &mut body_cache)?,
                });
                Ok(())
            })?;
        }
        Ok(archive)
    }
}
