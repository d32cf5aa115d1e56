//! How far this node reaches: whether the internet can dial it, and
//! through which relays it can be reached when it cannot.
//!
//! rust-libp2p has no automatic relay selection, so kith chooses: a node
//! that is not public reserves a circuit on the first [`MAX_RELAYS`] public
//! peers it is connected to directly that offer to relay (identify lists
//! the relay's HOP protocol), known peers and bootstrap nodes first since
//! they are the ones it dials.

use std::collections::HashMap;

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::address::without_peer;

/// Relays a node behind a NAT keeps a reservation on.
pub const MAX_RELAYS: usize = 2;

#[derive(Debug)]
struct Reservation {
    listener: ListenerId,
    circuit: Multiaddr,
    accepted: bool,
}

/// See the module's documentation.
#[derive(Debug)]
pub struct Reach {
    /// Reachable from the internet: declared (`--public-addr`) or confirmed
    /// by AutoNAT.
    pub public: bool,
    reservations: HashMap<PeerId, Reservation>,
}

impl Reach {
    pub fn new(public: bool) -> Reach {
        Reach {
            public,
            reservations: HashMap::new(),
        }
    }

    /// The circuit address to listen on through `relay`, reached at `addr`,
    /// if this node wants a reservation there.
    pub fn wants_relay(&self, relay: PeerId, addr: &Multiaddr) -> Option<Multiaddr> {
        if self.public
            || self.reservations.contains_key(&relay)
            || self.reservations.len() >= MAX_RELAYS
        {
            return None;
        }
        Some(
            without_peer(addr)
                .with(Protocol::P2p(relay))
                .with(Protocol::P2pCircuit),
        )
    }

    /// A reservation was asked for through `relay`, as `listener`.
    pub fn reserving(&mut self, relay: PeerId, listener: ListenerId, circuit: Multiaddr) {
        self.reservations.insert(
            relay,
            Reservation {
                listener,
                circuit,
                accepted: false,
            },
        );
    }

    /// `relay` accepted the reservation.
    pub fn reserved(&mut self, relay: PeerId) {
        if let Some(r) = self.reservations.get_mut(&relay) {
            r.accepted = true;
        }
    }

    /// A listener closed; if it was a reservation, it is gone (the relay
    /// refused, or the connection to it closed) and may be asked again.
    pub fn closed(&mut self, listener: ListenerId) {
        self.reservations.retain(|_, r| r.listener != listener);
    }

    /// Circuit addresses of the accepted reservations.
    pub fn relays(&self) -> Vec<Multiaddr> {
        self.reservations
            .values()
            .filter(|r| r.accepted)
            .map(|r| r.circuit.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_behind_a_nat_reserves_on_a_few_relays_once_each() {
        let addr: Multiaddr = "/ip4/203.0.113.10/tcp/4610".parse().unwrap();
        let mut reach = Reach::new(false);
        let relays: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let circuit = reach.wants_relay(relays[0], &addr).unwrap();
        assert_eq!(
            circuit.to_string(),
            format!("/ip4/203.0.113.10/tcp/4610/p2p/{}/p2p-circuit", relays[0])
        );
        reach.reserving(relays[0], ListenerId::next(), circuit);
        assert!(reach.wants_relay(relays[0], &addr).is_none());
        assert!(reach.relays().is_empty(), "not accepted yet");
        reach.reserved(relays[0]);
        assert_eq!(reach.relays().len(), 1);
        let second = ListenerId::next();
        reach.reserving(
            relays[1],
            second,
            reach.wants_relay(relays[1], &addr).unwrap(),
        );
        assert!(
            reach.wants_relay(relays[2], &addr).is_none(),
            "{MAX_RELAYS} at most"
        );
        reach.closed(second);
        assert!(reach.wants_relay(relays[2], &addr).is_some());
        assert!(Reach::new(true).wants_relay(relays[2], &addr).is_none());
    }
}
