//! Gossip in the engine: the [`Intake`](crate::gossip::Intake)'s decisions
//! become a verdict for gossipsub, offences against the relay and a
//! versions exchange for missing dependencies; local changes go out by the
//! one route of [`outgoing`].

use super::{Engine, MessageRef, Output};
use crate::gossip::{Topic, outgoing};
use crate::sync::Replica;
use crate::{DeviceId, SignedChange};

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gossip_received(
        &mut self,
        relay: DeviceId,
        topic: &Topic,
        message: MessageRef,
        data: &[u8],
        now_ms: u64,
        replica: &mut impl Replica,
        out: &mut Vec<Output>,
    ) {
        let peers = &self.peers;
        // Profiles of the identities of connected peers are kept: people met.
        let met = |who: &crate::IdentityId| peers.values().any(|p| p.identity == Some(*who));
        let decision = self.intake.receive(relay, topic, data, met, replica);
        out.push(Output::Validate {
            message,
            relay,
            verdict: decision.verdict,
        });
        if decision.dependencies_missing
            && let Some(p) = self.peers.get_mut(&relay)
        {
            p.versions_wanted = true;
        }
        if let Some(offence) = decision.offence {
            self.offence(relay, offence.to_string(), now_ms, out);
        }
    }

    pub(super) fn publish(
        &mut self,
        changes: &[SignedChange],
        replica: &impl Replica,
        out: &mut Vec<Output>,
    ) {
        let cert = self
            .own_certificate
            .get_or_insert_with(|| replica.certificate().to_proto());
        for change in changes {
            if let Some((topic, data)) = outgoing(change, cert, self.intake.channels()) {
                out.push(Output::Gossip { topic, data });
            }
        }
    }

    pub(super) fn refresh_groups(&mut self, replica: &impl Replica, out: &mut Vec<Output>) {
        let changes = self.intake.refresh_groups(replica);
        out.extend(changes.leave.into_iter().map(Output::Unsubscribe));
        out.extend(changes.join.into_iter().map(Output::Subscribe));
    }
}
