//! Groups: spaces that any mix of people share, joined by invite keys, owned
//! by no server (DESIGN.md decisions 4 and 9).
//!
//! A group is two kinds of documents: one *control document*, a signed log of
//! [`records::Record`]s (genesis, name, invites, joins, promotions, removals)
//! that members write, and one feed per member in the group's space, written
//! as public feeds are. Who belongs is what replaying the log says
//! ([`state::GroupState`]); every member replays the same log the same way.

pub mod history;
pub mod records;
pub mod secrets;
pub mod state;

use sha2::{Digest, Sha256};

use crate::{DocId, IdentityId, SpaceId};

pub use records::{Record, RecordError, Role};
pub use secrets::EpochKey;
pub use state::{
    GroupState, InviteState, JoinRefusal, KeySeals, Member, Removal, WriteRefusal,
    may_write_control,
};

/// The id of the group `creator` made with `nonce`: anyone holding the
/// genesis record can check who created the group.
pub fn group_id(creator: &IdentityId, nonce: &[u8; 16]) -> SpaceId {
    let mut h = Sha256::new();
    h.update(b"kith/group/v1");
    h.update(creator.0);
    h.update(nonce);
    SpaceId(h.finalize().into())
}

/// The control document of `group`.
pub fn control_doc(group: &SpaceId) -> DocId {
    DocId::group_control(*group)
}
