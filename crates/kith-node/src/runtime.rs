//! The service thread: the one owner of the store, the loaded documents and
//! the sync engine. redb and automerge work never runs on tokio workers; the
//! network task and the API reach this thread through one bounded channel.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kith_core::gossip::Topic;
use kith_core::sync::{Engine, EngineConfig, Input as SyncInput, MessageRef, Output as SyncOutput};
use kith_core::{DeviceId, IdentityId, SpaceId};
use kith_net::{Command, Event, Multiaddr};
use kith_store::Changed;
use tokio::sync::{mpsc, oneshot};

use crate::call::{Call, Reply, execute};
use crate::events::LiveEvent;
use crate::home::now_ms;
use crate::joins::Joins;
use crate::service::{ActionError, Service};
use crate::status::{PeerView, Status, SyncView};
use crate::waiters::{Awaited, Waiters};

/// Capacity of the service thread's input channel.
pub const SERVICE_INPUT_CAPACITY: usize = 4096;

/// What reaches the service thread.
#[derive(Debug)]
pub enum ServiceInput {
    Net(Event),
    Api(Call, oneshot::Sender<Result<Reply, ActionError>>),
    Tick,
    Shutdown,
}

/// Peers as the service thread knows them.
#[derive(Debug, Default)]
struct PeerMeta {
    addresses: Vec<String>,
    via: String,
}

/// The state the service thread owns.
pub struct ServiceLoop {
    service: Service,
    engine: Engine,
    net: mpsc::Sender<Command>,
    listen: Vec<Multiaddr>,
    api: String,
    peers: BTreeMap<DeviceId, PeerMeta>,
    home_peers: std::path::PathBuf,
    port_file: std::path::PathBuf,
    waiters: Waiters,
    joins: Joins,
    events: tokio::sync::broadcast::Sender<LiveEvent>,
    /// Whether the last sync event said syncing.
    was_syncing: bool,
}

impl std::fmt::Debug for ServiceLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceLoop")
            .field("peers", &self.peers.len())
            .finish()
    }
}

/// Runs of changes sealed per tick: 16 × 64 changes, a few milliseconds.
const SEAL_RUNS_PER_TICK: usize = 16;

