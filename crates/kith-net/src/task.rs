//! The task that owns the swarm. It turns commands from the node into swarm
//! calls and swarm events into [`Event`]s for the node. It never waits on the
//! node: events go out with `try_send`, so a slow node costs dropped gossip
//! (recovered by sync), never a stalled swarm.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use kith_core::DeviceId;
use libp2p::futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, mdns};
use tokio::sync::mpsc;

use crate::behaviour::{
    Behaviour, BehaviourEvent, MAX_GROUP_TOPICS, MAX_PROBE_BYTES, PROBE_TOPIC, PUBLIC_TOPIC,
};
use kith_core::gossip::Verdict;

use crate::lan::{LanPeers, Round};
use crate::{Command, Event, NetSnapshot, PeerInfo, Via, device_of_peer};

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
    let connected = swarm.connected_peers().count();
    let is_connected = |p: &PeerId| swarm.is_connected(p);
    let chosen = lan.choose(&Round {
        now,
        connected,
        dialled: dialled.len(),
        topic_alone,
        is_connected: &is_connected,
    });
    for (peer, addr) in chosen {
        if let Err(e) = swarm.dial(dial_peer(peer, addr)) {
            tracing::debug!(%peer, error = %e, "LAN dial refused");
            lan.failed(&peer, now);
        }
    }
}

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

/// Dials from a fresh port. Reusing the listening port (libp2p's default)
/// turns two nodes dialling each other at once into a TCP simultaneous open,
/// where both sides act as initiator and the handshake fails.
fn dial_addr(addr: Multiaddr) -> DialOpts {
    DialOpts::unknown_peer_id()
        .address(addr)
        .allocate_new_port()
        .build()
}

fn dial_peer(peer: PeerId, addr: Multiaddr) -> DialOpts {
    DialOpts::peer_id(peer)
        .addresses(vec![addr])
        .allocate_new_port()
        .build()
}

/// Runs the swarm until the command channel closes.
pub async fn run(
    mut swarm: Swarm<Behaviour>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) {
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
    let send = |e: Event| {
        if let Err(err) = events.try_send(e) {
            tracing::warn!("node is not keeping up; dropped a network event: {err}");
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
                    Command::Snapshot(reply) => {
                        let _ = reply.send(NetSnapshot {
                            listen: swarm.listeners().cloned().collect(),
                            peers: peers.values().cloned().collect(),
                        });
                    }
                }
            }
            _ = redial.tick() => {
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
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => send(Event::Listening(address)),
                SwarmEvent::ExpiredListenAddr { address, .. } => send(Event::NotListening(address)),
                SwarmEvent::ListenerClosed { addresses, .. } => {
                    for address in addresses {
                        send(Event::NotListening(address));
                    }
                }
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                    let Some(device) = device_of_peer(&peer_id) else {
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
                    let info = peers.entry(peer_id).or_insert_with(|| PeerInfo { device, addresses: vec![], via });
                    if !info.addresses.contains(&address) {
                        info.addresses.push(address.clone());
                    }
                    if num_established.get() == 1 {
                        send(Event::Connected { peer: device });
                    }
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    peers.remove(&peer_id);
                    lan_dialled.remove(&peer_id);
                    if let Some(device) = device_of_peer(&peer_id) {
                        send(Event::Disconnected { peer: device });
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
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                    for addr in info.listen_addrs.into_iter().take(16) {
                        swarm.add_peer_address(peer_id, addr);
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
                                send(Event::Response { peer, id, response });
                            }
                        }
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::OutboundFailure { request_id, error, .. })) => {
                    if let Some((peer, id)) = outbound.remove(&request_id) {
                        tracing::debug!(peer = %peer.short(), %error, "sync request failed");
                        send(Event::RequestFailed { peer, id });
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::InboundFailure { peer, error, .. })) => {
                    if let (Some(device), request_response::InboundFailure::Io(e)) = (device_of_peer(&peer), &error)
                        && e.kind() == std::io::ErrorKind::InvalidData
                    {
                        send(Event::BadMessage { peer: device, reason: e.to_string() });
                    }
                }
                _ => {}
            },
        }
        // Channels of requests the node never answered go when their peer does.
        inbound.retain(|_, ch| ch.is_open());
    }
}
