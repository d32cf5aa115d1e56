//! Signed changes: the unit of replication, and the one path by which a
//! change that did not originate here is checked (DESIGN.md decision 3).
//!
//! A [`Verified`] value can only be made by [`SignedChange::sign`] (our own
//! change) or by [`verify_batch`], so code that applies changes cannot be
//! handed an unchecked one by mistake.

use std::collections::HashMap;

use prost::Message;

use crate::chunk::{ChangeHeader, ChunkError, parse_header};
use crate::device_keys::{DeviceKeys, device_key};
use crate::doc::{DocId, DocIdError, DocKind};
use crate::signature::{Batch, PublicKey};
use crate::{DeviceId, DeviceKey, IdentityId, proto};

/// Domain separation for change signatures.
pub const CHANGE_DOMAIN: &[u8] = b"kith/change/v1";

/// Largest change accepted, in bytes. A 10,000-character post fits (at most
/// 40 KB of UTF-8) and a signed change still fits in one gossipsub message.
pub const MAX_CHANGE_BYTES: usize = 60 * 1024;

/// Largest encoded [`proto::SignedChange`].
pub const MAX_SIGNED_CHANGE_BYTES: usize = MAX_CHANGE_BYTES + 512;

/// An automerge change, the document it belongs to, and its device signature.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedChange {
    pub doc: DocId,
    /// The raw, uncompressed automerge change chunk.
    pub change: Vec<u8>,
    pub device: DeviceId,
    pub signature: [u8; 64],
    /// Post bodies the change records the hashes of ([`crate::body`]).
    /// Not signed: a receiver keeps only those whose hash the change holds.
    pub bodies: Vec<Vec<u8>>,
}

impl std::fmt::Debug for SignedChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedChange")
            .field("doc", &self.doc)
            .field("bytes", &self.change.len())
            .field("device", &self.device)
            .field("bodies", &self.bodies.len())
            .finish()
    }
}

