//! The task that owns the swarm. It turns commands from the node into swarm
//! calls and swarm events into [`Event`]s for the node. It never waits on the
//! node: events go out with `try_send`, so a slow node costs dropped gossip
//! (recovered by sync), never a stalled swarm.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use kith_core::DeviceId;
use libp2p::futures::StreamExt;
use libp2p::metrics::{Metrics, Recorder};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, dcutr, gossipsub, identify, kad, mdns, relay};
use tokio::sync::mpsc;

use crate::address::{ip_of, is_private, is_public, is_relayed};
use crate::behaviour::{
    Behaviour, BehaviourEvent, KAD_PROTOCOL, MAX_GROUP_TOPICS, MAX_PROBE_BYTES, PROBE_TOPIC,
    PUBLIC_TOPIC,
};
use crate::reach::Reach;
use kith_core::gossip::Verdict;

use crate::lan::{LanPeers, Round};
use crate::{Command, Event, Kind, NetSnapshot, PeerInfo, Via, device_of_peer};

/// One round of LAN dialling (see [`crate::lan`]).
fn dial_lan(
    swarm: &mut Swarm<Behaviour>,
    lan: &mut LanPeers,
    groups: &HashSet<gossipsub::TopicHash>,
    dialled: &HashSet<PeerId>,
) {
    if lan.is_empty() {
        return;
    }
    let now = Instant::now();
    lan.release_stale(now);
    let covered: HashSet<&gossipsub::TopicHash> = swarm
        .behaviour()
        .gossipsub
        .all_peers()
        .flat_map(|(_, topics)| topics)
        .collect();
    let topic_alone = groups.iter().any(|t| !covered.contains(t));
    let connected = swarm.connected_peers().filter(|p| lan.contains(p)).count();
    let is_connected = |p: &PeerId| swarm.is_connected(p);
    let chosen = lan.choose(&Round {
        now,
        connected,
        dialled: dialled.len(),
        topic_alone,
        is_connected: &is_connected,
    });
    for (peer, addr) in chosen {
        match swarm.dial(dial_peer(peer, addr)) {
            Ok(()) => {}
            Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {
                lan.already_dialing(&peer, now);
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "LAN dial refused");
                lan.failed(&peer, now);
            }
        }
    }
}

/// A relay whose circuit to a peer closed within [`CUT_WITHIN`] of opening,
/// leaving no other connection to that peer, is tried last for
/// [`CUT_FOR`]: a broken or spiteful relay that cuts circuits would
/// otherwise win every redial.
pub const CUT_WITHIN: Duration = Duration::from_secs(60);
pub const CUT_FOR: Duration = Duration::from_secs(600);
/// Relays remembered as cutting circuits, at most.
pub const MAX_CUT_RELAYS: usize = 64;

/// `addrs` without those through relays that cut circuits lately, unless
/// nothing else is left.
fn avoiding_cut(
    addrs: Vec<Multiaddr>,
    cut: &HashMap<PeerId, Instant>,
    now: Instant,
) -> Vec<Multiaddr> {
    let bad = |a: &Multiaddr| {
        crate::address::relay_of(a).is_some_and(|r| cut.get(&r).is_some_and(|until| *until > now))
    };
    if addrs.iter().all(bad) {
        addrs
    } else {
        addrs.into_iter().filter(|a| !bad(a)).collect()
    }
}

/// A person record the DHT did not take is put again after this.
pub const PUT_RETRY: Duration = Duration::from_secs(30);

/// Sync requests from peers that wait for the node's answer, at most.
pub const MAX_PENDING_RESPONSES: usize = 1024;
/// Redial backoff for remembered peers: first and longest wait.
pub const REDIAL_MIN: Duration = Duration::from_secs(1);
pub const REDIAL_MAX: Duration = Duration::from_secs(60);

struct Remembered {
    addr: Multiaddr,
    next: Instant,
    backoff: Duration,
    peer: Option<PeerId>,
}

/// How to dial `addr`. A private address is dialled from a fresh port:
/// reusing the listening port would turn two LAN nodes dialling each other
/// at once into a TCP simultaneous open, where both act as initiator and
/// the handshake fails. Anything else is dialled from the listening port
/// (libp2p's default), so that the NAT mapping a public peer sees is the
/// mapping of that port, the one hole punching needs.
fn dial_addr(addr: Multiaddr) -> DialOpts {
    match crate::address::peer_of(&addr) {
        Some(peer) => dial_peer(peer, addr),
        None => {
            let fresh = is_private(&addr);
            let opts = DialOpts::unknown_peer_id().address(addr);
            if fresh {
                opts.allocate_new_port().build()
            } else {
                opts.build()
            }
        }
    }
}

