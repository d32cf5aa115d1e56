//! Device certificates: an identity key's signed statement that a device key
//! acts for it. A change is accepted only from a certified device.

use crate::signature::PublicKey;
use prost::Message;

use crate::{DeviceId, DeviceKey, IdentityId, IdentityKey, proto};

/// Domain separation for the identity's signature on a certificate.
pub const CERT_DOMAIN: &[u8] = b"kith/device-cert/v1";
/// Domain separation for the device's counter-signature: the device agrees
/// to act for that identity, so nobody can claim someone else's device.
pub const DEVICE_ACCEPT_DOMAIN: &[u8] = b"kith/device-accept/v1";

/// A certificate whose signature has been checked (or that this node made).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCert {
    pub identity: IdentityId,
    pub device: DeviceId,
    pub issued_at_ms: u64,
    /// The identity key's signature over [`DeviceCert::signed_bytes`] with [`CERT_DOMAIN`].
    pub signature: [u8; 64],
    /// The device key's signature over the same fields with [`DEVICE_ACCEPT_DOMAIN`].
    pub device_signature: [u8; 64],
}

/// Why a certificate was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    #[error("device certificate is not valid protobuf")]
    Decode,
    #[error("device certificate field `{0}` has the wrong length")]
    FieldLength(&'static str),
    #[error("device certificate names a key that is not a valid ed25519 point")]
    InvalidKey,
    #[error("device certificate's identity signature does not verify")]
    BadSignature,
    #[error("device certificate's device counter-signature does not verify")]
    BadDeviceSignature,
}

impl DeviceCert {
    /// `identity` certifies `device`.
    pub fn issue(identity: &IdentityKey, device: &DeviceKey, issued_at_ms: u64) -> DeviceCert {
        let (id, dev) = (identity.id(), device.id());
        let signature = identity.sign(&Self::signed_bytes(CERT_DOMAIN, &id, &dev, issued_at_ms));
        let device_signature = device.sign(&Self::signed_bytes(
            DEVICE_ACCEPT_DOMAIN,
            &id,
            &dev,
            issued_at_ms,
        ));
        DeviceCert {
            identity: id,
            device: dev,
            issued_at_ms,
            signature,
            device_signature,
        }
    }

    /// Exactly the bytes signed under `domain` ([`CERT_DOMAIN`] by the
    /// identity, [`DEVICE_ACCEPT_DOMAIN`] by the device).
    pub fn signed_bytes(
        domain: &[u8],
        identity: &IdentityId,
        device: &DeviceId,
        issued_at_ms: u64,
    ) -> Vec<u8> {
        let mut m = Vec::with_capacity(domain.len() + 72);
        m.extend_from_slice(domain);
        m.extend_from_slice(&identity.0);
        m.extend_from_slice(&device.0);
        m.extend_from_slice(&issued_at_ms.to_be_bytes());
        m
    }

    /// Checks both signatures by proto/README.md §2.1.
    pub fn verify(&self) -> Result<(), CertError> {
        let identity =
            PublicKey::from_bytes(&self.identity.0).map_err(|_| CertError::InvalidKey)?;
        let device = PublicKey::from_bytes(&self.device.0).map_err(|_| CertError::InvalidKey)?;
        let msg = Self::signed_bytes(CERT_DOMAIN, &self.identity, &self.device, self.issued_at_ms);
        if !identity.verify(&msg, &self.signature) {
            return Err(CertError::BadSignature);
        }
        let msg = Self::signed_bytes(
            DEVICE_ACCEPT_DOMAIN,
            &self.identity,
            &self.device,
            self.issued_at_ms,
        );
        if !device.verify(&msg, &self.device_signature) {
            return Err(CertError::BadDeviceSignature);
        }
        Ok(())
    }

    /// The wire form.
    pub fn to_proto(&self) -> proto::DeviceCertificate {
        proto::DeviceCertificate {
            identity: self.identity.0.to_vec(),
            device: self.device.0.to_vec(),
            issued_at_ms: self.issued_at_ms,
            signature: self.signature.to_vec(),
            device_signature: self.device_signature.to_vec(),
        }
    }

    /// Reads and verifies a certificate from its wire form.
    pub fn from_proto(p: &proto::DeviceCertificate) -> Result<DeviceCert, CertError> {
        let cert = DeviceCert::parse_proto(p)?;
        cert.verify()?;
        Ok(cert)
    }

    /// Reads the fields of a certificate without checking its signatures:
    /// for comparing with one already verified. Use [`DeviceCert::from_proto`]
    /// for anything else.
    pub fn parse_proto(p: &proto::DeviceCertificate) -> Result<DeviceCert, CertError> {
        Ok(DeviceCert {
            identity: IdentityId::from_slice(&p.identity)
                .ok_or(CertError::FieldLength("identity"))?,
            device: DeviceId::from_slice(&p.device).ok_or(CertError::FieldLength("device"))?,
            issued_at_ms: p.issued_at_ms,
            signature: p
                .signature
                .as_slice()
                .try_into()
                .map_err(|_| CertError::FieldLength("signature"))?,
            device_signature: p
                .device_signature
                .as_slice()
                .try_into()
                .map_err(|_| CertError::FieldLength("device_signature"))?,
        })
    }

    /// Protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// Reads and verifies protobuf bytes.
    pub fn decode(bytes: &[u8]) -> Result<DeviceCert, CertError> {
        let p = proto::DeviceCertificate::decode(bytes).map_err(|_| CertError::Decode)?;
        Self::from_proto(&p)
    }

    /// Reads protobuf bytes without checking the signatures: only for bytes
    /// written after a [`DeviceCert::decode`] or [`DeviceCert::from_proto`]
    /// succeeded, such as a store's own table of certified devices.
    pub fn decode_verified_earlier(bytes: &[u8]) -> Result<DeviceCert, CertError> {
        let p = proto::DeviceCertificate::decode(bytes).map_err(|_| CertError::Decode)?;
        Self::parse_proto(&p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_verify_and_survive_encoding() {
        let alice = IdentityKey::from_secret_bytes(&[1; 32]);
        let laptop = DeviceKey::from_secret_bytes(&[2; 32]);
        let cert = DeviceCert::issue(&alice, &laptop, 1_700_000_000_000);
        assert_eq!(DeviceCert::decode(&cert.encode()).unwrap(), cert);
    }

    #[test]
    fn nobody_can_claim_someone_elses_device() {
        let alice_laptop = DeviceKey::from_secret_bytes(&[2; 32]);
        let mallory = IdentityKey::from_secret_bytes(&[4; 32]);
        let mallory_device = DeviceKey::from_secret_bytes(&[5; 32]);
        // Mallory signs a certificate naming alice's device, but only has her own device key to counter-sign.
        let mut cert = DeviceCert::issue(&mallory, &mallory_device, 1);
        cert.device = alice_laptop.id();
        cert.signature = mallory.sign(&DeviceCert::signed_bytes(
            CERT_DOMAIN,
            &cert.identity,
            &cert.device,
            1,
        ));
        assert_eq!(cert.verify(), Err(CertError::BadDeviceSignature));
    }

    #[test]
    fn a_certificate_for_another_device_does_not_verify() {
        let alice = IdentityKey::from_secret_bytes(&[1; 32]);
        let laptop = DeviceKey::from_secret_bytes(&[2; 32]);
        let mallory_device = DeviceKey::from_secret_bytes(&[3; 32]);
        let mut cert = DeviceCert::issue(&alice, &laptop, 1);
        cert.device = mallory_device.id();
        assert_eq!(cert.verify(), Err(CertError::BadSignature));
    }
}