/// Why a signed change was refused. Each variant names one check.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("signed change is not valid protobuf")]
    Decode,
    #[error("signed change is {0} bytes, more than the limit of {MAX_SIGNED_CHANGE_BYTES}")]
    EnvelopeTooLarge(usize),
    #[error("field `{0}` has the wrong length")]
    FieldLength(&'static str),
    #[error("bad document id: {0}")]
    DocId(#[from] DocIdError),
    #[error("change is {0} bytes, more than the limit of {MAX_CHANGE_BYTES}")]
    Oversized(usize),
    #[error("malformed change: {0}")]
    Malformed(#[from] ChunkError),
    #[error("device key is not a valid ed25519 key")]
    InvalidDeviceKey,
    #[error("device key is a weak (small-order) key")]
    WeakDeviceKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("change actor does not belong to the signing device")]
    ActorMismatch,
    #[error("a body beside the change is malformed: {0}")]
    Body(#[from] crate::body::BodyError),
    #[error("device {0} has no valid certificate from any identity")]
    UncertifiedDevice(String),
    #[error("{author} may not write {doc}")]
    NotAuthorized { author: String, doc: String },
}

/// A value whose checks have passed. Only this module can make one.
#[derive(Clone, Debug)]
pub struct Verified<T> {
    inner: T,
    header: ChangeHeader,
    author: IdentityId,
}

impl Verified<SignedChange> {
    pub fn signed(&self) -> &SignedChange {
        &self.inner
    }
    pub fn header(&self) -> &ChangeHeader {
        &self.header
    }
    /// The identity whose certified device signed the change.
    pub fn author(&self) -> IdentityId {
        self.author
    }
    pub fn doc(&self) -> DocId {
        self.inner.doc
    }
    pub fn into_inner(self) -> SignedChange {
        self.inner
    }
    /// Puts the bodies of the posts this change made or edited beside it.
    /// Bodies are not signed, so attaching them verifies nothing: a store
    /// keeps only those whose hash the change holds.
    pub fn attach_bodies(&mut self, bodies: Vec<crate::Body>) {
        self.inner.bodies = bodies.into_iter().map(crate::Body::into_bytes).collect();
    }
}

/// Looks up which identity certified a device.
pub trait Certificates {
    fn identity_of(&self, device: &DeviceId) -> Option<IdentityId>;
}

impl<F: Fn(&DeviceId) -> Option<IdentityId>> Certificates for F {
    fn identity_of(&self, device: &DeviceId) -> Option<IdentityId> {
        self(device)
    }
}

impl SignedChange {
    /// Exactly the bytes a device signs for a change.
    pub fn signed_bytes(doc: &DocId, change_hash: &[u8; 32]) -> Vec<u8> {
        let mut m = Vec::with_capacity(CHANGE_DOMAIN.len() + crate::doc::DOC_ID_LEN + 32);
        m.extend_from_slice(CHANGE_DOMAIN);
        m.extend_from_slice(&doc.to_bytes());
        m.extend_from_slice(change_hash);
        m
    }

    /// Signs a change this device just made. `author` is the identity that
    /// certified `key`; the caller owns both, so no lookup is needed.
    pub fn sign(
        doc: DocId,
        change: Vec<u8>,
        key: &DeviceKey,
        author: IdentityId,
    ) -> Result<Verified<SignedChange>, VerifyError> {
        if change.len() > MAX_CHANGE_BYTES {
            return Err(VerifyError::Oversized(change.len()));
        }
        let header = parse_header(&change)?;
        let device = key.id();
        if !header.actor.starts_with(&device.0) {
            return Err(VerifyError::ActorMismatch);
        }
        let signature = key.sign(&Self::signed_bytes(&doc, &header.hash));
        Ok(Verified {
            inner: SignedChange {
                doc,
                change,
                device,
                signature,
                bodies: Vec::new(),
            },
            header,
            author,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> proto::SignedChange {
        proto::SignedChange {
            doc_id: self.doc.to_bytes().to_vec(),
            change: self.change.clone(),
            device: self.device.0.to_vec(),
            signature: self.signature.to_vec(),
            bodies: self.bodies.clone(),
        }
    }

    /// Reads the wire form: the envelope limit, then field lengths (steps 1
    /// and 3 to 5 of proto/README.md §7; not signatures). Every path by which
    /// a change arrives comes through here: a bare envelope
    /// ([`SignedChange::decode`]), an archive record, a sync response and a
    /// gossip message, so all of them refuse an oversized envelope alike. An
    /// envelope inside another message is measured as protobuf encodes the
    /// fields it carries: its own bytes are gone once the outer message is
    /// decoded (whose limit bounded them).
    pub fn from_proto(p: proto::SignedChange) -> Result<SignedChange, VerifyError> {
        let len = p.encoded_len();
        if len > MAX_SIGNED_CHANGE_BYTES {
            return Err(VerifyError::EnvelopeTooLarge(len));
        }
        if p.change.len() > MAX_CHANGE_BYTES {
            return Err(VerifyError::Oversized(p.change.len()));
        }
        for body in &p.bodies {
            crate::body::check(body)?;
        }
        Ok(SignedChange {
            doc: DocId::from_bytes(&p.doc_id)?,
            device: DeviceId::from_slice(&p.device).ok_or(VerifyError::FieldLength("device"))?,
            signature: p
                .signature
                .as_slice()
                .try_into()
                .map_err(|_| VerifyError::FieldLength("signature"))?,
            change: p.change,
            bodies: p.bodies,
        })
    }

    /// Protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// Reads protobuf bytes, refusing oversized input before decoding it
    /// (so nothing is allocated for it), then as [`SignedChange::from_proto`].
    pub fn decode(bytes: &[u8]) -> Result<SignedChange, VerifyError> {
        if bytes.len() > MAX_SIGNED_CHANGE_BYTES {
            return Err(VerifyError::EnvelopeTooLarge(bytes.len()));
        }
        let p = proto::SignedChange::decode(bytes).map_err(|_| VerifyError::Decode)?;
        Self::from_proto(p)
    }

    /// The size limit and the header (steps 6 and 7 of proto/README.md §7).
    fn structure(&self) -> Result<ChangeHeader, VerifyError> {
        if self.change.len() > MAX_CHANGE_BYTES {
            return Err(VerifyError::Oversized(self.change.len()));
        }
        Ok(parse_header(&self.change)?)
    }

    /// Actor, certificate and permission (steps 9 to 11): who wrote this,
    /// and may they write this document?
    fn authorise(
        &self,
        header: &ChangeHeader,
        certs: &impl Certificates,
    ) -> Result<IdentityId, VerifyError> {
        if !header.actor.starts_with(&self.device.0) {
            return Err(VerifyError::ActorMismatch);
        }
        let author = certs
            .identity_of(&self.device)
            .ok_or_else(|| VerifyError::UncertifiedDevice(self.device.to_string()))?;
        match self.doc.kind {
            DocKind::Feed | DocKind::Profile | DocKind::Private => {
                if author != self.doc.owner {
                    return Err(VerifyError::NotAuthorized {
                        author: author.to_string(),
                        doc: self.doc.to_string(),
                    });
                }
            }
            // Whether the author is a member in the role its records need
            // depends on the group's log: the store decides
            // (`group::may_write_control`).
            DocKind::GroupControl => {}
        }
        Ok(author)
    }

    /// Checks one change completely (proto/README.md §7).
    pub fn verify(self, certs: &impl Certificates) -> Result<Verified<SignedChange>, VerifyError> {
        verify_batch(vec![self], certs)
            .pop()
            .expect("one result per input")
    }
}

/// [`verify_batch`] spread over `threads` threads (the same results, in the
/// same order). Signature checks are most of the cost of catching up, and
/// they are independent, so a node uses its spare cores for them.
///
/// Device keys come from `keys`, and those not there yet are added.
pub fn verify_batch_parallel(
    changes: Vec<SignedChange>,
    certs: &(impl Certificates + Sync),
    threads: usize,
    keys: &mut DeviceKeys,
) -> Vec<Result<Verified<SignedChange>, VerifyError>> {
    /// Below this, starting threads costs more than it saves.
    const MIN_PER_THREAD: usize = 32;
    let keys = &resolve(&changes, keys);
    let threads = threads.clamp(1, changes.len() / MIN_PER_THREAD + 1);
    if threads == 1 {
        return verify_resolved(changes, certs, keys);
    }
    let per = changes.len().div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    let mut rest = changes;
    while rest.len() > per {
        let tail = rest.split_off(per);
        parts.push(rest);
        rest = tail;
    }
    parts.push(rest);
    std::thread::scope(|scope| {
        let mut parts = parts.into_iter();
        // The calling thread takes the first part itself.
        let first = parts.next().unwrap_or_default();
        let handles: Vec<_> = parts
            .map(|part| scope.spawn(move || verify_resolved(part, certs, keys)))
            .collect();
        let mut out = verify_resolved(first, certs, keys);
        for h in handles {
            match h.join() {
                Ok(results) => out.extend(results),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Checks many changes and returns one result per input, in order.
///
/// The signatures are checked together, as one batch
/// ([`crate::signature::Batch`]), which accepts exactly what the single
/// check accepts (proto/README.md §2.1); each device key is decoded once.
pub fn verify_batch(
    changes: Vec<SignedChange>,
    certs: &impl Certificates,
) -> Vec<Result<Verified<SignedChange>, VerifyError>> {
    let keys = resolve(&changes, &mut DeviceKeys::default());
    verify_resolved(changes, certs, &keys)
}

/// Each signing device's key, or why it cannot sign.
type Resolved = HashMap<DeviceId, Result<PublicKey, VerifyError>>;

fn resolve(changes: &[SignedChange], keys: &mut DeviceKeys) -> Resolved {
    let mut resolved = Resolved::new();
    for change in changes {
        resolved
            .entry(change.device)
            .or_insert_with(|| keys.get(&change.device));
    }
    resolved
}

fn verify_resolved(
    changes: Vec<SignedChange>,
    certs: &impl Certificates,
    keys: &Resolved,
) -> Vec<Result<Verified<SignedChange>, VerifyError>> {
    // The cheap checks first, each change on its own; the signatures of
    // those that pass, together.
    let mut batch = Batch::with_capacity(changes.len());
    let checked: Vec<Result<(SignedChange, ChangeHeader, IdentityId), VerifyError>> = changes
        .into_iter()
        .map(|change| {
            let header = change.structure()?;
            let key = match keys.get(&change.device) {
                Some(key) => key.clone()?,
                None => device_key(&change.device)?,
            };
            let author = change.authorise(&header, certs)?;
            let msg = SignedChange::signed_bytes(&change.doc, &header.hash);
            batch.push(&key, &msg, &change.signature);
            Ok((change, header, author))
        })
        .collect();
    let mut valid = batch.verify().into_iter();
    checked
        .into_iter()
        .map(|r| {
            let (inner, header, author) = r?;
            if !valid.next().expect("one result per signature pushed") {
                return Err(VerifyError::BadSignature);
            }
            Ok(Verified {
                inner,
                header,
                author,
            })
        })
        .collect()
}