fn dial_peer(peer: PeerId, addr: Multiaddr) -> DialOpts {
    let fresh = is_private(&addr);
    let opts = DialOpts::peer_id(peer).addresses(vec![addr]);
    if fresh {
        opts.allocate_new_port().build()
    } else {
        opts.build()
    }
}

/// One open connection.
struct Conn {
    peer: PeerId,
    addr: Multiaddr,
    kind: Kind,
    /// This node dialled it.
    dialer: bool,
    /// The peer's observation of this node's address was taken.
    observed: bool,
    opened: Instant,
}

/// The peer's entry from its open connections: the best path first.
fn refresh(
    peers: &mut BTreeMap<PeerId, PeerInfo>,
    conns: &HashMap<ConnectionId, Conn>,
    peer: PeerId,
) {
    let Some(info) = peers.get_mut(&peer) else {
        return;
    };
    let mut mine: Vec<&Conn> = conns.values().filter(|c| c.peer == peer).collect();
    mine.sort_by_key(|c| c.kind);
    info.addresses = mine.iter().map(|c| c.addr.clone()).collect();
    info.addresses.dedup();
    if let Some(best) = mine.first() {
        info.kind = best.kind;
        info.address = Some(best.addr.clone());
    }
}

/// Runs the swarm until the command channel closes. `public` are the
/// addresses the node declared it is reachable at; `metrics` records what
/// the swarm does.
pub async fn run(
    mut swarm: Swarm<Behaviour>,
    public: Vec<Multiaddr>,
    metrics: Metrics,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) {
    for addr in &public {
        swarm.add_external_address(addr.clone());
    }
    let mut reach = Reach::new(!public.is_empty());
    let mut lookups = crate::dht::Lookups::default();
    // Rendezvous keys this node announces itself under, and lookups of
    // such keys under way.
    let mut provided: Vec<Vec<u8>> = Vec::new();
    let mut rendezvous: HashSet<kad::QueryId> = HashSet::new();
    // Provider records others placed here (this node as a DHT server).
    let mut providers = crate::dht::Providers::default();
    // The person record last put, its query, and when to put it again if
    // that failed (no DHT server reached yet, typically at start).
    let mut person_put: Option<(kad::Record, Option<kad::QueryId>, Option<Instant>)> = None;
    // What this node last told the node about its reach.
    let mut told: Option<Vec<Multiaddr>> = None;
    // Set by events that may change it.
    let mut reach_changed = true;
    let mut conns: HashMap<ConnectionId, Conn> = HashMap::new();
    // Connections hole punching made (DCUtR reports them by id, before or
    // after the swarm reports them established).
    let mut punched: HashSet<ConnectionId> = HashSet::new();
    // Relays that cut a circuit soon after it opened, until when.
    let mut cut: HashMap<PeerId, Instant> = HashMap::new();
    // Whether this node could be reached from the internet without a
    // relay: declared, or confirmed by AutoNAT for some addresses.
    let declared = !public.is_empty();
    let mut confirmed: HashSet<Multiaddr> = HashSet::new();
    let local = *swarm.local_peer_id();
    let topic = gossipsub::IdentTopic::new(PUBLIC_TOPIC);
    if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&topic) {
        tracing::error!(error = %e, "cannot subscribe to the public topic");
    }
    let probe_topic = gossipsub::IdentTopic::new(PROBE_TOPIC);
    let mut groups: HashSet<gossipsub::TopicHash> = HashSet::new();
    let mut outbound: HashMap<OutboundRequestId, (DeviceId, u64)> = HashMap::new();
    let mut inbound: HashMap<u64, ResponseChannel<kith_core::sync::Response>> = HashMap::new();
    let mut next_inbound = 0u64;
    let mut peers: BTreeMap<PeerId, PeerInfo> = BTreeMap::new();
    let mut remembered: Vec<Remembered> = Vec::new();
    // Peers found by mDNS, and those of them this node dialled.
    let mut lan = LanPeers::default();
    let mut lan_dialled: HashSet<PeerId> = HashSet::new();
    let mut redial = tokio::time::interval(Duration::from_secs(1));
    let send = |e: Event| -> bool {
        match events.try_send(e) {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!("node is not keeping up; dropped a network event: {err}");
                false
            }
        }
    };
    loop {
        tokio::select! {
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { break };
                match cmd {
                    Command::Dial(addr) => {
                        if let Err(e) = swarm.dial(dial_addr(addr.clone())) {
                            tracing::debug!(%addr, error = %e, "dial failed");
                        }
                    }
                    Command::DialDevice { device, addrs } => {
                        let addrs = avoiding_cut(addrs, &cut, Instant::now());
                        let opts = DialOpts::peer_id(crate::peer_id(&device)).addresses(addrs).build();
                        if let Err(e) = swarm.dial(opts) {
                            tracing::debug!(device = %device.short(), error = %e, "dial failed");
                        }
                    }
                    Command::Remember(addr) => {
                        if !remembered.iter().any(|r| r.addr == addr) {
                            remembered.push(Remembered { addr, next: Instant::now(), backoff: REDIAL_MIN, peer: None });
                        }
                    }
                    Command::Forget(addr) => remembered.retain(|r| r.addr != addr),
                    Command::Publish { topic: name, data } => {
                        let t = gossipsub::IdentTopic::new(name);
                        match swarm.behaviour_mut().gossipsub.publish(t, data) {
                            Ok(_) => {}
                            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                                tracing::debug!("no gossip peers on the topic yet; sync will deliver the change");
                            }
                            Err(e) => tracing::debug!(error = %e, "publish failed"),
                        }
                    }
                    Command::Subscribe(name) => {
                        let t = gossipsub::IdentTopic::new(name);
                        if groups.len() >= MAX_GROUP_TOPICS && !groups.contains(&t.hash()) {
                            tracing::warn!("too many group topics; not joining another");
                        } else if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&t) {
                            tracing::error!(error = %e, "cannot subscribe to a group topic");
                        } else {
                            groups.insert(t.hash());
                        }
                    }
                    Command::Unsubscribe(name) => {
                        let t = gossipsub::IdentTopic::new(name);
                        swarm.behaviour_mut().gossipsub.unsubscribe(&t);
                        groups.remove(&t.hash());
                    }
                    Command::SubscribeProbe => {
                        if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&probe_topic) {
                            tracing::error!(error = %e, "cannot subscribe to the probe topic");
                        }
                    }
                    Command::Probe(data) => {
                        if data.len() <= MAX_PROBE_BYTES
                            && let Err(e) = swarm.behaviour_mut().gossipsub.publish(probe_topic.clone(), data)
                        {
                            tracing::debug!(error = %e, "probe not published");
                        }
                    }
                    Command::Request { peer, id, request } => {
                        let rid = swarm.behaviour_mut().sync.send_request(&crate::peer_id(&peer), request);
                        outbound.insert(rid, (peer, id));
                    }
                    Command::Respond { id, response } => {
                        if let Some(channel) = inbound.remove(&id) {
                            let _ = swarm.behaviour_mut().sync.send_response(channel, response);
                        }
                    }
                    Command::Validate { message, relay, verdict } => {
                        let acceptance = match verdict {
                            Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                            Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                            Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                        };
                        let id = gossipsub::MessageId::new(&message);
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(&id, &crate::peer_id(&relay), acceptance);
                    }
                    Command::Disconnect(device) => {
                        let _ = swarm.disconnect_peer_id(crate::peer_id(&device));
                    }
                    Command::PutPerson { key, record } => {
                        let record = kad::Record::new(key, record);
                        // kad keeps its own copy first: a full store must
                        // make room, or this node could not publish at all.
                        let _ = crate::dht::make_room(swarm.behaviour_mut().kad.store_mut(), &local, &record.key, crate::dht::MAX_RECORDS);
                        match swarm.behaviour_mut().kad.put_record(record.clone(), kad::Quorum::One) {
                            Ok(q) => person_put = Some((record, Some(q), None)),
                            Err(e) => {
                                tracing::info!(error = %e, "cannot publish the person record yet; trying again in {} s", PUT_RETRY.as_secs());
                                person_put = Some((record, None, Some(Instant::now() + PUT_RETRY)));
                            }
                        }
                    }
                    Command::Provide(keys) => {
                        let keys: Vec<Vec<u8>> = keys.into_iter().take(MAX_GROUP_TOPICS).collect();
                        let kad = &mut swarm.behaviour_mut().kad;
                        for gone in provided.iter().filter(|k| !keys.contains(k)) {
                            kad.stop_providing(&kad::RecordKey::new(gone));
                        }
                        for key in keys.iter().filter(|k| !provided.contains(k)) {
                            if let Err(e) = kad.start_providing(kad::RecordKey::new(key)) {
                                tracing::debug!(error = %e, "cannot announce this node under a rendezvous key");
                            }
                        }
                        provided = keys;
                    }
                    Command::FindProviders(key) => {
                        if rendezvous.len() < crate::dht::MAX_LOOKUPS {
                            rendezvous.insert(swarm.behaviour_mut().kad.get_providers(kad::RecordKey::new(&key)));
                        }
                    }
                    Command::FindPerson { key, id } => {
                        if !lookups.start(&mut swarm.behaviour_mut().kad, key, id) {
                            let _ = send(Event::PersonFound { id, records: vec![], answered: false });
                        }
                    }
                    Command::Snapshot(reply) => {
                        let _ = reply.send(NetSnapshot {
                            listen: swarm.listeners().cloned().collect(),
                            peers: peers.values().cloned().collect(),
                            external: swarm.external_addresses().cloned().collect(),
                            relays: reach.relays(),
                            public: reach.public,
                        });
                    }
                }
            }
            // Not before the swarm listens: a TCP dial made earlier cannot
            // leave from the listening port, and the NAT mapping a relay
            // then sees is useless for hole punching.
            _ = redial.tick(), if swarm.listeners().next().is_some() => {
                let now = Instant::now();
                for r in remembered.iter_mut() {
                    let connected = r.peer.is_some_and(|p| swarm.is_connected(&p));
                    if !connected && r.next <= now {
                        let _ = swarm.dial(dial_addr(r.addr.clone()));
                        r.next = now + r.backoff;
                        r.backoff = (r.backoff * 2).min(REDIAL_MAX);
                    }
                }
                dial_lan(&mut swarm, &mut lan, &groups, &lan_dialled);
                if let Some((record, query, retry)) = &mut person_put
                    && retry.is_some_and(|at| at <= now)
                {
                    match swarm.behaviour_mut().kad.put_record(record.clone(), kad::Quorum::One) {
                        Ok(q) => {
                            *retry = None;
                            *query = Some(q);
                        }
                        Err(_) => *retry = Some(now + PUT_RETRY),
                    }
                }
            }
            event = swarm.select_next_some() => {
                metrics.record(&event);
                if let SwarmEvent::Behaviour(b) = &event {
                    match b {
                        BehaviourEvent::Identify(e) => metrics.record(e),
                        BehaviourEvent::Ping(e) => metrics.record(e),
                        BehaviourEvent::Gossipsub(e) => metrics.record(e),
                        BehaviourEvent::Relay(e) => metrics.record(e),
                        BehaviourEvent::Dcutr(e) => metrics.record(e),
                        BehaviourEvent::Kad(e) => metrics.record(e),
                        _ => {}
                    }
                }
                match event {
                SwarmEvent::NewListenAddr { address, .. } => { let _ = send(Event::Listening(address)); }
                SwarmEvent::ExpiredListenAddr { address, .. } => { let _ = send(Event::NotListening(address)); }
                SwarmEvent::ListenerClosed { listener_id, addresses, .. } => {
                    reach.closed(listener_id);
                    reach_changed = true;
                    for address in addresses {
                        let _ = send(Event::NotListening(address));
                    }
                }
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                    let Some(device) = device_of_peer(&peer_id) else {
                        punched.remove(&connection_id);
                        let _ = swarm.disconnect_peer_id(peer_id);
                        continue;
                    };
                    let address = endpoint.get_remote_address().clone();
                    for r in remembered.iter_mut().filter(|r| r.addr == address || r.peer == Some(peer_id)) {
                        r.peer = Some(peer_id);
                        r.backoff = REDIAL_MIN;
                    }
                    // A peer mDNS reported was found by mDNS, whoever dialled:
                    // this node dials what mDNS reports. One it was told to
                    // keep counts as dialled even when it is on the LAN too.
                    let kept = remembered.iter().any(|r| r.peer == Some(peer_id));
                    if lan.contains(&peer_id) {
                        lan.connected(&peer_id);
                        if endpoint.is_dialer() {
                            lan_dialled.insert(peer_id);
                        }
                    }
                    let via = if lan.contains(&peer_id) && !kept {
                        Via::Mdns
                    } else if endpoint.is_dialer() {
                        Via::Dialed
                    } else {
                        Via::Inbound
                    };
                    let was_relayed = conns.values().any(|c| c.peer == peer_id && c.kind == Kind::Relayed);
                    let kind = if punched.remove(&connection_id) {
                        Kind::HolePunched
                    } else if endpoint.is_relayed() || is_relayed(&address) {
                        Kind::Relayed
                    } else if is_private(&address) {
                        Kind::Lan
                    } else if was_relayed && !endpoint.is_dialer() {
                        // A direct path from a peer reached through a relay
                        // is hole punching's: the side that did not dial sees
                        // it as an inbound connection, and DCUtR tells only
                        // the side that dialled (whose DCUtR event marks it).
                        Kind::HolePunched
                    } else {
                        Kind::Direct
                    };
                    conns.insert(connection_id, Conn { peer: peer_id, addr: address.clone(), kind, dialer: endpoint.is_dialer(), observed: false, opened: Instant::now() });
                    peers.entry(peer_id).or_insert_with(|| PeerInfo {
                        device,
                        addresses: vec![],
                        via,
                        kind,
                        address: None,
                    });
                    refresh(&mut peers, &conns, peer_id);
                    if num_established.get() == 1 {
                        let _ = send(Event::Connected { peer: device });
                    }
                }
                SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } if num_established > 0 => {
                    conns.remove(&connection_id);
                    punched.remove(&connection_id);
                    refresh(&mut peers, &conns, peer_id);
                }
                SwarmEvent::ConnectionClosed { peer_id, connection_id, .. } => {
                    let now = Instant::now();
                    if let Some(c) = conns.remove(&connection_id)
                        && c.kind == Kind::Relayed
                        && now.duration_since(c.opened) < CUT_WITHIN
                        && let Some(relay) = crate::address::relay_of(&c.addr)
                    {
                        tracing::info!(%relay, peer = %peer_id, "a relay circuit closed soon after it opened; that relay is tried last for a while");
                        cut.retain(|_, until| *until > now);
                        if cut.len() < MAX_CUT_RELAYS {
                            cut.insert(relay, now + CUT_FOR);
                        }
                    }
                    punched.remove(&connection_id);
                    peers.remove(&peer_id);
                    lan_dialled.remove(&peer_id);
                    if let Some(device) = device_of_peer(&peer_id) {
                        let _ = send(Event::Disconnected { peer: device });
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                    let now = Instant::now();
                    for (peer_id, addr) in found {
                        lan.found(peer_id, addr, now);
                        if let Some(p) = peers.get_mut(&peer_id) {
                            p.via = Via::Mdns;
                        }
                    }
                    dial_lan(&mut swarm, &mut lan, &groups, &lan_dialled);
                }
                SwarmEvent::OutgoingConnectionError { peer_id: Some(peer_id), .. } => {
                    lan.failed(&peer_id, Instant::now());
                }
                SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Expired(gone))) => {
                    for (peer_id, _) in gone {
                        lan.expired(&peer_id);
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, connection_id, info })) => {
                    let kad = info.protocols.contains(&KAD_PROTOCOL);
                    for addr in info.listen_addrs.iter().take(16).cloned() {
                        // Only addresses others could use go into the DHT.
                        if kad && (is_public(&addr) || is_relayed(&addr)) {
                            swarm.behaviour_mut().kad.add_address(&peer_id, addr.clone());
                        }
                        swarm.add_peer_address(peer_id, addr);
                    }
                    // A public peer this node dialled saw the NAT's mapping of
                    // this node's port: taken once per connection (identify
                    // pushes repeat it; AutoNAT keeps every candidate).
                    if let Some(c) = conns.get_mut(&connection_id)
                        && c.dialer
                        && !c.observed
                        && c.kind != Kind::Relayed
                        && is_public(&c.addr)
                        && is_public(&info.observed_addr)
                    {
                        c.observed = true;
                        swarm.behaviour_mut().observed.seen(info.observed_addr.clone());
                    }
                    // The relay's address: the one this node dialled, or one
                    // it listens on (an inbound connection's remote address
                    // is the relay's ephemeral port, not a listener).
                    let over = conns.get(&connection_id).filter(|c| c.kind != Kind::Relayed);
                    let relay_addr = match over {
                        Some(c) if c.dialer && is_public(&c.addr) => Some(c.addr.clone()),
                        Some(c) if is_public(&c.addr) => {
                            info.listen_addrs.iter().find(|a| is_public(a) && ip_of(a) == ip_of(&c.addr)).cloned()
                        }
                        _ => None,
                    };
                    if let Some(addr) = relay_addr
                        && info.protocols.contains(&relay::HOP_PROTOCOL_NAME)
                        && let Some(circuit) = reach.wants_relay(peer_id, &addr)
                    {
                        match swarm.listen_on(circuit.clone()) {
                            Ok(id) => reach.reserving(peer_id, id, circuit),
                            Err(e) => tracing::debug!(%circuit, error = %e, "cannot reserve a circuit"),
                        }
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal, .. })) => {
                    if !renewal {
                        tracing::info!(relay = %relay_peer_id, "reachable through a relay");
                    }
                    reach.reserved(relay_peer_id);
                    reach_changed = true;
                }
                SwarmEvent::Behaviour(BehaviourEvent::Dcutr(dcutr::Event { remote_peer_id, result })) => match result {
                    Ok(connection_id) => {
                        tracing::info!(peer = %remote_peer_id, "hole punched: a direct connection");
                        match conns.get_mut(&connection_id) {
                            Some(c) => {
                                c.kind = Kind::HolePunched;
                                refresh(&mut peers, &conns, remote_peer_id);
                            }
                            None => {
                                punched.insert(connection_id);
                            }
                        }
                    }
                    Err(e) => tracing::info!(peer = %remote_peer_id, error = %e, "hole punching failed; staying relayed"),
                },
                SwarmEvent::ExternalAddrConfirmed { address } if !is_relayed(&address) => {
                    tracing::info!(%address, "reachable from the internet");
                    confirmed.insert(address);
                    reach.public = true;
                    reach_changed = true;
                }
                SwarmEvent::ExternalAddrExpired { address } => {
                    confirmed.remove(&address);
                    let public = declared || !confirmed.is_empty();
                    if reach.public && !public {
                        tracing::info!(%address, "no longer reachable from the internet without a relay");
                    }
                    reach.public = public;
                    reach_changed = true;
                }
                SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::InboundRequest {
                    request: kad::InboundRequest::PutRecord { source, record: Some(record), .. },
                })) => {
                    match crate::dht::accept_put(swarm.behaviour_mut().kad.store_mut(), &local, source, record, crate::dht::MAX_RECORDS) {
                        Ok(()) | Err(crate::dht::Refused::NotNewer) => {}
                        // Peers can cause these at will: not worth more than debug.
                        Err(e) => tracing::debug!(peer = %source, error = %e, "refused a DHT record"),
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::InboundRequest {
                    request: kad::InboundRequest::AddProvider { record: Some(mut record) },
                })) => {
                    // Only addresses that work from anywhere are handed out.
                    record.addresses.retain(crate::address::is_internet);
                    record.addresses.truncate(8);
                    if !record.addresses.is_empty()
                        && let Err(e) = providers.accept(swarm.behaviour_mut().kad.store_mut(), &local, record)
                    {
                        tracing::debug!(error = %e, "refused a DHT provider record");
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                    id: query,
                    result: kad::QueryResult::GetProviders(result),
                    step,
                    ..
                })) => {
                    if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = result
                        && rendezvous.contains(&query)
                    {
                        // Dialled while the query runs: Kademlia holds the
                        // addresses it was given for them until it ends.
                        for p in providers.into_iter().take(20) {
                            if p != local && !swarm.is_connected(&p) && device_of_peer(&p).is_some() {
                                let _ = swarm.dial(DialOpts::peer_id(p).build());
                            }
                        }
                    }
                    if step.last {
                        rendezvous.remove(&query);
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                    id: query,
                    result: kad::QueryResult::PutRecord(result),
                    ..
                })) => {
                    if let Some((_, q, retry)) = &mut person_put
                        && *q == Some(query)
                    {
                        match result {
                            Ok(_) => person_put = None,
                            Err(e) => {
                                tracing::info!(error = %e, "the person record was not stored in the DHT yet; trying again in {} s", PUT_RETRY.as_secs());
                                *q = None;
                                *retry = Some(Instant::now() + PUT_RETRY);
                            }
                        }
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                    id: query,
                    result: kad::QueryResult::GetRecord(result),
                    step,
                    stats,
                })) => {
                    let found = match result {
                        Ok(kad::GetRecordOk::FoundRecord(r)) => Some(r.record.value),
                        _ => None,
                    };
                    if let Some(f) = lookups.step(query, found, stats.num_successes() > 0, step.last) {
                        // If the node misses this, its lookup expires.
                        let _ = send(Event::PersonFound { id: f.id, records: f.records, answered: f.answered });
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message })) => {
                    let Some(source) = device_of_peer(&propagation_source) else { continue };
                    if message.topic == probe_topic.hash() {
                        // Opaque and tiny: checked here, never by the node.
                        let ok = message.data.len() <= MAX_PROBE_BYTES;
                        let acceptance = if ok { gossipsub::MessageAcceptance::Accept } else { gossipsub::MessageAcceptance::Reject };
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &propagation_source, acceptance);
                        if ok {
                            let _ = events.try_send(Event::Probe(message.data));
                        }
                        continue;
                    }
                    let event = Event::Gossip { message: message_id.0.clone(), relay: source, topic: message.topic.to_string(), data: message.data };
                    if let Err(err) = events.try_send(event) {
                        tracing::warn!("node is not keeping up; ignoring a gossip message: {err}");
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &propagation_source, gossipsub::MessageAcceptance::Ignore);
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. })) => {
                    let Some(device) = device_of_peer(&peer) else { continue };
                    match message {
                        request_response::Message::Request { request, channel, .. } => {
                            if inbound.len() >= MAX_PENDING_RESPONSES {
                                tracing::warn!(peer = %device.short(), "too many sync requests waiting; dropping one");
                                continue;
                            }
                            next_inbound += 1;
                            inbound.insert(next_inbound, channel);
                            if events.try_send(Event::Request { peer: device, id: next_inbound, request }).is_err() {
                                inbound.remove(&next_inbound);
                            }
                        }
                        request_response::Message::Response { request_id, response } => {
                            if let Some((peer, id)) = outbound.remove(&request_id) {
                                let _ = send(Event::Response { peer, id, response });
                            }
                        }
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::OutboundFailure { request_id, error, .. })) => {
                    if let Some((peer, id)) = outbound.remove(&request_id) {
                        tracing::debug!(peer = %peer.short(), %error, "sync request failed");
                        let _ = send(Event::RequestFailed { peer, id });
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::InboundFailure { peer, error, .. })) => {
                    if let (Some(device), request_response::InboundFailure::Io(e)) = (device_of_peer(&peer), &error)
                        && e.kind() == std::io::ErrorKind::InvalidData
                    {
                        let _ = send(Event::BadMessage { peer: device, reason: e.to_string() });
                    }
                }
                _ => {}
            }},
        }
        // The node republishes its person record when its reach changes.
        if std::mem::take(&mut reach_changed) {
            let mut now_reach: Vec<Multiaddr> = reach
                .relays()
                .into_iter()
                .chain(swarm.external_addresses().filter(|a| is_public(a)).cloned())
                .collect();
            now_reach.sort_by_key(ToString::to_string);
            if told.as_ref() != Some(&now_reach) && (!now_reach.is_empty() || told.is_some()) {
                // Announced again, with the addresses of now.
                for key in &provided {
                    let _ = swarm
                        .behaviour_mut()
                        .kad
                        .start_providing(kad::RecordKey::new(key));
                }
                if send(Event::Reach(now_reach.clone())) {
                    told = Some(now_reach);
                } else {
                    // Told again at the next event.
                    reach_changed = true;
                }
            }
        }
        // Channels of requests the node never answered go when their peer does.
        inbound.retain(|_, ch| ch.is_open());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_through_a_relay_that_cut_circuits_go_unless_nothing_else_is_left() {
        let (bad, good, me) = (PeerId::random(), PeerId::random(), PeerId::random());
        let via = |relay: PeerId| -> Multiaddr {
            format!("/ip4/203.0.113.10/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{me}")
                .parse()
                .unwrap()
        };
        let now = Instant::now();
        let cut = HashMap::from([(bad, now + CUT_FOR)]);
        assert_eq!(
            avoiding_cut(vec![via(bad), via(good)], &cut, now),
            [via(good)]
        );
        assert_eq!(avoiding_cut(vec![via(bad)], &cut, now), [via(bad)]);
        assert_eq!(
            avoiding_cut(vec![via(bad), via(good)], &cut, now + CUT_FOR),
            [via(bad), via(good)],
            "forgiven after a while"
        );
    }
}
