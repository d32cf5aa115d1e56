//! Every redb table of the store, declared once. Names carry a version
//! (`_v1`): a change of layout is a new table and an explicit migration.
//!
//! Numbers (`doc_no`, `actor_no`, `person_no`, `space_no`) are local interned
//! ids: they keep keys short (a post costs bytes in every index) and differ
//! between replicas, so nothing outside this crate ever sees them.
//! Multi-byte integers in keys are big-endian so that byte order is numeric
//! order.

use redb::TableDefinition;

/// `name → value`: store-wide settings. Keys: [`META_ACTOR_SUFFIX`],
/// [`META_SCHEMA`].
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta_v1");
/// The random suffix of this store's automerge actor ids (DESIGN.md decision 2).
pub const META_ACTOR_SUFFIX: &str = "actor_suffix";
/// Present while a node's session is open (see `Store::begin_session`).
pub const META_SESSION: &str = "session";
/// Layout version of the tables, for migrations.
pub const META_SCHEMA: &str = "schema";
/// Layout 2 added `sealed_v1`, post rows' `first` text and edits-only
/// versions; layout 3 added `bodies_v1`. An older store is read as it is
/// (its posts hold their text inline) and marked 3 when opened.
pub const SCHEMA_VERSION: u32 = 3;

/// `doc_no → DocId (69 bytes)`.
pub const DOCS: TableDefinition<u32, &[u8]> = TableDefinition::new("docs_v1");
/// `DocId (69 bytes) → doc_no`.
pub const DOC_NOS: TableDefinition<&[u8], u32> = TableDefinition::new("doc_nos_v1");
/// `doc_no → number of changes stored`: decides when a feed rolls over to a
/// new shard.
pub const DOC_SIZES: TableDefinition<u32, u32> = TableDefinition::new("doc_sizes_v1");

/// `actor_no → automerge actor id`.
pub const ACTORS: TableDefinition<u32, &[u8]> = TableDefinition::new("actors_v1");
/// `automerge actor id → actor_no`.
pub const ACTOR_NOS: TableDefinition<&[u8], u32> = TableDefinition::new("actor_nos_v1");

/// `space_no → SpaceId (32)`; space 0 is the public space.
pub const SPACES: TableDefinition<u32, &[u8; 32]> = TableDefinition::new("spaces_v1");
/// `SpaceId (32) → space_no`.
pub const SPACE_NOS: TableDefinition<&[u8; 32], u32> = TableDefinition::new("space_nos_v1");

/// `identity (32) → person_no`.
pub const PERSON_NOS: TableDefinition<&[u8; 32], u32> = TableDefinition::new("person_nos_v1");
/// `person_no → identity (32) || u16 name_len || name || bio` (see `rows::PersonRow`).
pub const PEOPLE: TableDefinition<u32, &[u8]> = TableDefinition::new("people_v1");

/// `device (32) → DeviceCertificate protobuf`; only verified certificates
/// (each is verified again as it is written, see `certify`).
pub const DEVICES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("devices_v1");

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
    devices: &mut redb::Table<'_, &'static [u8; 32], &'static [u8]>,
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

/// `doc_no (4) || actor_no (4) || seq (4) → signature (64) || change`: the
/// raw automerge chunk of a change not yet sealed. With [`SEALED`] this is
/// the source of truth: documents are rebuilt from it, and post texts are
/// read from it (the indexes point here instead of holding a second copy).
/// Rows written before sealing existed may hold automerge's compressed chunk.
pub const CHANGES: TableDefinition<&[u8; 12], &[u8]> = TableDefinition::new("changes_v1");
/// `doc_no (4) || actor_no (4) || first seq (4) || piece (1) → bytes`: runs
/// of changes packed and compressed together, with their post bodies (see
/// `changelog`).
pub const SEALED: TableDefinition<&[u8; 13], &[u8]> = TableDefinition::new("sealed_v1");
/// `doc_no (4) || actor_no (4) → seq`: the highest sequence number such that
/// every change of this actor up to it is stored. A document's clocks are its
/// version vector: what sync compares, without loading automerge.
pub const CLOCKS: TableDefinition<&[u8; 8], u32> = TableDefinition::new("clocks_v1");
/// `CHANGES key → ()`: stored changes whose dependencies have not arrived.
pub const PENDING: TableDefinition<&[u8; 12], ()> = TableDefinition::new("pending_v1");
/// `doc_no (4) || actor_no (4) || seq (4) || op counter (8) → body`: the
/// body (salt and text) whose hash that op of that change put (see
/// `bodies`), until its change is sealed. Removed, for every version of a
/// post, once it is deleted.
pub const BODIES: TableDefinition<&[u8; 20], &[u8]> = TableDefinition::new("bodies_v1");
/// `change hash (32) → SignedChange protobuf`: the second of two different
/// changes with one actor and sequence number. Kept as evidence, never applied.
pub const QUARANTINE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("quarantine_v1");

/// `post id (16) → PostRow` (see `rows::PostRow`).
pub const POSTS: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("posts_v1");
/// `space_no (4) || created_at ms (8) || post id (16) → ()`: feeds, newest last.
pub const FEED: TableDefinition<&[u8; 28], ()> = TableDefinition::new("feed_v1");
/// `person_no (4) || created_at ms (8) || post id (16) → ()`: one author's posts.
pub const BY_AUTHOR: TableDefinition<&[u8; 28], ()> = TableDefinition::new("by_author_v1");
/// `parent post id (16) || created_at ms (8) || reply post id (16) → ()`.
pub const REPLIES: TableDefinition<&[u8; 40], ()> = TableDefinition::new("replies_v1");
/// `post id (16) || time ms (8) || actor_no (4) || seq (4) → op counter`:
/// every edit of a post, pointing at the change that holds its text. The
/// text a post was created with is not a version: its post row points at it.
pub const VERSIONS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("versions_v1");
/// `post id (16) || reactor person_no (4) || emoji → doc_no` of the feed
/// shard holding the reaction.
pub const REACTIONS: TableDefinition<&[u8], u32> = TableDefinition::new("reactions_v1");

/// `person_no || person_no → ()`: the first follows the second.
pub const FOLLOWS: TableDefinition<&[u8; 8], ()> = TableDefinition::new("follows_v1");
/// `person_no || person_no → ()`: the first blocks the second.
pub const BLOCKS: TableDefinition<&[u8; 8], ()> = TableDefinition::new("blocks_v1");
/// `person_no || person_no → ()`: the first mutes the second (from the
/// first's private document). A mute only hides: the second's posts leave
/// the first's home and space timelines, nothing else.
pub const MUTES: TableDefinition<&[u8; 8], ()> = TableDefinition::new("mutes_v1");
/// `owner person_no (4) || subject person_no (4) || label → ()`: labels from
/// the owner's private document.
pub const LABELS: TableDefinition<&[u8], ()> = TableDefinition::new("labels_v1");
