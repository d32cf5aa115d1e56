//! Addresses peers saw this node at, handed to the swarm as they were seen.
//!
//! Hole punching (DCUtR) tries the addresses the swarm holds as external
//! candidates, which identify feeds. But identify 0.48 rewrites an observed
//! address whose port is not a listen port to the listen port: behind a NAT
//! that maps port 4610 to 29538, the relay saw `:29538` and the candidate
//! became `:4610`, a port the NAT never mapped, and every punch failed. This
//! behaviour reports the observed address untouched, so the mapping a public
//! peer really saw is among the candidates.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Candidates waiting to be handed to the swarm, at most.
const MAX_QUEUED: usize = 32;

/// See the module's documentation.
#[derive(Debug, Default)]
pub struct Observed {
    queue: VecDeque<Multiaddr>,
}

impl Observed {
    /// A peer saw this node at `addr`.
    pub fn seen(&mut self, addr: Multiaddr) {
        if self.queue.len() < MAX_QUEUED && !self.queue.contains(&addr) {
            self.queue.push_back(addr);
        }
    }
}

impl NetworkBehaviour for Observed {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        match self.queue.pop_front() {
            Some(addr) => Poll::Ready(ToSwarm::NewExternalAddrCandidate(addr)),
            None => Poll::Pending,
        }
    }
}
