//! Document ids: which automerge document a change belongs to, and so who may
//! write it.
//!
//! A document id is a fixed 69-byte string: `kind (1) || owner (32) ||
//! space (32) || be32(shard)`. Because the owner is part of the id, a
//! receiver can decide whether a signer may write a document from the id
//! alone, before it has ever seen the document.

use std::fmt;

use crate::IdentityId;

/// Length of an encoded [`DocId`].
pub const DOC_ID_LEN: usize = 69;

/// The single-purpose document kinds of kith (DESIGN.md decision 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DocKind {
    /// One identity's posts, replies, reactions, edits and deletions in one
    /// space; written only by that identity's devices. Sharded.
    Feed = 1,
    /// Name, bio, follows and blocks; public, single writer.
    Profile = 2,
    /// Labels and notes on people; replicated only among the owner's devices.
    Private = 3,
    /// A group's name, members, roles and invites; owner and space both hold
    /// the group id. Written by members, each within its role.
    GroupControl = 4,
}

impl DocKind {
    fn from_u8(b: u8) -> Option<DocKind> {
        Some(match b {
            1 => DocKind::Feed,
            2 => DocKind::Profile,
            3 => DocKind::Private,
            4 => DocKind::GroupControl,
            _ => return None,
        })
    }

    /// Lower-case name used in messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            DocKind::Feed => "feed",
            DocKind::Profile => "profile",
            DocKind::Private => "private",
            DocKind::GroupControl => "group-control",
        }
    }
}

/// Where posts live: the public space (all zeroes) or one group.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpaceId(pub [u8; 32]);

impl SpaceId {
    /// The public space.
    pub const PUBLIC: SpaceId = SpaceId([0; 32]);

    /// Whether this is the public space.
    pub fn is_public(&self) -> bool {
        *self == Self::PUBLIC
    }
}

impl fmt::Debug for SpaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_public() {
            f.write_str("SpaceId(public)")
        } else {
            write!(
                f,
                "SpaceId({:02x}{:02x}{:02x}{:02x}…)",
                self.0[0], self.0[1], self.0[2], self.0[3]
            )
        }
    }
}

/// Identifies one automerge document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId {
    pub kind: DocKind,
    pub owner: IdentityId,
    pub space: SpaceId,
    pub shard: u32,
}

/// Why 69 bytes are not a document id.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocIdError {
    #[error("document id is {0} bytes, expected {DOC_ID_LEN}")]
    Length(usize),
    #[error("unknown document kind {0}")]
    Kind(u8),
    #[error("{kind} documents have no space or shard, found space or shard set")]
    NotSharded { kind: &'static str },
    #[error("a group control document's owner and space must both be its group, with no shard")]
    BadControl,
}

impl DocId {
    /// The feed shard `shard` of `owner` in `space`.
    pub fn feed(owner: IdentityId, space: SpaceId, shard: u32) -> DocId {
        DocId {
            kind: DocKind::Feed,
            owner,
            space,
            shard,
        }
    }

    /// `owner`'s profile and relations.
    pub fn profile(owner: IdentityId) -> DocId {
        DocId {
            kind: DocKind::Profile,
            owner,
            space: SpaceId::PUBLIC,
            shard: 0,
        }
    }

    /// `owner`'s private labels and settings.
    pub fn private(owner: IdentityId) -> DocId {
        DocId {
            kind: DocKind::Private,
            owner,
            space: SpaceId::PUBLIC,
            shard: 0,
        }
    }

    /// The control document of the group `group`. Its owner field holds the
    /// group id too, so documents still sort by kind, then owner.
    pub fn group_control(group: SpaceId) -> DocId {
        DocId {
            kind: DocKind::GroupControl,
            owner: IdentityId(group.0),
            space: group,
            shard: 0,
        }
    }

    /// Whether anyone may hold the document: a profile, or a feed of the
    /// public space. A private document goes only to its owner's devices,
    /// a group's documents only to its members (proto/README.md §13).
    pub fn is_public(&self) -> bool {
        match self.kind {
            DocKind::Profile => true,
            DocKind::Feed => self.space.is_public(),
            DocKind::Private | DocKind::GroupControl => false,
        }
    }

    /// The least and greatest encodings of the documents of one kind and
    /// owner (every space and shard): encodings sort by kind, then owner, so
    /// these bound a range of any table keyed by them.
    pub fn bounds_of(kind: DocKind, owner: &IdentityId) -> ([u8; DOC_ID_LEN], [u8; DOC_ID_LEN]) {
        let mut lo = [0u8; DOC_ID_LEN];
        lo[0] = kind as u8;
        lo[1..33].copy_from_slice(&owner.0);
        let mut hi = lo;
        hi[33..].fill(0xff);
        (lo, hi)
    }

