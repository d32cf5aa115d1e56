//! Person records: how to find a person's devices by the person's id alone
//! (proto/README.md section 18).
//!
//! A node publishes, in the DHT, a record signed by its identity that lists
//! the identity's devices (each by its certificate, hence its peer id) and
//! addresses that reach them. Anyone may store or relay a record, as with
//! changes; nobody can forge one, and a newer one (larger `seq`) replaces an
//! older one. DHT servers check a record before they keep it, and a looker
//! checks every record it is given and keeps the newest valid one.

use prost::Message;

use crate::signature::PublicKey;
use crate::{DeviceCert, DeviceId, IdentityId, IdentityKey, proto};

/// Domain separation for the identity's signature on a record.
pub const RECORD_DOMAIN: &[u8] = b"kith/person-record/v1";
/// Prefix of a person's DHT key.
pub const KEY_DOMAIN: &[u8] = b"kith/person/v1";
/// Largest encoded record (libp2p's Kademlia packets are at most 16 KiB).
pub const MAX_RECORD_BYTES: usize = 8 * 1024;
/// Most devices, addresses per device, and bytes per address.
pub const MAX_DEVICES: usize = 16;
pub const MAX_ADDRS: usize = 8;
pub const MAX_ADDR_BYTES: usize = 256;
/// A record may say it is good for this long at most.
pub const MAX_LIFETIME_MS: u64 = 72 * 3600 * 1000;
/// How long a node's own records are good for; it republishes well before.
pub const LIFETIME_MS: u64 = 24 * 3600 * 1000;

/// The DHT key of a person's record.
pub fn dht_key(identity: &IdentityId) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(KEY_DOMAIN);
    h.update(identity.0);
    h.finalize().to_vec()
}

/// One device and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReach {
    pub cert: DeviceCert,
    /// Multiaddrs, as text.
    pub addrs: Vec<String>,
    /// When the device itself last renewed this entry (ms since the epoch).
    pub updated_ms: u64,
}

/// A checked person record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRecord {
    pub identity: IdentityId,
    pub seq: u64,
    pub expires_ms: u64,
    pub devices: Vec<DeviceReach>,
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("person record is larger than {MAX_RECORD_BYTES} bytes")]
    TooLarge,
    #[error("person record is not valid protobuf")]
    Decode,
    #[error("person record field `{0}` is wrong: {1}")]
    Field(&'static str, &'static str),
    #[error("person record's signature does not verify")]
    BadSignature,
    #[error("person record is stored under the key of another identity")]
    WrongKey,
    #[error(
        "person record lists a device certificate that does not verify or is of another identity"
    )]
    BadDevice,
    #[error("person record has expired, or claims to be good for more than 72 hours")]
    Expired,
}

impl PersonRecord {
    /// Signs and encodes the record with `identity` (whose id it must hold).
    pub fn sign(&self, identity: &IdentityKey) -> Vec<u8> {
        debug_assert_eq!(identity.id(), self.identity);
        let body = proto::PersonRecordBody {
            identity: self.identity.0.to_vec(),
            seq: self.seq,
            expires_ms: self.expires_ms,
            devices: self
                .devices
                .iter()
                .map(|d| proto::DeviceReach {
                    certificate: Some(d.cert.to_proto()),
                    addrs: d.addrs.clone(),
                    updated_ms: d.updated_ms,
                })
                .collect(),
        }
        .encode_to_vec();
        let mut msg = RECORD_DOMAIN.to_vec();
        msg.extend_from_slice(&body);
        proto::PersonRecord {
            signature: identity.sign(&msg).to_vec(),
            body,
        }
        .encode_to_vec()
    }

