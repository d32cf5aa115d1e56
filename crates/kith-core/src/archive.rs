//! The portable archive of `kith export` / `kith import`: the magic bytes
//! `KITHARC1`, then length-delimited [`proto::ArchiveRecord`]s, each a device
//! certificate or a signed change. Reading checks every length before it
//! allocates; nothing here trusts the file.

use std::collections::{HashMap, HashSet};

use prost::Message;

use crate::{DeviceCert, DeviceId, IdentityId, SignedChange, proto};

pub const MAGIC: &[u8; 8] = b"KITHARC1";

/// Largest single record accepted from a file.
const MAX_RECORD_BYTES: usize = crate::signed::MAX_SIGNED_CHANGE_BYTES + 64;

/// What an archive holds.
#[derive(Debug, Default, Clone)]
pub struct Archive {
    pub certificates: Vec<DeviceCert>,
    pub changes: Vec<SignedChange>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("not a kith archive (it does not start with KITHARC1)")]
    Magic,
    #[error("archive is truncated at byte {0}")]
    Truncated(usize),
    #[error("record at byte {offset} is {len} bytes, more than the limit of {MAX_RECORD_BYTES}")]
    RecordTooLarge { offset: usize, len: u64 },
    #[error("record at byte {0} is not valid protobuf")]
    Decode(usize),
    #[error("record at byte {0} is empty")]
    Empty(usize),
    #[error("certificate at byte {offset}: {error}")]
    Certificate {
        offset: usize,
        error: crate::CertError,
    },
    #[error("change at byte {offset}: {error}")]
    Change {
        offset: usize,
        error: crate::VerifyError,
    },
    #[error(
        "certificate at byte {offset}: device {device} is already certified by another identity in this archive"
    )]
    CertificateConflict { offset: usize, device: String },
}

