//! What an address says about the path to a peer: through a relay, on a
//! private network (a LAN, this machine), or across the internet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Whether `addr` goes through a relay (`…/p2p-circuit/…`).
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The IP address `addr` starts with, if it does.
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// Whether `ip` is only reachable on a private network: loopback, RFC 1918,
/// shared (CGNAT), link-local, unique-local, unspecified. Everything else
/// counts as public, documentation ranges included (the NAT tests use
/// 203.0.113.0/24 as their internet, inside namespaces).
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_v4(v4);
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6 == Ipv6Addr::UNSPECIFIED
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || (a == 100 && (64..128).contains(&b))
}

/// Whether `addr` is a direct address on a private network.
pub fn is_private(addr: &Multiaddr) -> bool {
    !is_relayed(addr) && ip_of(addr).is_some_and(is_private_ip)
}

/// Whether `addr` is a direct address others on the internet could use.
pub fn is_public(addr: &Multiaddr) -> bool {
    !is_relayed(addr) && ip_of(addr).is_some_and(|ip| !is_private_ip(ip))
}

/// Whether `addr` can work from anywhere on the internet: a public
/// address, or a circuit through a relay at one. What a stranger's record
/// may make this node dial (never a LAN or loopback address).
pub fn is_internet(addr: &Multiaddr) -> bool {
    ip_of(addr).is_some_and(|ip| !is_private_ip(ip))
}

/// The peer id an address ends with (`…/p2p/<id>`), if any.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last()? {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    }
}

/// The relay a circuit address goes through (the peer id before
/// `/p2p-circuit`), if it is one.
pub fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

/// `addr` without a trailing `/p2p/<id>`.
pub fn without_peer(addr: &Multiaddr) -> Multiaddr {
    let mut a = addr.clone();
    if matches!(a.iter().last(), Some(Protocol::P2p(_))) {
        a.pop();
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_are_sorted_by_path() {
        assert!(is_private(&a("/ip4/10.231.0.4/tcp/4610")));
        assert!(is_private(&a("/ip4/127.0.0.1/udp/4610/quic-v1")));
        assert!(is_private(&a("/ip4/192.168.1.2/tcp/1")));
        assert!(is_private(&a("/ip4/100.64.0.1/tcp/1")));
        assert!(is_private(&a("/ip6/fe80::1/tcp/1")));
        assert!(is_public(&a("/ip4/203.0.113.10/tcp/4610")));
        assert!(is_public(&a("/ip4/8.8.8.8/udp/4610/quic-v1")));
        assert!(is_public(&a("/ip6/2001:db8::1/tcp/1")));
        let peer = PeerId::random();
        let circuit = a(&format!(
            "/ip4/203.0.113.10/tcp/4610/p2p/{peer}/p2p-circuit/p2p/{}",
            PeerId::random()
        ));
        assert!(is_relayed(&circuit));
        assert_eq!(relay_of(&circuit), Some(peer));
        assert_eq!(relay_of(&a("/ip4/203.0.113.10/tcp/4610")), None);
        assert!(!is_public(&circuit) && !is_private(&circuit));
        assert!(is_internet(&circuit) && is_internet(&a("/ip4/8.8.8.8/tcp/1")));
        assert!(!is_internet(&a(&format!(
            "/ip4/10.0.0.1/tcp/1/p2p/{peer}/p2p-circuit"
        ))));
        assert!(!is_internet(&a("/ip4/127.0.0.1/tcp/1")));
        assert!(!is_internet(&a("/dns4/example.com/tcp/1")));
        let with = a(&format!("/ip4/203.0.113.10/tcp/4610/p2p/{peer}"));
        assert_eq!(peer_of(&with), Some(peer));
        assert_eq!(without_peer(&with), a("/ip4/203.0.113.10/tcp/4610"));
        assert_eq!(peer_of(&without_peer(&with)), None);
    }
}
