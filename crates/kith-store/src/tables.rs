//! Every redb table of the store, declared once. Names carry a version
//! (`_v1`): a change of layout is a new table and an explicit migration.
//!
//! Numbers (`doc_no`, `actor_no`, `person_no`, `space_no`) are local interned
//! ids: they keep keys short (a post costs bytes in every index) and differ
//! between replicas, so nothing outside this crate ever sees them.
//! Multi-byte integers in keys are big-endian so that byte order is numeric
//! order.

use redb::TableDefinition;

/// Declares a table once: its definition; the types of its handles in a
/// read transaction and in a write transaction; and a trait for code that
/// reads it through either. Its key and value types are written only here.
/// (Not every table is read through every handle: the types and traits of
/// the whole schema are declared all the same.)
macro_rules! table {
    ($(#[$doc:meta])* $name:ident, $read:ident, $write:ident, $readable:ident: $k:ty => $v:ty = $label:literal;) => {
        $(#[$doc])*
        pub const $name: TableDefinition<$k, $v> = TableDefinition::new($label);
        #[allow(dead_code)]
        pub(crate) type $read = redb::ReadOnlyTable<$k, $v>;
        #[allow(dead_code)]
        pub(crate) type $write<'t> = redb::Table<'t, $k, $v>;
        #[allow(dead_code)]
        pub(crate) trait $readable: redb::ReadableTable<$k, $v> {}
        impl<T: redb::ReadableTable<$k, $v>> $readable for T {}
    };
}

table! {
    /// `name → value`: store-wide settings. Keys: [`META_ACTOR_SUFFIX`],
    /// [`META_SESSION`], [`META_SCHEMA`], [`META_TIDY_CHECKED`].
    META, MetaRead, MetaWrite, MetaTable: &'static str => &'static [u8] = "meta_v1";
}
/// The random suffix of this store's automerge actor ids (DESIGN.md decision 2).
pub const META_ACTOR_SUFFIX: &str = "actor_suffix";
/// Present while a node's session is open (see `Store::begin_session`).
pub const META_SESSION: &str = "session";
/// Layout version of the tables, for migrations.
pub const META_SCHEMA: &str = "schema";
/// The file's length when [`crate::Store::tidy`] last measured its free
/// space (8 bytes, big-endian).
pub const META_TIDY_CHECKED: &str = "tidy_checked_len";
/// Layout 2 added `sealed_v1`, post rows' `first` text and edits-only
/// versions; layout 3 added `bodies_v1`. An older store is read as it is
/// (its posts hold their text inline) and marked 3 when opened.
pub const SCHEMA_VERSION: u32 = 3;

table! {
    /// `doc_no → DocId (69 bytes)`.
    DOCS, DocsRead, DocsWrite, DocsTable: u32 => &'static [u8] = "docs_v1";
}
table! {
    /// `DocId (69 bytes) → doc_no`.
    DOC_NOS, DocNosRead, DocNosWrite, DocNosTable: &'static [u8] => u32 = "doc_nos_v1";
}
table! {
    /// `doc_no → number of changes stored`: decides when a feed rolls over to a
    /// new shard.
    DOC_SIZES, DocSizesRead, DocSizesWrite, DocSizesTable: u32 => u32 = "doc_sizes_v1";
}

table! {
    /// `actor_no → automerge actor id`.
    ACTORS, ActorsRead, ActorsWrite, ActorsTable: u32 => &'static [u8] = "actors_v1";
}
table! {
    /// `automerge actor id → actor_no`.
    ACTOR_NOS, ActorNosRead, ActorNosWrite, ActorNosTable: &'static [u8] => u32 = "actor_nos_v1";
}

table! {
    /// `space_no → SpaceId (32)`; space 0 is the public space.
    SPACES, SpacesRead, SpacesWrite, SpacesTable: u32 => &'static [u8; 32] = "spaces_v1";
}
table! {
    /// `SpaceId (32) → space_no`.
    SPACE_NOS, SpaceNosRead, SpaceNosWrite, SpaceNosTable: &'static [u8; 32] => u32 = "space_nos_v1";
}

table! {
    /// `identity (32) → person_no`.
    PERSON_NOS, PersonNosRead, PersonNosWrite, PersonNosTable: &'static [u8; 32] => u32 = "person_nos_v1";
}
table! {
    /// `person_no → identity (32) || u16 name_len || name || bio` (see `rows::PersonRow`).
    PEOPLE, PeopleRead, PeopleWrite, PeopleTable: u32 => &'static [u8] = "people_v1";
}

table! {
    /// `device (32) → DeviceCertificate protobuf`; only verified certificates
    /// (each is verified again as it is written, see `certify`).
    DEVICES, DevicesRead, DevicesWrite, DevicesTable: &'static [u8; 32] => &'static [u8] = "devices_v1";
}

/// Reads a certificate from `DEVICES`. Its signatures were checked before it
/// was written and redb checksums the page it lives on, so they are not
/// checked again: two signature checks cost more than the rest of applying a
/// gossiped post.
pub(crate) fn stored_cert(bytes: &[u8]) -> Result<kith_core::DeviceCert, crate::StoreError> {
    kith_core::DeviceCert::decode_verified_earlier(bytes)
        .map_err(|e| crate::StoreError::Corrupt(format!("stored device certificate: {e}")))
}

/// Writes `cert` into `DEVICES` unless its device is there already; returns
/// the stored certificate's identity. Verifying here, once per device, keeps
/// the table's promise whatever the caller checked.
pub(crate) fn certify(
    devices: &mut DevicesWrite<'_>,
    cert: &kith_core::DeviceCert,
) -> Result<kith_core::IdentityId, crate::StoreError> {
    use redb::ReadableTable;
    if let Some(stored) = devices.get(&cert.device.0)? {
        return Ok(stored_cert(stored.value())?.identity);
    }
    cert.verify()
        .map_err(|e| crate::StoreError::Corrupt(format!("unverified device certificate: {e}")))?;
    devices.insert(&cert.device.0, cert.encode().as_slice())?;
    Ok(cert.identity)
}

table! {
    /// `doc_no (4) || actor_no (4) || seq (4) → signature (64) || change`: the
    /// raw automerge chunk of a change not yet sealed. With [`SEALED`] this is
    /// the source of truth: documents are rebuilt from it, and post texts are
    /// read from it (the indexes point here instead of holding a second copy).
    /// Rows written before sealing existed may hold automerge's compressed chunk.
    CHANGES, ChangesRead, ChangesWrite, ChangesTable: &'static [u8; 12] => &'static [u8] = "changes_v1";
}
table! {
    /// `doc_no (4) || actor_no (4) || first seq (4) || piece (1) → bytes`: runs
    /// of changes packed and compressed together, with their post bodies (see
    /// `changelog`).
    SEALED, SealedRead, SealedWrite, SealedTable: &'static [u8; 13] => &'static [u8] = "sealed_v1";
}
table! {
    /// `doc_no (4) || actor_no (4) → seq`: the highest sequence number such that
    /// every change of this actor up to it is stored. A document's clocks are its
    /// version vector: what sync compares, without loading automerge.
    CLOCKS, ClocksRead, ClocksWrite, ClocksTable: &'static [u8; 8] => u32 = "clocks_v1";
}
table! {
    /// `CHANGES key → ()`: stored changes whose dependencies have not arrived.
    PENDING, PendingRead, PendingWrite, PendingTable: &'static [u8; 12] => () = "pending_v1";
}
table! {
    /// `doc_no (4) || actor_no (4) || seq (4) || op counter (8) → body`: the
    /// body (salt and text) whose hash that op of that change put (see
    /// `bodies`), until its change is sealed. Removed, for every version of a
    /// post, once it is deleted.
    BODIES, BodiesRead, BodiesWrite, BodiesTable: &'static [u8; 20] => &'static [u8] = "bodies_v1";
}
table! {
    /// `change hash (32) → SignedChange protobuf`: the second of two different
    /// changes with one actor and sequence number. Kept as evidence, never applied.
    QUARANTINE, QuarantineRead, QuarantineWrite, QuarantineTable: &'static [u8; 32] => &'static [u8] = "quarantine_v1";
}

table! {
    /// `post id (16) → PostRow` (see `rows::PostRow`).
    POSTS, PostsRead, PostsWrite, PostsTable: &'static [u8; 16] => &'static [u8] = "posts_v1";
}
table! {
    /// `space_no (4) || created_at ms (8) || post id (16) → ()`: feeds, newest last.
    FEED, FeedRead, FeedWrite, FeedTable: &'static [u8; 28] => () = "feed_v1";
}
table! {
    /// `person_no (4) || created_at ms (8) || post id (16) → ()`: one author's posts.
    BY_AUTHOR, ByAuthorRead, ByAuthorWrite, ByAuthorTable: &'static [u8; 28] => () = "by_author_v1";
}
table! {
    /// `parent post id (16) || created_at ms (8) || reply post id (16) → ()`.
    REPLIES, RepliesRead, RepliesWrite, RepliesTable: &'static [u8; 40] => () = "replies_v1";
}
table! {
    /// `post id (16) || time ms (8) || actor_no (4) || seq (4) → op counter`:
    /// every edit of a post, pointing at the change that holds its text. The
    /// text a post was created with is not a version: its post row points at it.
    VERSIONS, VersionsRead, VersionsWrite, VersionsTable: &'static [u8; 32] => u64 = "versions_v1";
}
table! {
    /// `post id (16) || reactor person_no (4) || emoji → doc_no` of the feed
    /// shard holding the reaction.
    REACTIONS, ReactionsRead, ReactionsWrite, ReactionsTable: &'static [u8] => u32 = "reactions_v1";
}

table! {
    /// `person_no || person_no → ()`: the first follows the second.
    FOLLOWS, FollowsRead, FollowsWrite, FollowsTable: &'static [u8; 8] => () = "follows_v1";
}
table! {
    /// `person_no || person_no → ()`: the first blocks the second.
    BLOCKS, BlocksRead, BlocksWrite, BlocksTable: &'static [u8; 8] => () = "blocks_v1";
}
table! {
    /// `person_no || person_no → ()`: the first mutes the second (from the
    /// first's private document). A mute only hides: the second's posts leave
    /// the first's home and space timelines, nothing else.
    MUTES, MutesRead, MutesWrite, MutesTable: &'static [u8; 8] => () = "mutes_v1";
}
table! {
    /// `owner person_no (4) || subject person_no (4) || label → ()`: labels from
    /// the owner's private document.
    LABELS, LabelsRead, LabelsWrite, LabelsTable: &'static [u8] => () = "labels_v1";
}