impl Archive {
    /// Serialises the archive.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let records = self
            .certificates
            .iter()
            .map(|c| proto::archive_record::Record::Certificate(c.to_proto()))
            .chain(
                self.changes
                    .iter()
                    .map(|c| proto::archive_record::Record::Change(c.to_proto())),
            );
        for record in records {
            proto::ArchiveRecord {
                record: Some(record),
            }
            .encode_length_delimited(&mut out)
            .expect("Vec grows as needed");
        }
        out
    }

    /// Only what `identity` has published: the changes of its profile and of
    /// its feeds in the public space, with the certificates of the devices
    /// that signed them. Its private document, every group's documents and
    /// everyone else's are left out (`kith export --public`).
    pub fn published_by(self, identity: IdentityId) -> Archive {
        let changes: Vec<SignedChange> = self
            .changes
            .into_iter()
            .filter(|c| c.doc.owner == identity && c.doc.is_public())
            .collect();
        let signers: HashSet<DeviceId> = changes.iter().map(|c| c.device).collect();
        let certificates = self
            .certificates
            .into_iter()
            .filter(|c| c.identity == identity && signers.contains(&c.device))
            .collect();
        Archive {
            certificates,
            changes,
        }
    }

    /// Reads an archive; certificates are verified here, changes later by the
    /// store. An archive that certifies one device for two identities is
    /// refused: which of them wrote that device's changes would depend on
    /// the order of the records.
    pub fn decode(bytes: &[u8]) -> Result<Archive, ArchiveError> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(ArchiveError::Magic)?;
        let mut archive = Archive::default();
        let mut certified: HashMap<DeviceId, IdentityId> = HashMap::new();
        let mut buf = rest;
        while !buf.is_empty() {
            let offset = bytes.len() - buf.len();
            let len = prost::encoding::decode_varint(&mut buf)
                .map_err(|_| ArchiveError::Truncated(offset))?;
            if len > MAX_RECORD_BYTES as u64 {
                return Err(ArchiveError::RecordTooLarge { offset, len });
            }
            let len = len as usize;
            if buf.len() < len {
                return Err(ArchiveError::Truncated(offset));
            }
            let (record, tail) = buf.split_at(len);
            buf = tail;
            let record =
                proto::ArchiveRecord::decode(record).map_err(|_| ArchiveError::Decode(offset))?;
            match record.record.ok_or(ArchiveError::Empty(offset))? {
                proto::archive_record::Record::Certificate(c) => {
                    let cert = DeviceCert::from_proto(&c)
                        .map_err(|error| ArchiveError::Certificate { offset, error })?;
                    let identity = *certified.entry(cert.device).or_insert(cert.identity);
                    if identity != cert.identity {
                        return Err(ArchiveError::CertificateConflict {
                            offset,
                            device: cert.device.to_string(),
                        });
                    }
                    archive.certificates.push(cert);
                }
                proto::archive_record::Record::Change(c) => archive.changes.push(
                    SignedChange::from_proto(c)
                        .map_err(|error| ArchiveError::Change { offset, error })?,
                ),
            }
        }
        Ok(archive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceKey, DocId, IdentityKey, SpaceId};

    /// A change of `doc` as if signed by `device` (not verified here).
    fn change(doc: DocId, device: &DeviceKey) -> SignedChange {
        SignedChange {
            doc,
            change: vec![doc.kind as u8],
            device: device.id(),
            signature: [0; 64],
            bodies: Vec::new(),
        }
    }

    #[test]
    fn a_public_archive_holds_only_what_its_identity_published() {
        let alice = IdentityKey::from_secret_bytes(&[1; 32]);
        let laptop = DeviceKey::from_secret_bytes(&[2; 32]);
        let phone = DeviceKey::from_secret_bytes(&[3; 32]);
        let bob = IdentityKey::from_secret_bytes(&[4; 32]);
        let bobs_device = DeviceKey::from_secret_bytes(&[5; 32]);
        let group = SpaceId([9; 32]);
        let (a, b) = (alice.id(), bob.id());
        let published = vec![
            change(DocId::profile(a), &laptop),
            change(DocId::feed(a, SpaceId::PUBLIC, 0), &laptop),
            change(DocId::feed(a, SpaceId::PUBLIC, 1), &laptop),
        ];
        let full = Archive {
            certificates: vec![
                DeviceCert::issue(&alice, &laptop, 1),
                DeviceCert::issue(&alice, &phone, 1),
                DeviceCert::issue(&bob, &bobs_device, 1),
            ],
            changes: [
                published.clone(),
                vec![
                    change(DocId::private(a), &phone),
                    change(DocId::feed(a, group, 0), &phone),
                    change(DocId::group_control(group), &laptop),
                    change(DocId::feed(b, SpaceId::PUBLIC, 0), &bobs_device),
                    change(DocId::profile(b), &bobs_device),
                ],
            ]
            .concat(),
        };
        let public = full.published_by(a);
        assert_eq!(public.changes, published);
        assert_eq!(
            public.certificates,
            vec![DeviceCert::issue(&alice, &laptop, 1)],
            "only the certificates of the devices that signed what is published"
        );
    }

    #[test]
    fn an_archive_certifying_one_device_for_two_identities_is_refused() {
        let alice = IdentityKey::from_secret_bytes(&[1; 32]);
        let mallory = IdentityKey::from_secret_bytes(&[66; 32]);
        let laptop = DeviceKey::from_secret_bytes(&[2; 32]);
        // The laptop's key counter-signed for both (the spec forbids it; a
        // stolen key can do it anyway).
        let archive = Archive {
            certificates: vec![
                DeviceCert::issue(&alice, &laptop, 1),
                DeviceCert::issue(&alice, &laptop, 2),
                DeviceCert::issue(&mallory, &laptop, 3),
            ],
            changes: vec![],
        };
        assert!(matches!(
            Archive::decode(&archive.encode()),
            Err(ArchiveError::CertificateConflict { device, .. }) if device == laptop.id().to_string()
        ));
        let renewed = Archive {
            certificates: archive.certificates[..2].to_vec(),
            changes: vec![],
        };
        assert_eq!(
            Archive::decode(&renewed.encode()).unwrap().certificates,
            renewed.certificates,
            "two certificates from the same identity are no conflict"
        );
    }
}
