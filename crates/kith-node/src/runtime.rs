//! The service thread: the one owner of the store, the loaded documents and
//! the sync engine. redb and automerge work never runs on tokio workers; the
//! network task and the API reach this thread through one bounded channel.

use std::collections::BTreeSet;
use std::time::Duration;

use kith_core::gossip::Topic;
use kith_core::sync::{Engine, EngineConfig, Input as SyncInput, MessageRef, Output as SyncOutput};
use kith_core::{IdentityId, SpaceId};
use kith_net::{Command, Event, Multiaddr};
use kith_store::Changed;
use tokio::sync::{mpsc, oneshot};

use crate::call::{BenchCall, Call, NodeCall, Reply, execute};
use crate::events::LiveEvent;
use crate::home::now_ms;
use crate::joins::Joins;
use crate::service::{ActionError, Service};
use crate::status::{NodeParts, Status};
use crate::waiters::{Awaited, Waiters};

/// Capacity of the service thread's input channel.
pub const SERVICE_INPUT_CAPACITY: usize = 4096;

/// Where a call's answer goes.
pub type Responder = oneshot::Sender<Result<Reply, ActionError>>;

/// What reaches the service thread.
#[derive(Debug)]
pub enum ServiceInput {
    Net(Event),
    /// A call, from the API or the node itself (see `ServiceHandle`).
    Call(Call, Responder),
    Tick,
    Shutdown,
}

/// The state the service thread owns.
pub struct ServiceLoop {
    service: Service,
    engine: Engine,
    net: mpsc::Sender<Command>,
    listen: Vec<Multiaddr>,
    api: String,
    home_peers: std::path::PathBuf,
    port_file: std::path::PathBuf,
    waiters: Waiters,
    joins: Joins,
    events: tokio::sync::broadcast::Sender<LiveEvent>,
    /// Whether the last sync event said syncing.
    was_syncing: bool,
    metrics: crate::metrics::NodeMetrics,
    finding: crate::finding::Finding,
    rendezvous: crate::rendezvous::Rendezvous,
    /// When followed people not reached were last checked for.
    unreached_at: Option<std::time::Instant>,
}

impl std::fmt::Debug for ServiceLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceLoop")
            .field("listen", &self.listen)
            .finish()
    }
}

impl ServiceLoop {
    pub fn new(
        service: Service,
        net: mpsc::Sender<Command>,
        api: String,
        home: &crate::Home,
        events: tokio::sync::broadcast::Sender<LiveEvent>,
        metrics: crate::metrics::NodeMetrics,
        findable: bool,
    ) -> ServiceLoop {
        ServiceLoop {
            service,
            engine: Engine::new(EngineConfig::default()),
            net,
            listen: Vec::new(),
            api,
            home_peers: home.path(crate::home::PEERS_FILE),
            port_file: home.path(crate::home::PORT_FILE),
            waiters: Waiters::default(),
            joins: Joins::default(),
            events,
            was_syncing: false,
            metrics,
            finding: crate::finding::Finding::new(findable),
            rendezvous: crate::rendezvous::Rendezvous::new(findable),
            unreached_at: None,
        }
    }