    /// Checks `bytes`, found under DHT key `key`, at time `now_ms`.
    pub fn verify(bytes: &[u8], key: &[u8], now_ms: u64) -> Result<PersonRecord, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge);
        }
        let outer = proto::PersonRecord::decode(bytes).map_err(|_| RecordError::Decode)?;
        let body =
            proto::PersonRecordBody::decode(&outer.body[..]).map_err(|_| RecordError::Decode)?;
        let identity = IdentityId::from_slice(&body.identity)
            .ok_or(RecordError::Field("identity", "not 32 bytes"))?;
        if dht_key(&identity) != key {
            return Err(RecordError::WrongKey);
        }
        let signature: [u8; 64] = outer
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| RecordError::Field("signature", "not 64 bytes"))?;
        let public = PublicKey::from_bytes(&identity.0)
            .map_err(|_| RecordError::Field("identity", "not a valid key"))?;
        let mut msg = RECORD_DOMAIN.to_vec();
        msg.extend_from_slice(&outer.body);
        if !public.verify(&msg, &signature) {
            return Err(RecordError::BadSignature);
        }
        if body.expires_ms <= now_ms || body.expires_ms > now_ms.saturating_add(MAX_LIFETIME_MS) {
            return Err(RecordError::Expired);
        }
        // A seq far ahead of every clock (a device whose clock was wrong)
        // would otherwise shadow every later record for good.
        if body.seq > now_ms.saturating_add(MAX_LIFETIME_MS) {
            return Err(RecordError::Field("seq", "more than 72 hours ahead"));
        }
        if body.devices.is_empty() || body.devices.len() > MAX_DEVICES {
            return Err(RecordError::Field("devices", "none, or more than 16"));
        }
        let mut devices = Vec::with_capacity(body.devices.len());
        for d in &body.devices {
            let cert = d
                .certificate
                .as_ref()
                .ok_or(RecordError::BadDevice)
                .and_then(|c| DeviceCert::from_proto(c).map_err(|_| RecordError::BadDevice))?;
            if cert.identity != identity {
                return Err(RecordError::BadDevice);
            }
            if d.addrs.len() > MAX_ADDRS || d.addrs.iter().any(|a| a.len() > MAX_ADDR_BYTES) {
                return Err(RecordError::Field("addrs", "more than 8, or one too long"));
            }
            if devices
                .iter()
                .any(|o: &DeviceReach| o.cert.device == cert.device)
            {
                return Err(RecordError::Field("devices", "a device listed twice"));
            }
            // An entry renewed "in the future" would be kept by the other
            // devices for as long.
            if d.updated_ms > now_ms.saturating_add(MAX_LIFETIME_MS) {
                return Err(RecordError::Field("updated_ms", "more than 72 hours ahead"));
            }
            devices.push(DeviceReach {
                cert,
                addrs: d.addrs.clone(),
                updated_ms: d.updated_ms,
            });
        }
        Ok(PersonRecord {
            identity,
            seq: body.seq,
            expires_ms: body.expires_ms,
            devices,
        })
    }

    /// The devices of the record.
    pub fn device_ids(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.devices.iter().map(|d| d.cert.device)
    }

    /// The record a device publishes at `now_ms`: its own entry `mine`,
    /// renewed, beside the entries of the person's other devices in
    /// `found` (the newest record the DHT held) that were renewed within
    /// [`LIFETIME_MS`]. Its seq is larger than `found`'s.
    pub fn renewed(
        identity: IdentityId,
        mine: DeviceReach,
        found: Option<&PersonRecord>,
        now_ms: u64,
    ) -> PersonRecord {
        let mut devices = vec![DeviceReach {
            updated_ms: now_ms,
            ..mine
        }];
        let mut seq = now_ms;
        if let Some(found) = found.filter(|f| f.identity == identity) {
            seq = seq.max(found.seq.saturating_add(1));
            let mut others: Vec<&DeviceReach> = found
                .devices
                .iter()
                .filter(|d| d.cert.device != devices[0].cert.device)
                .filter(|d| d.updated_ms.saturating_add(LIFETIME_MS) > now_ms)
                .collect();
            // The most recently renewed first, if there are too many.
            others.sort_by_key(|d| std::cmp::Reverse(d.updated_ms));
            devices.extend(others.into_iter().take(MAX_DEVICES - 1).cloned());
        }
        PersonRecord {
            identity,
            seq,
            expires_ms: now_ms + LIFETIME_MS,
            devices,
        }
    }
}

