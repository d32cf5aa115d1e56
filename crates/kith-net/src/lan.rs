//! The peers mDNS finds on the LAN, and which of them to dial.
//!
//! A node used to dial every peer mDNS reported. On a LAN of N nodes that is
//! a full mesh: N − 1 connections a node, each with its own identify, ping
//! and gossip traffic, and N² neighbour entries on the segment. Gossip does
//! not need it: a random graph where every node dials a few others is
//! connected, and gossipsub's mesh spreads a message over it in a few hops.
//!
//! So a node dials LAN peers, at random, only while it has fewer than
//! [`LAN_TARGET`] connections. Others dial it too, so its degree is about
//! twice that. When one of its gossip topics (a group's) has no connected
//! peer, it dials [`EXPLORE_PER_ROUND`] more a round, up to [`MAX_LAN_DIALS`]
//! connections it made, until a peer of that topic is connected. A dial that
//! fails backs the peer off, doubling up to [`BACKOFF_MAX`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use rand::seq::IteratorRandom;

/// Connections a node seeks on the LAN before it stops dialling.
pub const LAN_TARGET: usize = 8;
/// Connections this node dialled on the LAN, at most, exploring included.
pub const MAX_LAN_DIALS: usize = 48;
/// Extra dials a round while a topic has no connected peer.
pub const EXPLORE_PER_ROUND: usize = 2;
/// Peers found by mDNS that are remembered, at most.
pub const MAX_KNOWN: usize = 1024;
/// Backoff after a failed dial: first and longest.
pub const BACKOFF_MIN: Duration = Duration::from_secs(2);
pub const BACKOFF_MAX: Duration = Duration::from_secs(120);
/// A dial that has reported neither success nor failure by then counts as
/// failed (longer than a TCP or QUIC handshake on any LAN).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct Known {
    addr: Multiaddr,
    /// Not dialled before this.
    next: Instant,
    backoff: Duration,
    /// A dial is under way, and counts as failed if still so then.
    dialing: Option<Instant>,
}

/// The LAN peers mDNS reported, and the dialling policy over them.
#[derive(Debug, Default)]
pub struct LanPeers {
    known: HashMap<PeerId, Known>,
}

/// What a round of dialling needs to know of the swarm.
pub struct Round<'a> {
    pub now: Instant,
    /// Connected peers found by mDNS (peers across the internet do not
    /// make the LAN's gossip graph connected).
    pub connected: usize,
    /// Connections this node dialled to LAN peers that are open.
    pub dialled: usize,
    /// Whether some topic this node is on has no connected peer.
    pub topic_alone: bool,
    pub is_connected: &'a dyn Fn(&PeerId) -> bool,
}

impl LanPeers {
    /// mDNS reported `peer` at `addr`.
    pub fn found(&mut self, peer: PeerId, addr: Multiaddr, now: Instant) {
        if let Some(k) = self.known.get_mut(&peer) {
            k.addr = addr;
            return;
        }
        if self.known.len() >= MAX_KNOWN {
            return;
        }
        self.known.insert(
            peer,
            Known {
                addr,
                next: now,
                backoff: BACKOFF_MIN,
                dialing: None,
            },
        );
    }

    /// mDNS's record of `peer` expired.
    pub fn expired(&mut self, peer: &PeerId) {
        self.known.remove(peer);
    }