impl ServiceLoop {
    pub fn new(
        service: Service,
        net: mpsc::Sender<Command>,
        api: String,
        home: &crate::Home,
        events: tokio::sync::broadcast::Sender<LiveEvent>,
    ) -> ServiceLoop {
        ServiceLoop {
            service,
            engine: Engine::new(EngineConfig::default()),
            net,
            listen: Vec::new(),
            api,
            peers: BTreeMap::new(),
            home_peers: home.path(crate::node::PEERS_FILE),
            port_file: home.path(crate::node::PORT_FILE),
            waiters: Waiters::default(),
            joins: Joins::default(),
            events,
            was_syncing: false,
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
            self.reopen_if_closed();
            // redb may panic on a page damaged outside it: that stops the
            // input, not the node, and the store is opened again.
            let handled =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(input)));
            if let Err(panic) = handled {
                tracing::error!(
                    "{}; `kith check` says what is damaged, `kith repair` rebuilds the store",
                    kith_store::repair::panic_text(&panic)
                );
                self.reopen();
            }
        }
        self.flush();
        // A deletion's scrub does not wait for its delay when the node stops.
        self.scrub(std::time::Instant::now() + kith_store::SCRUB_DELAY);
        if let Err(e) = self.service.store_mut().end_session() {
            tracing::error!(error = %e, "could not close the store's session");
        }
        tracing::info!("service stopped");
    }

    /// Opens the store again if a failed write closed it or left redb
    /// refusing everything.
    fn reopen_if_closed(&mut self) {
        // A store that only waits for room to replay its journal still
        // reads; its next write opens it again itself.
        if self.service.store().needs_reopen_to_read() {
            self.reopen();
        }
    }

    /// Closes and opens the store again after a failed write (see
    /// `Store::reopen`); if that fails too, the store stays closed, its
    /// operations say why, and the next input tries again.
    fn reopen(&mut self) {
        match self.service.store_mut().reopen() {
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "the store is closed until it can open again"),
        }
    }

    /// Reopens the store if `result` says a write failed underneath it.
    fn after<T>(&mut self, result: &Result<T, ActionError>) {
        if let Err(ActionError::Store(e) | ActionError::NotDurable(e)) = result
            && e.needs_reopen()
        {
            self.reopen();
        }
    }

    fn handle(&mut self, input: ServiceInput) {
        {
            match input {
                ServiceInput::Shutdown => {}
                ServiceInput::Tick => {
                    self.sync_event();
                    self.flush();
                    self.seal();
                    self.scrub(std::time::Instant::now());
                    self.sync(SyncInput::Tick);
                    self.waiters.expire(std::time::Instant::now());
                    for group in self.joins.expire(std::time::Instant::now()) {
                        self.engine.stop_joining(&group);
                    }
                }
                ServiceInput::Api(
                    Call::GroupJoin {
                        key,
                        wait,
                        timeout_ms,
                    },
                    reply,
                ) => {
                    self.join(&key, wait, Duration::from_millis(timeout_ms), reply);
                    self.wake_waiters();
                }
                ServiceInput::Api(
                    Call::WaitFeed {
                        author,
                        seen,
                        timeout_ms,
                    },
                    reply,
                ) => {
                    let service = &self.service;
                    self.waiters.park(
                        Awaited::Feed { author, seen },
                        Duration::from_millis(timeout_ms),
                        reply,
                        &mut |a, n| newest_posts(service, a, n),
                    );
                }
                ServiceInput::Api(Call::WaitProbe { nonce, timeout_ms }, reply) => {
                    self.waiters.park(
                        Awaited::Probe(nonce),
                        Duration::from_millis(timeout_ms),
                        reply,
                        &mut |_, _| Vec::new(),
                    );
                }
                ServiceInput::Api(call, reply) => {
                    let result = self.call(call);
                    self.after(&result);
                    let _ = reply.send(result);
                    self.wake_waiters();
                }
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

    /// Makes changes ingested from the network durable (group commit: at
    /// most one tick's worth can be lost in a crash, and sync fetches it
    /// again). A failed checkpoint leaves redb refusing every operation:
    /// the store is opened again, and the journal replays.
    fn flush(&mut self) {
        if let Err(e) = self.service.store_mut().flush() {
            tracing::error!(error = %e, "could not flush the store");
            if e.needs_reopen() {
                self.reopen();
            }
        }
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

    /// Starts joining the group of an invite key: dials the addresses it
    /// carries and has the engine ask every peer to admit this identity.
    fn join(
        &mut self,
        key: &str,
        wait: bool,
        timeout: Duration,
        reply: oneshot::Sender<Result<Reply, ActionError>>,
    ) {
        let key = match kith_core::InviteKey::decode(key) {
            Ok(k) => k,
            Err(e) => {
                let _ = reply.send(Err(ActionError::Invalid(e.to_string())));
                return;
            }
        };
        let me = self.service.identity();
        if let Ok(view) = self.service.group_show(&key.group)
            && view.role.is_some()
        {
            let _ = reply.send(Ok(Reply::Group(view)));
            return;
        }
        if self.joins.is_joining(&key.group) {
            let _ = reply.send(Err(ActionError::Invalid(
                "this node is already joining that group".into(),
            )));
            return;
        }
        for address in &key.addresses {
            match Multiaddr::try_from(address.clone()) {
                Ok(addr) => self.command(Command::Dial(addr)),
                Err(e) => tracing::warn!(error = %e, "an invite key carries an unreadable address"),
            }
        }
        self.joins.start(key.group, wait, timeout, reply);
        self.sync(SyncInput::Join {
            group: key.group,
            invite: key.public_key(),
            proof: key.prove(&me),
        });
    }

    /// Packs a little of the stored history into compressed blocks each
    /// tick (a few milliseconds), so the store shrinks without a pause.
    fn seal(&mut self) {
        if let Err(e) = self.service.store_mut().seal(SEAL_RUNS_PER_TICK) {
            tracing::error!(error = %e, "could not seal stored changes");
        }
    }

    /// Compacts the store file some seconds after a deletion, so that the
    /// deleted post's text does not linger in freed pages (see
    /// `Store::scrub_if_due`). A failure leaves it due for the next tick.
    fn scrub(&mut self, now: std::time::Instant) {
        let from = std::time::Instant::now();
        match self.service.store_mut().scrub_if_due(now) {
            Ok(true) => tracing::info!(
                seconds = from.elapsed().as_secs_f32(),
                "compacted the store after a deletion"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not compact the store after a deletion"),
        }
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
                } => self.command(Command::Validate {
                    message: message.0,
                    relay,
                    verdict,
                }),
                SyncOutput::Gossip { topic, data } => self.command(Command::Publish {
                    topic: topic.name().to_owned(),
                    data,
                }),
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
            Event::Connected { peer, address, via } => {
                let _ = self.events.send(LiveEvent::PeerUp {
                    device: peer,
                    identity: None,
                });
                let meta = self.peers.entry(peer).or_default();
                meta.addresses = vec![address.to_string()];
                meta.via = format!("{via:?}").to_lowercase();
                self.sync(SyncInput::PeerConnected { peer });
            }
            Event::Disconnected { peer } => {
                let _ = self.events.send(LiveEvent::PeerDown { device: peer });
                self.peers.remove(&peer);
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
        let reply = self.carry_out(call);
        self.publish_outbox();
        if let Err(e) = self.service.store_mut().sync_local() {
            tracing::error!(error = %e, "could not sync the journal of local changes");
            return Err(ActionError::NotDurable(e));
        }
        if interests_change {
            self.sync(SyncInput::InterestsChanged);
        }
        reply
    }

    fn carry_out(&mut self, call: Call) -> Result<Reply, ActionError> {
        Ok(match call {
            Call::Status => Reply::Status(self.status()?),
            Call::Peers => Reply::Peers(self.peer_views()),
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
            Call::People {
                label,
                nearby: true,
            } => {
                let near: BTreeSet<IdentityId> =
                    self.engine.peers().filter_map(|(_, id)| id).collect();
                let mut people = self.service.people(label.as_deref())?;
                people.retain(|p| near.contains(&p.id));
                // A peer whose profile has not arrived yet is nearby too,
                // nameless (unless a label was asked for: it has none).
                if label.is_none() {
                    let me = self.service.identity();
                    let known: BTreeSet<IdentityId> = people.iter().map(|p| p.id).collect();
                    for id in near
                        .into_iter()
                        .filter(|id| *id != me && !known.contains(id))
                    {
                        people.push(kith_store::PersonView {
                            id,
                            name: None,
                            bio: None,
                            following: false,
                            blocked: false,
                            muted: false,
                            labels: Vec::new(),
                            follows: Vec::new(),
                            posts: 0,
                        });
                    }
                }
                Reply::People(people)
            }
            Call::Probe { nonce } => {
                self.command(Command::Probe(nonce.to_be_bytes().to_vec()));
                Reply::Done
            }
            other => execute(&mut self.service, other)?,
        })
    }

    /// Where a joiner can reach this node, for invite keys: LAN addresses
    /// before loopback ones, which only help on this machine.
    fn invite_addresses(&self) -> Vec<Vec<u8>> {
        let loopback = |a: &Multiaddr| {
            a.iter().any(|p| match p {
                libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_loopback(),
                libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_loopback(),
                _ => false,
            })
        };
        let mut addrs: Vec<&Multiaddr> = self.listen.iter().collect();
        addrs.sort_by_key(|a| loopback(a));
        addrs.into_iter().map(|a| a.to_vec()).collect()
    }

    fn peer_views(&mut self) -> Vec<PeerView> {
        let identities: BTreeMap<DeviceId, Option<IdentityId>> = self.engine.peers().collect();
        let me = self.service.identity();
        self.peers
            .iter()
            .map(|(device, meta)| {
                let identity = identities.get(device).copied().flatten();
                let name = identity
                    .and_then(|id| self.service.store().person(&me, &id).ok().flatten())
                    .and_then(|p| p.name);
                PeerView {
                    device: *device,
                    identity,
                    name,
                    addresses: meta.addresses.clone(),
                    via: meta.via.clone(),
                }
            })
            .collect()
    }

    fn status(&mut self) -> Result<Status, ActionError> {
        let me = self.service.whoami()?;
        Ok(Status {
            identity: me.identity,
            device: me.device,
            name: me.name,
            listen: self.listen.iter().map(ToString::to_string).collect(),
            api: self.api.clone(),
            peers: self.peers.len(),
            counts: self.service.store().counts()?,
            syncing: self.engine.is_syncing(),
            waiting: self.waiters.len(),
            sync: self
                .engine
                .progress()
                .filter(|(_, p)| p.expected > 0 || p.docs_left > 0)
                .map(|(peer, p)| SyncView {
                    peer,
                    expected: p.expected,
                    received: p.received,
                    docs_left: p.docs_left,
                })
                .collect(),
        })
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

/// The remembered peers of a home; unreadable lines are skipped with a warning.
pub fn remembered_peers(file: &std::path::Path) -> Vec<Multiaddr> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match l.trim().parse() {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(line = l, error = %e, "ignoring a bad line in the peers file");
                None
            }
        })
        .collect()
}