/// Of several records found for one key, the newest valid one.
pub fn newest<'a>(
    found: impl IntoIterator<Item = &'a [u8]>,
    key: &[u8],
    now_ms: u64,
) -> Option<PersonRecord> {
    found
        .into_iter()
        .filter_map(|b| PersonRecord::verify(b, key, now_ms).ok())
        .max_by_key(|r| r.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceKey;

    const NOW: u64 = 1_800_000_000_000;

    fn record(identity: &IdentityKey, device: &DeviceKey, seq: u64) -> PersonRecord {
        PersonRecord {
            identity: identity.id(),
            seq,
            expires_ms: NOW + LIFETIME_MS,
            devices: vec![DeviceReach {
                cert: DeviceCert::issue(identity, device, NOW - 1000),
                addrs: vec!["/ip4/203.0.113.10/tcp/4001/p2p-circuit".into()],
                updated_ms: NOW,
            }],
        }
    }

    #[test]
    fn a_signed_record_verifies_under_its_key_and_nowhere_else() {
        let (id, dev) = (
            IdentityKey::generate().unwrap(),
            DeviceKey::generate().unwrap(),
        );
        let r = record(&id, &dev, 7);
        let bytes = r.sign(&id);
        let key = dht_key(&id.id());
        assert_eq!(PersonRecord::verify(&bytes, &key, NOW), Ok(r));
        let other = dht_key(&IdentityKey::generate().unwrap().id());
        assert_eq!(
            PersonRecord::verify(&bytes, &other, NOW),
            Err(RecordError::WrongKey)
        );
    }

    #[test]
    fn forged_records_are_refused() {
        let (id, dev) = (
            IdentityKey::generate().unwrap(),
            DeviceKey::generate().unwrap(),
        );
        let key = dht_key(&id.id());
        // Signed by another identity but claiming this one.
        let mallory = IdentityKey::generate().unwrap();
        let mut forged = record(&id, &dev, 9);
        let bytes = {
            let honest = forged.sign(&id);
            let mut outer = proto::PersonRecord::decode(&honest[..]).unwrap();
            let mut msg = RECORD_DOMAIN.to_vec();
            msg.extend_from_slice(&outer.body);
            outer.signature = mallory.sign(&msg).to_vec();
            outer.encode_to_vec()
        };
        assert_eq!(
            PersonRecord::verify(&bytes, &key, NOW),
            Err(RecordError::BadSignature)
        );
        // Signed by the identity but listing mallory's device.
        let mdev = DeviceKey::generate().unwrap();
        forged.devices[0].cert = DeviceCert::issue(&mallory, &mdev, NOW);
        assert_eq!(
            PersonRecord::verify(&forged.sign(&id), &key, NOW),
            Err(RecordError::BadDevice)
        );
        // Expired, or good for too long.
        let mut old = record(&id, &dev, 1);
        old.expires_ms = NOW;
        assert_eq!(
            PersonRecord::verify(&old.sign(&id), &key, NOW),
            Err(RecordError::Expired)
        );
        old.expires_ms = NOW + MAX_LIFETIME_MS + 1;
        assert_eq!(
            PersonRecord::verify(&old.sign(&id), &key, NOW),
            Err(RecordError::Expired)
        );
        // A seq from a clock years ahead, which would shadow every later one.
        let mut ahead = record(&id, &dev, NOW + 10 * MAX_LIFETIME_MS);
        assert!(matches!(
            PersonRecord::verify(&ahead.sign(&id), &key, NOW),
            Err(RecordError::Field("seq", _))
        ));
        // An entry renewed years ahead.
        ahead.seq = 1;
        ahead.devices[0].updated_ms = NOW + 10 * MAX_LIFETIME_MS;
        assert!(matches!(
            PersonRecord::verify(&ahead.sign(&id), &key, NOW),
            Err(RecordError::Field("updated_ms", _))
        ));
        ahead.devices[0].updated_ms = NOW;
        // The same device twice.
        ahead.devices.push(ahead.devices[0].clone());
        assert!(matches!(
            PersonRecord::verify(&ahead.sign(&id), &key, NOW),
            Err(RecordError::Field("devices", _))
        ));
        // Garbage and oversize.
        assert_eq!(
            PersonRecord::verify(b"\xff\xff", &key, NOW),
            Err(RecordError::Decode)
        );
        assert_eq!(
            PersonRecord::verify(&vec![0; MAX_RECORD_BYTES + 1], &key, NOW),
            Err(RecordError::TooLarge)
        );
    }

    #[test]
    fn each_device_keeps_the_others_entries_until_they_go_stale() {
        let id = IdentityKey::generate().unwrap();
        let (laptop, phone, old) = (
            DeviceKey::generate().unwrap(),
            DeviceKey::generate().unwrap(),
            DeviceKey::generate().unwrap(),
        );
        let entry = |d: &DeviceKey, updated_ms| DeviceReach {
            cert: DeviceCert::issue(&id, d, NOW - 1000),
            addrs: vec![format!("/ip4/203.0.113.{}/tcp/1", updated_ms % 200)],
            updated_ms,
        };
        // The DHT holds a record the laptop made, with an old entry for a
        // device not seen for more than a day, and a seq from a clock a
        // little ahead.
        let held = PersonRecord {
            identity: id.id(),
            seq: NOW + 5000,
            expires_ms: NOW + LIFETIME_MS,
            devices: vec![entry(&laptop, NOW - 10), entry(&old, NOW - LIFETIME_MS)],
        };
        let mine = entry(&phone, 0);
        let made = PersonRecord::renewed(id.id(), mine, Some(&held), NOW);
        assert_eq!(made.seq, NOW + 5001, "newer than what it replaces");
        let devices: Vec<DeviceId> = made.device_ids().collect();
        assert_eq!(devices, [phone.id(), laptop.id()]);
        assert_eq!(made.devices[0].updated_ms, NOW);
        assert_eq!(made.devices[1], held.devices[0], "kept as found");
        let key = dht_key(&id.id());
        assert_eq!(PersonRecord::verify(&made.sign(&id), &key, NOW), Ok(made));
        // Nothing found, or someone else's record: only its own entry.
        let alone = PersonRecord::renewed(id.id(), entry(&phone, 0), None, NOW);
        assert_eq!((alone.seq, alone.devices.len()), (NOW, 1));
    }

    #[test]
    fn the_newest_valid_record_wins() {
        let (id, dev) = (
            IdentityKey::generate().unwrap(),
            DeviceKey::generate().unwrap(),
        );
        let key = dht_key(&id.id());
        let old = record(&id, &dev, 1).sign(&id);
        let new = record(&id, &dev, 2).sign(&id);
        let mallory = IdentityKey::generate().unwrap();
        let mut fake = record(&mallory, &dev, 99);
        fake.identity = mallory.id();
        let fake = fake.sign(&mallory);
        let found = newest([&old[..], &fake[..], &new[..]], &key, NOW).unwrap();
        assert_eq!(found.seq, 2);
    }
}