    pub fn contains(&self, peer: &PeerId) -> bool {
        self.known.contains_key(peer)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// A connection to `peer` is open: its backoff starts over.
    pub fn connected(&mut self, peer: &PeerId) {
        if let Some(k) = self.known.get_mut(peer) {
            k.dialing = None;
            k.backoff = BACKOFF_MIN;
        }
    }

    /// A dial to `peer` failed: try it again later.
    pub fn failed(&mut self, peer: &PeerId, now: Instant) {
        if let Some(k) = self.known.get_mut(peer) {
            k.dialing = None;
            k.next = now + k.backoff;
            k.backoff = (k.backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// The swarm would not start a dial to `peer` because one is already
    /// under way (the peer dialled by another path): not a failure, the
    /// dial under way will report.
    pub fn already_dialing(&mut self, peer: &PeerId, now: Instant) {
        if let Some(k) = self.known.get_mut(peer) {
            k.dialing = Some(now + DIAL_TIMEOUT);
        }
    }

    /// The peers to dial this round, marked as being dialled.
    pub fn choose(&mut self, round: &Round<'_>) -> Vec<(PeerId, Multiaddr)> {
        let dialing = self.known.values().filter(|k| k.dialing.is_some()).count();
        let room = MAX_LAN_DIALS.saturating_sub(round.dialled + dialing);
        let mut want = LAN_TARGET.saturating_sub(round.connected + dialing);
        if round.topic_alone {
            want = want.max(EXPLORE_PER_ROUND.saturating_sub(dialing));
        }
        let want = want.min(room);
        if want == 0 {
            return Vec::new();
        }
        let chosen: Vec<PeerId> = self
            .known
            .iter()
            .filter(|(p, k)| k.dialing.is_none() && k.next <= round.now && !(round.is_connected)(p))
            .map(|(p, _)| *p)
            .choose_multiple(&mut rand::rng(), want);
        chosen
            .into_iter()
            .map(|p| {
                let k = self.known.get_mut(&p).expect("chosen from known");
                k.dialing = Some(round.now + DIAL_TIMEOUT);
                (p, k.addr.clone())
            })
            .collect()
    }

    /// Dials reported neither way by [`DIAL_TIMEOUT`] count as failed.
    pub fn release_stale(&mut self, now: Instant) {
        let stale: Vec<PeerId> = self
            .known
            .iter()
            .filter(|(_, k)| k.dialing.is_some_and(|until| until <= now))
            .map(|(p, _)| *p)
            .collect();
        for p in stale {
            self.failed(&p, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: usize) -> Multiaddr {
        format!("/ip4/10.0.{}.{}/tcp/4610", i / 256, i % 256)
            .parse()
            .unwrap()
    }

    fn lan(n: usize, now: Instant) -> LanPeers {
        let mut l = LanPeers::default();
        for i in 0..n {
            l.found(PeerId::random(), addr(i), now);
        }
        l
    }

    fn round(now: Instant, connected: usize, dialled: usize, topic_alone: bool) -> Round<'static> {
        Round {
            now,
            connected,
            dialled,
            topic_alone,
            is_connected: &|_| false,
        }
    }

    #[test]
    fn dials_up_to_the_target_and_no_further() {
        let now = Instant::now();
        let mut l = lan(100, now);
        let first = l.choose(&round(now, 0, 0, false));
        assert_eq!(first.len(), LAN_TARGET);
        // Those dials are under way: nothing more until they settle.
        assert!(l.choose(&round(now, 0, 0, false)).is_empty());
        for (p, _) in &first {
            l.connected(p);
        }
        assert!(
            l.choose(&round(now, LAN_TARGET, LAN_TARGET, false))
                .is_empty()
        );
        // Peers that dialled this node count too.
        let mut l = lan(100, now);
        assert_eq!(l.choose(&round(now, LAN_TARGET - 3, 0, false)).len(), 3);
    }

    #[test]
    fn a_topic_without_peers_explores_within_the_cap() {
        let now = Instant::now();
        let mut l = lan(100, now);
        assert_eq!(
            l.choose(&round(now, LAN_TARGET, LAN_TARGET, true)).len(),
            EXPLORE_PER_ROUND
        );
        let mut l = lan(100, now);
        assert!(
            l.choose(&round(now, MAX_LAN_DIALS, MAX_LAN_DIALS, true))
                .is_empty()
        );
    }

    #[test]
    fn a_failed_peer_waits_its_backoff() {
        let now = Instant::now();
        let mut l = lan(1, now);
        let (p, _) = l.choose(&round(now, 0, 0, false))[0].clone();
        l.failed(&p, now);
        assert!(l.choose(&round(now, 0, 0, false)).is_empty());
        let later = now + BACKOFF_MIN;
        assert_eq!(l.choose(&round(later, 0, 0, false)).len(), 1);
        l.failed(&p, later);
        assert!(
            l.choose(&round(later + BACKOFF_MIN, 0, 0, false))
                .is_empty(),
            "the backoff doubled"
        );
    }

    #[test]
    fn a_dial_under_way_is_not_released_before_its_timeout() {
        let now = Instant::now();
        let mut l = lan(1, now);
        let (p, _) = l.choose(&round(now, 0, 0, false))[0].clone();
        // Longer than a backoff, shorter than a dial may take.
        let later = now + BACKOFF_MIN * 2;
        l.release_stale(later);
        assert!(l.choose(&round(later, 0, 0, false)).is_empty());
        // Refused as already under way: still one dial, no backoff grown.
        l.already_dialing(&p, later);
        let timeout = later + DIAL_TIMEOUT;
        l.release_stale(timeout);
        assert!(
            l.choose(&round(timeout, 0, 0, false)).is_empty(),
            "backs off"
        );
        assert_eq!(
            l.choose(&round(timeout + BACKOFF_MIN, 0, 0, false)).len(),
            1,
            "after the first backoff, not a doubled one"
        );
    }

    #[test]
    fn connected_peers_are_not_dialled() {
        let now = Instant::now();
        let mut l = lan(3, now);
        let r = Round {
            now,
            connected: 0,
            dialled: 0,
            topic_alone: false,
            is_connected: &|_| true,
        };
        assert!(l.choose(&r).is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let now = Instant::now();
        let l = lan(MAX_KNOWN + 10, now);
        assert_eq!(l.len(), MAX_KNOWN);
    }
}
