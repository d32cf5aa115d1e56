//! kith-core: identities, keys, signed changes, document schemas and their
//! validation. No IO: no tokio, no libp2p, no redb. Every other crate builds
//! on these types.
//!
//! Every signature is checked by one rule ([`signature`], proto/README.md
//! §2.1), alone or in batches that accept exactly what the single check
//! accepts; a change from elsewhere is checked only by [`verify_batch`].
//!
//! ```
//! use kith_core::{DeviceCert, DeviceKey, DocId, IdentityKey, SignedChange};
//!
//! let alice = IdentityKey::generate().unwrap();
//! let laptop = DeviceKey::generate().unwrap();
//! let cert = DeviceCert::issue(&alice, &laptop, 0);
//! assert!(cert.verify().is_ok());
//! # let _ = (DocId::profile(alice.id()), SignedChange::signed_bytes);
//! ```

pub mod archive;
pub mod body;
pub mod cert;
pub mod chunk;
pub mod device_keys;
pub mod doc;
pub mod gossip;
pub mod group;
pub mod id;
pub mod invite;
pub mod keys;
pub mod person;
pub mod rendezvous;
pub mod schema;
pub mod signature;
pub mod signed;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;

/// Types generated from `proto/kith.proto`.
#[allow(missing_debug_implementations, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/kith.v1.rs"));
}

pub use body::{Body, BodyError, BodyHash};
pub use cert::{CertError, DeviceCert};
pub use chunk::{ChangeHeader, ChunkError};
pub use device_keys::DeviceKeys;
pub use doc::{DocId, DocKind, SpaceId};
pub use group::{GroupState, Role};
pub use id::{DeviceId, IdentityId, ParseIdError, PostId};
pub use invite::{InviteError, InviteKey};
pub use keys::{DeviceKey, IdentityKey, RandomError};
pub use signed::{
    Certificates, SignedChange, Verified, VerifyError, verify_batch, verify_batch_parallel,
};

/// The automerge actor id of a device in one store: the device key followed
/// by the store's random suffix (DESIGN.md decision 2).
pub fn actor_id(device: &DeviceId, store_suffix: &[u8]) -> automerge::ActorId {
    let mut bytes = Vec::with_capacity(32 + store_suffix.len());
    bytes.extend_from_slice(&device.0);
    bytes.extend_from_slice(store_suffix);
    automerge::ActorId::from(bytes)
}
