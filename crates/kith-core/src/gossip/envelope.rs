//! The gossip envelope: one signed change and the certificate of the
//! device that signed it, so that any receiver can check it alone
//! (proto/README.md §12).

use prost::Message;

use crate::signed::VerifyError;
use crate::{CertError, DeviceCert, SignedChange, proto};

/// Largest gossip message: one signed change with its bodies and a
/// certificate. Gossipsub refuses larger ones before kith sees them; the
/// same limit is checked here so that no path depends on the transport
/// having done it.
pub const MAX_GOSSIP_BYTES: usize = 64 * 1024;

/// A change as gossiped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipChange {
    pub change: SignedChange,
    pub certificate: DeviceCert,
}

/// Why bytes are not a gossip envelope. Every variant is the relay's fault:
/// an honest node forwards only envelopes it could read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("gossip message is {0} bytes, more than the limit of {MAX_GOSSIP_BYTES}")]
    TooLarge(usize),
    #[error("gossip message is not valid protobuf (truncated or garbage)")]
    Decode,
    #[error("gossip message carries no change")]
    NoChange,
    #[error("gossip message carries no certificate")]
    NoCertificate,
    #[error("gossip message's certificate: {0}")]
    Certificate(#[from] CertError),
    #[error("gossip message's change: {0}")]
    Change(#[from] VerifyError),
    #[error("gossip message's certificate is another device's than the change's signer")]
    DeviceMismatch,
}

impl GossipChange {
    /// The wire form of `change` with `certificate` (already in wire form:
    /// a node sends its own certificate with every change and encodes it once).
    pub fn encode_parts(change: &SignedChange, certificate: &proto::DeviceCertificate) -> Vec<u8> {
        proto::GossipChange {
            change: Some(change.to_proto()),
            certificate: Some(certificate.clone()),
        }
        .encode_to_vec()
    }

    pub fn encode(&self) -> Vec<u8> {
        Self::encode_parts(&self.change, &self.certificate.to_proto())
    }

    /// Reads an envelope: its length, then its fields, then that the
    /// certificate names the change's device. Neither signature is checked
    /// here: that is the intake's work (the certificate is cached).
    pub fn decode(bytes: &[u8]) -> Result<GossipChange, EnvelopeError> {
        if bytes.len() > MAX_GOSSIP_BYTES {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        let p = proto::GossipChange::decode(bytes).map_err(|_| EnvelopeError::Decode)?;
        let certificate =
            DeviceCert::parse_proto(&p.certificate.ok_or(EnvelopeError::NoCertificate)?)?;
        let change = SignedChange::from_proto(p.change.ok_or(EnvelopeError::NoChange)?)?;
        if certificate.device != change.device {
            return Err(EnvelopeError::DeviceMismatch);
        }
        Ok(GossipChange {
            change,
            certificate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceKey, DocId, IdentityKey};

    fn sample() -> GossipChange {
        let alice = IdentityKey::from_secret_bytes(&[1; 32]);
        let laptop = DeviceKey::from_secret_bytes(&[2; 32]);
        let mut doc =
            automerge::AutoCommit::new().with_actor(crate::actor_id(&laptop.id(), &[9; 8]));
        crate::schema::profile::set_name(&mut doc, "Alice").unwrap();
        let raw = doc
            .commit()
            .map(|_| doc.get_last_local_change().unwrap().raw_bytes().to_vec());
        let change = SignedChange::sign(
            DocId::profile(alice.id()),
            raw.unwrap(),
            &laptop,
            alice.id(),
        )
        .unwrap()
        .into_inner();
        GossipChange {
            change,
            certificate: DeviceCert::issue(&alice, &laptop, 1),
        }
    }

    #[test]
    fn round_trips() {
        let g = sample();
        assert_eq!(GossipChange::decode(&g.encode()).unwrap(), g);
    }

    #[test]
    fn every_truncation_is_refused_or_reads_as_something_else() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            // A prefix either fails to decode or lacks a field; it never
            // reads back as the whole envelope.
            if let Ok(g) = GossipChange::decode(&bytes[..len]) {
                assert_ne!(g, sample(), "a {len}-byte prefix read as the whole");
            }
        }
        assert_eq!(
            GossipChange::decode(&bytes[..bytes.len() - 1]).err(),
            Some(EnvelopeError::Decode)
        );
    }

    #[test]
    fn oversized_is_refused_before_decoding() {
        let big = vec![0u8; MAX_GOSSIP_BYTES + 1];
        assert_eq!(
            GossipChange::decode(&big),
            Err(EnvelopeError::TooLarge(MAX_GOSSIP_BYTES + 1))
        );
    }

    #[test]
    fn a_certificate_of_another_device_is_refused() {
        let mut g = sample();
        let other = DeviceKey::from_secret_bytes(&[3; 32]);
        g.certificate = DeviceCert::issue(&IdentityKey::from_secret_bytes(&[1; 32]), &other, 1);
        assert_eq!(
            GossipChange::decode(&g.encode()),
            Err(EnvelopeError::DeviceMismatch)
        );
    }
}