    /// The 69-byte encoding that signatures cover.
    pub fn to_bytes(&self) -> [u8; DOC_ID_LEN] {
        let mut out = [0u8; DOC_ID_LEN];
        out[0] = self.kind as u8;
        out[1..33].copy_from_slice(&self.owner.0);
        out[33..65].copy_from_slice(&self.space.0);
        out[65..69].copy_from_slice(&self.shard.to_be_bytes());
        out
    }

    /// Reads a document id, rejecting any other length or unknown kind.
    pub fn from_bytes(bytes: &[u8]) -> Result<DocId, DocIdError> {
        if bytes.len() != DOC_ID_LEN {
            return Err(DocIdError::Length(bytes.len()));
        }
        let kind = DocKind::from_u8(bytes[0]).ok_or(DocIdError::Kind(bytes[0]))?;
        let owner = IdentityId(bytes[1..33].try_into().expect("fixed slice"));
        let space = SpaceId(bytes[33..65].try_into().expect("fixed slice"));
        let shard = u32::from_be_bytes(bytes[65..69].try_into().expect("fixed slice"));
        if matches!(kind, DocKind::Profile | DocKind::Private) && (shard != 0 || !space.is_public())
        {
            return Err(DocIdError::NotSharded { kind: kind.name() });
        }
        if kind == DocKind::GroupControl && (shard != 0 || space.0 != owner.0 || space.is_public())
        {
            return Err(DocIdError::BadControl);
        }
        Ok(DocId {
            kind,
            owner,
            space,
            shard,
        })
    }
}

const BASE32: data_encoding::Encoding = data_encoding::BASE32_NOPAD;

/// A group id prints as 52 lower-case base32 characters; the public space
/// as `public`.
impl fmt::Display for SpaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_public() {
            f.write_str("public")
        } else {
            f.write_str(&BASE32.encode(&self.0).to_ascii_lowercase())
        }
    }
}

impl std::str::FromStr for SpaceId {
    type Err = crate::ParseIdError;
    fn from_str(s: &str) -> Result<SpaceId, Self::Err> {
        let t = s.trim();
        if t == "public" {
            return Ok(SpaceId::PUBLIC);
        }
        let bad = || crate::ParseIdError::NotGroupId(s.to_owned());
        if t.len() != 52 {
            return Err(bad());
        }
        let bytes = BASE32
            .decode(t.to_ascii_uppercase().as_bytes())
            .map_err(|_| bad())?;
        Ok(SpaceId(bytes.try_into().map_err(|_| bad())?))
    }
}

impl serde::Serialize for SpaceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SpaceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == DocKind::GroupControl {
            let g = self.space.to_string();
            return write!(f, "group-control/{}", &g[..8]);
        }
        write!(f, "{}/{}", self.kind.name(), self.owner.short())?;
        if self.kind == DocKind::Feed {
            if !self.space.is_public() {
                write!(f, "/{:?}", self.space)?;
            }
            write!(f, "/{}", self.shard)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_ids_round_trip() {
        let id = DocId::feed(IdentityId([3; 32]), SpaceId([4; 32]), 7);
        assert_eq!(DocId::from_bytes(&id.to_bytes()).unwrap(), id);
    }

    #[test]
    fn only_profiles_and_public_feeds_are_public() {
        let alice = IdentityId([3; 32]);
        let group = SpaceId([4; 32]);
        assert!(DocId::profile(alice).is_public());
        assert!(DocId::feed(alice, SpaceId::PUBLIC, 2).is_public());
        assert!(!DocId::feed(alice, group, 0).is_public());
        assert!(!DocId::private(alice).is_public());
        assert!(!DocId::group_control(group).is_public());
    }

    #[test]
    fn malformed_doc_ids_are_refused() {
        let good = DocId::profile(IdentityId([3; 32])).to_bytes();
        assert_eq!(DocId::from_bytes(&good[..68]), Err(DocIdError::Length(68)));
        let mut bad = good;
        bad[0] = 99;
        assert_eq!(DocId::from_bytes(&bad), Err(DocIdError::Kind(99)));
        let mut sharded_profile = good;
        sharded_profile[68] = 1;
        assert!(matches!(
            DocId::from_bytes(&sharded_profile),
            Err(DocIdError::NotSharded { .. })
        ));
    }
}
