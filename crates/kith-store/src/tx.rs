//! The tables of one write transaction, each opened once when first used,
//! and the interning of ids into the short local numbers that keys use.

use kith_core::{DocId, IdentityId, SpaceId};
use redb::{ReadableTable, WriteTransaction};

use crate::changelog::Rows;
use crate::error::StoreError;
use crate::rows::PersonRow;
use crate::tables::*;

/// Change rows as seen from inside a write transaction.
pub(crate) type WriteRows<'a, 't> = Rows<'a, ChangesWrite<'t>, SealedWrite<'t>>;

/// Declares the tables a write transaction may use. Each is opened on first
/// use: opening one reads the store's table of tables, and most transactions
/// (a gossiped post, a local one) touch fewer than half of them.
macro_rules! writer_tables {
    ($($name:ident: $def:ident => $table:ident,)*) => {
        /// The tables of one write transaction, each opened when first used.
        pub(crate) struct Writer<'t> {
            txn: &'t WriteTransaction,
            $($name: Option<$table<'t>>,)*
            /// What this transaction changed in the indexes (kept if it commits).
            pub changed: Vec<crate::changed::Changed>,
        }

        impl<'t> Writer<'t> {
            pub fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
                Ok(Writer {
                    txn,
                    $($name: None,)*
                    changed: Vec::new(),
                })
            }

            /// Creates every table a fresh store lacks.
            pub fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
                $(txn.open_table($def)?;)*
                Ok(())
            }

            $(
                pub fn $name(&mut self) -> Result<&mut $table<'t>, StoreError> {
                    if self.$name.is_none() {
                        self.$name = Some(self.txn.open_table($def)?);
                    }
                    Ok(self.$name.as_mut().expect("opened above"))
                }
            )*
        }
    };
}

writer_tables! {
    docs: DOCS => DocsWrite,
    doc_nos: DOC_NOS => DocNosWrite,
    doc_sizes: DOC_SIZES => DocSizesWrite,
    actors: ACTORS => ActorsWrite,
    actor_nos: ACTOR_NOS => ActorNosWrite,
    spaces: SPACES => SpacesWrite,
    space_nos: SPACE_NOS => SpaceNosWrite,
    person_nos: PERSON_NOS => PersonNosWrite,
    people: PEOPLE => PeopleWrite,
    devices: DEVICES => DevicesWrite,
    changes: CHANGES => ChangesWrite,
    sealed: SEALED => SealedWrite,
    clocks: CLOCKS => ClocksWrite,
    pending: PENDING => PendingWrite,
    bodies: BODIES => BodiesWrite,
    quarantine: QUARANTINE => QuarantineWrite,
    posts: POSTS => PostsWrite,
    feed: FEED => FeedWrite,
    by_author: BY_AUTHOR => ByAuthorWrite,
    replies: REPLIES => RepliesWrite,
    versions: VERSIONS => VersionsWrite,
    reactions: REACTIONS => ReactionsWrite,
    follows: FOLLOWS => FollowsWrite,
    blocks: BLOCKS => BlocksWrite,
    mutes: MUTES => MutesWrite,
    labels: LABELS => LabelsWrite,
}

impl<'t> Writer<'t> {
    /// Stored change rows, wherever they live.
    pub fn rows(&mut self) -> Result<WriteRows<'_, 't>, StoreError> {
        self.changes()?;
        self.sealed()?;
        Ok(Rows {
            changes: self.changes.as_ref().expect("opened above"),
            sealed: self.sealed.as_ref().expect("opened above"),
        })
    }

    pub fn intern_doc(&mut self, id: &DocId) -> Result<u32, StoreError> {
        let bytes = id.to_bytes();
        if let Some(n) = self.doc_nos()?.get(&bytes[..])? {
            return Ok(n.value());
        }
        let n = self.docs()?.last()?.map_or(0, |(k, _)| k.value() + 1);
        self.docs()?.insert(n, &bytes[..])?;
        self.doc_nos()?.insert(&bytes[..], n)?;
        Ok(n)
    }

    pub fn intern_actor(&mut self, actor: &[u8]) -> Result<u32, StoreError> {
        if let Some(n) = self.actor_nos()?.get(actor)? {
            return Ok(n.value());
        }
        let n = self.actors()?.last()?.map_or(0, |(k, _)| k.value() + 1);
        self.actors()?.insert(n, actor)?;
        self.actor_nos()?.insert(actor, n)?;
        Ok(n)
    }

    pub fn intern_space(&mut self, space: &SpaceId) -> Result<u32, StoreError> {
        if space.is_public() {
            return Ok(0);
        }
        if let Some(n) = self.space_nos()?.get(&space.0)? {
            return Ok(n.value());
        }
        let n = self.spaces()?.last()?.map_or(1, |(k, _)| k.value() + 1);
        self.spaces()?.insert(n, &space.0)?;
        self.space_nos()?.insert(&space.0, n)?;
        Ok(n)
    }

    pub fn intern_person(&mut self, id: &IdentityId) -> Result<u32, StoreError> {
        if let Some(n) = self.person_nos()?.get(&id.0)? {
            return Ok(n.value());
        }
        let n = self.people()?.last()?.map_or(0, |(k, _)| k.value() + 1);
        let row = PersonRow {
            identity: *id,
            name: String::new(),
            bio: String::new(),
        };
        self.people()?.insert(n, row.encode().as_slice())?;
        self.person_nos()?.insert(&id.0, n)?;
        Ok(n)
    }
}