    /// Runs until `Shutdown` or until every sender is gone.
    pub fn run(mut self, mut inputs: mpsc::Receiver<ServiceInput>) {
        self.sync(SyncInput::GroupsChanged);
        // A member may have left while this node was down.
        let groups = self.service.my_groups().unwrap_or_default().into_keys();
        self.rekey(groups.collect());
        while let Some(input) = inputs.blocking_recv() {
            if matches!(input, ServiceInput::Shutdown) {
                break;
            }
            self.service.reopen_if_closed();
            // redb may panic on a page damaged outside it: that stops the
            // input, not the node, and the store is opened again.
            let handled =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(input)));
            if let Err(panic) = handled {
                tracing::error!(
                    "{}; `kith check` says what is damaged, `kith repair` rebuilds the store",
                    kith_store::repair::panic_text(&panic)
                );
                self.service.reopen_store();
            }
        }
        self.service.stop_upkeep();
        tracing::info!("service stopped");
    }

    fn handle(&mut self, input: ServiceInput) {
        {
            match input {
                ServiceInput::Shutdown => {}
                ServiceInput::Tick => {
                    self.sync_event();
                    self.service.upkeep(std::time::Instant::now());
                    self.sync(SyncInput::Tick);
                    self.waiters.expire(std::time::Instant::now());
                    if let Some(c) = self
                        .finding
                        .tick(self.service.keys(), std::time::Instant::now())
                    {
                        self.command(c);
                    }
                    for group in self.joins.expire(std::time::Instant::now()) {
                        self.engine.stop_joining(&group);
                    }
                    let service = &self.service;
                    let rendezvous = self.rendezvous.tick(
                        std::time::Instant::now(),
                        || service.my_groups().ok().map(|g| g.into_keys().collect()),
                        &self.joins.groups(),
                    );
                    for c in rendezvous {
                        self.command(c);
                    }
                    self.retry_unreached(std::time::Instant::now());
                }
                ServiceInput::Call(call, reply) => self.dispatch(call, reply),
                ServiceInput::Net(event) => {
                    self.net_event(event);
                    // Answering a peer can change the store (admitting a
                    // joiner): members hear of it at once.
                    self.publish_outbox();
                    self.wake_waiters();
                }
            }
        }
    }

    /// The one place a call is routed: a node call here, any other (which
    /// needs only the store) through `execute`.
    fn dispatch(&mut self, call: Call, reply: Responder) {
        match call {
            Call::Node(call) => self.node_call(call, reply),
            call => {
                let result = self.call(call);
                self.service.reopen_after(&result);
                let _ = reply.send(result);
            }
        }
        self.wake_waiters();
    }

    /// A call only a running node answers; waits answer later.
    fn node_call(&mut self, call: NodeCall, reply: Responder) {
        let answer = match call {
            NodeCall::GroupJoin {
                key,
                wait,
                timeout_ms,
            } => {
                let timeout = Duration::from_millis(timeout_ms);
                if let Some(begun) = self.joins.begin(&self.service, &key, wait, timeout, reply) {
                    for addr in begun.dial {
                        self.command(Command::Dial(addr));
                    }
                    // The inviter may be offline: other members too.
                    self.command(self.rendezvous.look_up(&begun.group));
                    self.sync(begun.ask);
                }
                return;
            }
            NodeCall::WaitFeed {
                author,
                seen,
                timeout_ms,
            } => {
                let service = &self.service;
                return self.waiters.park(
                    Awaited::Feed { author, seen },
                    Duration::from_millis(timeout_ms),
                    reply,
                    &mut |a, n| newest_posts(service, a, n),
                );
            }
            NodeCall::Bench(BenchCall::WaitProbe { nonce, timeout_ms }) => {
                return self.waiters.park(
                    Awaited::Probe(nonce),
                    Duration::from_millis(timeout_ms),
                    reply,
                    &mut |_, _| Vec::new(),
                );
            }
            NodeCall::Status => self.status().map(Reply::Status),
            NodeCall::Peers => {
                let net = self.snapshot();
                Ok(Reply::Peers(crate::status::peers(
                    &self.service,
                    &self.engine,
                    &net,
                )))
            }
            NodeCall::Nearby { label } => {
                crate::status::nearby(&self.service, &self.engine, label.as_deref())
                    .map(Reply::People)
            }
            NodeCall::Bench(BenchCall::Probe { nonce }) => {
                self.command(Command::Probe(nonce.to_be_bytes().to_vec()));
                Ok(Reply::Done)
            }
        };
        let _ = reply.send(answer);
    }

    /// Takes up what the store's indexes changed: publishes live events,
    /// follows group changes, and returns the authors of posts that changed
    /// (`None`: too much changed to say).
    fn index_events(&mut self) -> Option<BTreeSet<IdentityId>> {
        let (changed, lost) = self.service.store_mut().take_changed();
        let me = self.service.identity();
        let mut authors = BTreeSet::new();
        let mut groups = BTreeSet::new();
        // Whom this identity follows may have changed (on another device).
        let mut interests = lost;
        for c in &changed {
            match c {
                Changed::Post { author, .. } => {
                    authors.insert(*author);
                }
                Changed::Profile { who } if *who == me => interests = true,
                Changed::Group { group } => {
                    groups.insert(*group);
                }
                _ => {}
            }
        }
        if interests {
            self.sync(SyncInput::InterestsChanged);
        }
        // A group's log changed (here, by gossip or by sync): new members,
        // new keys, a new group. Local changes were published first, under
        // the key members held until now.
        if lost || !groups.is_empty() {
            self.sync(SyncInput::GroupsChanged);
            if lost {
                groups.extend(self.service.my_groups().unwrap_or_default().into_keys());
            }
            self.rekey(groups);
        }
        if self.events.receiver_count() > 0 {
            if lost {
                let _ = self.events.send(LiveEvent::Resync);
            }
            for c in changed {
                let _ = self.events.send(LiveEvent::from(c));
            }
        }
        (!lost).then_some(authors)
    }

    /// Starts the new key epochs that members' leaving made due (see
    /// `Service::rekey_if_due`), and sends them under the keys members hold.
    fn rekey(&mut self, groups: BTreeSet<SpaceId>) {
        let mut started = false;
        for group in groups {
            match self.service.rekey_if_due(&group) {
                Ok(true) => {
                    tracing::info!(%group, "a member left: started a new key epoch");
                    started = true;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, %group, "could not start a new key epoch"),
            }
        }
        if started {
            self.publish_outbox();
        }
    }

    /// Publishes catch-up progress while it lasts, and its end.
    fn sync_event(&mut self) {
        let syncing = self.engine.is_syncing();
        if !syncing && !self.was_syncing {
            return;
        }
        self.was_syncing = syncing;
        let (expected, received) = self
            .engine
            .progress()
            .fold((0, 0), |(e, r), (_, p)| (e + p.expected, r + p.received));
        let _ = self.events.send(LiveEvent::Sync {
            syncing,
            expected,
            received,
        });
    }

    /// Answers the waiting calls whose arrival has happened.
    fn wake_waiters(&mut self) {
        let authors = self.index_events();
        let service = &self.service;
        let news_of = |a: &IdentityId| authors.as_ref().is_none_or(|s| s.contains(a));
        self.waiters
            .wake(&news_of, &mut |a, n| newest_posts(service, a, n));
        let syncing = self.engine.is_syncing();
        self.joins.wake(&mut |group, wait_history| {
            let view = service.group_show(group).ok()?;
            let member = view.role.is_some();
            (member && !(wait_history && syncing)).then_some(view)
        });
    }

    fn command(&self, cmd: Command) {
        // The network task never blocks on us, so this wait is short.
        if self.net.blocking_send(cmd).is_err() {
            tracing::warn!("network task is gone");
        }
    }

    fn sync(&mut self, input: SyncInput) {
        let outputs = self.engine.handle(input, now_ms(), &mut self.service);
        for out in outputs {
            match out {
                SyncOutput::Send(sent) => self.command(Command::Request {
                    peer: sent.peer,
                    id: sent.id,
                    request: sent.request,
                }),
                SyncOutput::Respond { id, response, .. } => {
                    self.command(Command::Respond { id, response })
                }
                SyncOutput::Disconnect { peer, reason } => {
                    tracing::warn!(peer = %peer.short(), %reason, "disconnecting a misbehaving peer");
                    self.command(Command::Disconnect(peer));
                }
                SyncOutput::PeerIdentified { peer, identity } => {
                    tracing::info!(peer = %peer.short(), identity = %identity, "peer identified");
                    let _ = self.events.send(LiveEvent::PeerUp {
                        device: peer,
                        identity: Some(identity),
                    });
                }
                SyncOutput::JoinAnswer {
                    group,
                    peer,
                    answer,
                } => {
                    tracing::info!(peer = %peer.short(), ?answer, "join answered");
                    self.joins.answer(group, &peer.short(), answer);
                }
                SyncOutput::Validate {
                    message,
                    relay,
                    verdict,
                } => {
                    self.metrics.checked(verdict);
                    self.command(Command::Validate {
                        message: message.0,
                        relay,
                        verdict,
                    })
                }
                SyncOutput::Gossip { topic, data } => {
                    self.metrics.published();
                    self.command(Command::Publish {
                        topic: topic.name().to_owned(),
                        data,
                    })
                }
                SyncOutput::Subscribe(topic) => self.command(Command::Subscribe(topic)),
                SyncOutput::Unsubscribe(topic) => self.command(Command::Unsubscribe(topic)),
            }
        }
    }

    fn net_event(&mut self, event: Event) {
        match event {
            Event::Listening(addr) => {
                tracing::info!(%addr, "listening");
                if let Some(port) = tcp_port(&addr) {
                    let _ = std::fs::write(&self.port_file, port.to_string());
                }
                if !self.listen.contains(&addr) {
                    self.listen.push(addr);
                }
                let reachable = self.invite_addresses();
                self.service.set_reachable_at(reachable);
            }
            Event::NotListening(addr) => {
                tracing::info!(%addr, "no longer listening");
                // Invite keys made from now on leave it out.
                self.listen.retain(|a| *a != addr);
                let reachable = self.invite_addresses();
                self.service.set_reachable_at(reachable);
            }
            Event::Connected { peer } => {
                let _ = self.events.send(LiveEvent::PeerUp {
                    device: peer,
                    identity: None,
                });
                self.sync(SyncInput::PeerConnected { peer });
            }
            Event::Disconnected { peer } => {
                let _ = self.events.send(LiveEvent::PeerDown { device: peer });
                self.sync(SyncInput::PeerDisconnected { peer });
            }
            Event::Request { peer, id, request } => {
                self.sync(SyncInput::RequestReceived { peer, id, request })
            }
            Event::Response { peer, id, response } => {
                self.sync(SyncInput::ResponseReceived { peer, id, response });
            }
            Event::RequestFailed { peer, id } => self.sync(SyncInput::RequestFailed { peer, id }),
            Event::BadMessage { peer, reason } => self.sync(SyncInput::Offence { peer, reason }),
            Event::Probe(data) => {
                if let Ok(nonce) = <[u8; 8]>::try_from(data.as_slice()) {
                    self.waiters.probe_arrived(u64::from_be_bytes(nonce));
                }
            }
            Event::Reach(addrs) => {
                if let Some(c) = self.finding.reach_changed(self.service.keys(), addrs) {
                    self.command(c);
                }
                let reachable = self.invite_addresses();
                self.service.set_reachable_at(reachable);
            }
            Event::PersonFound {
                id,
                records,
                answered,
            } => {
                for dial in self
                    .finding
                    .found(id, &records, answered, self.service.keys())
                {
                    self.command(dial);
                }
            }
            Event::Gossip {
                message,
                relay,
                topic,
                data,
            } => self.sync(SyncInput::GossipReceived {
                relay,
                topic: Topic::from_name(&topic),
                message: MessageRef(message),
                data,
            }),
        }
    }

    /// Publishes the changes of the last local action (or of answering a
    /// peer, such as admitting a joiner), each where its document travels.
    fn publish_outbox(&mut self) {
        let outbox = self.service.take_outbox();
        if !outbox.is_empty() {
            let changes = outbox.into_iter().map(|c| c.into_inner()).collect();
            self.sync(SyncInput::Publish(changes));
        }
    }

    /// Carries out a call, then publishes what it changed and makes it
    /// durable: peers hear of a change once it is stored, and the caller
    /// once its journal record is on disk (nothing to wait for if the call
    /// changed nothing). Should that write fail, the change is not
    /// acknowledged: the caller is told it was not saved, and that peers
    /// may have it. A call that failed part-way publishes what it did.
    fn call(&mut self, call: Call) -> Result<Reply, ActionError> {
        let interests_change = matches!(call, Call::Follow { .. } | Call::Unfollow { .. });
        let followed = match &call {
            Call::Follow { id, .. } => Some(*id),
            _ => None,
        };
        let reply = self.carry_out(call);
        self.publish_outbox();
        if let Err(e) = self.service.store_mut().sync_local() {
            tracing::error!(error = %e, "could not sync the journal of local changes");
            return Err(ActionError::NotDurable(e));
        }
        if interests_change {
            self.sync(SyncInput::InterestsChanged);
        }
        // Someone none of whose devices is connected: find them by id.
        if let (Some(who), Ok(_)) = (followed, &reply)
            && !self.engine.peers().any(|(_, id)| id == Some(who))
            && let Some(c) = self.finding.look_up(who)
        {
            self.command(c);
        }
        reply
    }

    /// Every few seconds: the people followed none of whose devices is
    /// connected are looked up again, less often the longer it lasts.
    fn retry_unreached(&mut self, now: std::time::Instant) {
        if self
            .unreached_at
            .is_some_and(|at| now.duration_since(at) < crate::finding::RETRY_MIN)
        {
            return;
        }
        self.unreached_at = Some(now);
        let me = self.service.identity();
        let Ok(follows) = self.service.store().follows(&me) else {
            return;
        };
        let reached: std::collections::BTreeSet<IdentityId> =
            self.engine.peers().filter_map(|(_, id)| id).collect();
        let unreached = follows
            .into_iter()
            .filter(|who| *who != me && !reached.contains(who))
            .collect();
        for c in self.finding.retry(&unreached, now) {
            self.command(c);
        }
    }

    fn carry_out(&mut self, call: Call) -> Result<Reply, ActionError> {
        Ok(match call {
            Call::AddPeer { address } => {
                let addr: Multiaddr = address.parse().map_err(|e| {
                    ActionError::Invalid(format!("`{address}` is not a multiaddr: {e}"))
                })?;
                crate::remembered::add(&self.home_peers, &addr)?;
                self.command(Command::Remember(addr));
                Reply::Done
            }
            Call::ForgetPeer { address } => {
                // Out of the file, and no longer redialled by the swarm.
                if let Some(addr) = crate::remembered::forget(&self.home_peers, &address)? {
                    self.command(Command::Forget(addr));
                }
                Reply::Done
            }
            other => execute(&mut self.service, other)?,
        })
    }

    /// The addresses invite keys carry, those that matter most first
    /// (an invite key keeps what fits): relay circuits, which reach this
    /// node from behind its NAT (with its peer id, which a circuit needs),
    /// and its public addresses; then what it listens on, loopback last.
    fn invite_addresses(&self) -> Vec<Vec<u8>> {
        let me = kith_net::peer_id(&self.service.keys().device.id());
        let internet = self.finding.reach().iter().map(|a| {
            if kith_net::address::is_relayed(a) && kith_net::address::peer_of(a) != Some(me) {
                a.clone().with(libp2p::multiaddr::Protocol::P2p(me))
            } else {
                a.clone()
            }
        });
        let loopback = |a: &Multiaddr| {
            a.iter().any(|p| match p {
                libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_loopback(),
                libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_loopback(),
                _ => false,
            })
        };
        let mut listening: Vec<&Multiaddr> = self.listen.iter().collect();
        listening.sort_by_key(|a| loopback(a));
        let mut out: Vec<Multiaddr> = internet.collect();
        for a in listening {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
        out.into_iter().map(|a| a.to_vec()).collect()
    }

    /// The network task's view of its connections (the one table of
    /// them); empty if the task is gone. It never waits on this thread, so
    /// the wait is short.
    fn snapshot(&self) -> kith_net::NetSnapshot {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Snapshot(tx));
        rx.blocking_recv().unwrap_or_default()
    }

    fn status(&mut self) -> Result<Status, ActionError> {
        let net = self.snapshot();
        let node = NodeParts {
            engine: &self.engine,
            listen: &self.listen,
            api: &self.api,
            waiting: self.waiters.len(),
        };
        crate::status::status(&mut self.service, &node, &net)
    }
}

/// `author`'s newest posts as the feed shows them, at most `n`, with
/// their creation times.
fn newest_posts(service: &Service, author: &IdentityId, n: usize) -> Vec<(kith_core::PostId, u64)> {
    service.newest_ids(*author, n).unwrap_or_default()
}

fn tcp_port(addr: &Multiaddr) -> Option<u16> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}
