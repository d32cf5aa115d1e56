//! The service thread: the one owner of the store, the loaded documents and
//! the sync engine. redb and automerge work never runs on tokio workers; the
//! network task and the API reach this thread through one bounded channel.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kith_core::sync::{Engine, EngineConfig, Input as SyncInput, Output as SyncOutput, Replica};
use kith_core::{DeviceCert, DeviceId, IdentityId, SignedChange, SpaceId, proto};
use kith_net::{Command, Event, Multiaddr};
use kith_store::Changed;
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use crate::call::{Call, Reply, execute};
use crate::events::LiveEvent;
use crate::group_gossip::GroupChannels;
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
    channels: GroupChannels,
    events: tokio::sync::broadcast::Sender<LiveEvent>,
    /// Whether the last sync event said syncing.
    was_syncing: bool,
    /// Certificates whose signatures were checked (bounded).
    verified_certs: std::collections::HashMap<DeviceId, DeviceCert>,
    /// This device's certificate, as every gossiped local change carries it.
    cert: proto::DeviceCertificate,
    /// Whose documents this node keeps (itself and whom it follows), read
    /// once and again only after its own profile changed: every gossiped
    /// change is checked against it.
    interests: Option<BTreeSet<IdentityId>>,
}

impl std::fmt::Debug for ServiceLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceLoop")
            .field("peers", &self.peers.len())
            .finish()
    }
}

/// Verified certificates remembered; past this the memory starts afresh.
const VERIFIED_CERTS_KEPT: usize = 4096;
/// Runs of changes sealed per tick: 16 × 64 changes, a few milliseconds.
const SEAL_RUNS_PER_TICK: usize = 16;

impl ServiceLoop {
    pub fn new(
        mut service: Service,
        net: mpsc::Sender<Command>,
        api: String,
        home: &crate::Home,
        events: tokio::sync::broadcast::Sender<LiveEvent>,
    ) -> ServiceLoop {
        // Public changes go out the moment they are signed; group changes
        // need the group's key, and wait in the outbox for `publish_outbox`.
        let cert = service.keys().cert.to_proto();
        let (early, early_cert) = (net.clone(), cert.clone());
        service.set_publisher(move |change| {
            if channel(&change.doc()) != Channel::Public {
                return false;
            }
            let msg = gossip_message(change, &early_cert);
            if early.blocking_send(Command::Publish(msg)).is_err() {
                tracing::warn!("network task is gone");
            }
            true
        });
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
            channels: GroupChannels::default(),
            events,
            was_syncing: false,
            verified_certs: Default::default(),
            cert,
            interests: None,
        }
    }

    /// Runs until `Shutdown` or until every sender is gone.
    pub fn run(mut self, mut inputs: mpsc::Receiver<ServiceInput>) {
        self.refresh_groups();
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
                    self.refresh_groups();
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

    /// Joins and leaves group topics as memberships and keys change.
    fn refresh_groups(&mut self) {
        let changes = self.channels.refresh(&self.service);
        for topic in changes.leave {
            self.command(Command::Unsubscribe(topic));
        }
        for topic in changes.join {
            self.command(Command::Subscribe(topic));
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
        for c in &changed {
            match c {
                Changed::Post { author, .. } => {
                    authors.insert(*author);
                }
                Changed::Profile { who } if *who == me => self.interests = None,
                Changed::Group { group } => {
                    groups.insert(*group);
                }
                _ => {}
            }
        }
        if lost {
            self.interests = None;
        }
        // A group's log changed (here, by gossip or by sync): new members,
        // new keys, a new group. Local changes were published first, under
        // the key members held until now.
        if lost || !groups.is_empty() {
            self.refresh_groups();
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

    /// Whether this node keeps `owner`'s documents (see the `interests`
    /// field). A failed read is not remembered.
    fn keeps(&mut self, owner: &IdentityId) -> bool {
        if self.interests.is_none() {
            match self.service.interests() {
                Ok(set) => self.interests = Some(set),
                Err(e) => {
                    tracing::error!(error = %e, "could not read whom this node follows");
                    return false;
                }
            }
        }
        self.interests.as_ref().is_some_and(|s| s.contains(owner))
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
                message_id,
                source,
                device,
                topic,
                data,
            } => {
                let accept = match topic {
                    None => self.gossip(device, &data, None),
                    Some(topic) => self.group_gossip(device, &topic, &data),
                };
                self.command(Command::Validate {
                    message_id,
                    source,
                    accept,
                });
            }
        }
    }

    /// Opens a message of a group topic and handles the change inside.
    /// Messages under a key this device lacks (a newer epoch not yet
    /// arrived, or one it was removed before) are ignored, not held against
    /// the relay; ones that do not decrypt under the key they name are.
    fn group_gossip(&mut self, relay: DeviceId, topic: &str, data: &[u8]) -> Option<bool> {
        let group = self.channels.group_of(topic)?;
        match self.channels.open(&group, data) {
            Ok(plain) => self.gossip(relay, &plain, Some(group)),
            Err(kith_core::group::secrets::OpenError::UnknownKey) => None,
            Err(e) => {
                self.sync(SyncInput::Offence {
                    peer: relay,
                    reason: format!("group gossip: {e}"),
                });
                Some(false)
            }
        }
    }

    /// Checks (and, if wanted, applies) a gossiped change, from the public
    /// topic (`group` is `None`) or a group's. `Some(true)`: valid, forward
    /// it; `Some(false)`: invalid, penalise the relay.
    fn gossip(&mut self, relay: DeviceId, data: &[u8], group: Option<SpaceId>) -> Option<bool> {
        let decoded = proto::GossipChange::decode(data).ok().and_then(|g| {
            let cert = self.certificate(&g.certificate?)?;
            let change = SignedChange::from_proto(g.change?).ok()?;
            Some((cert, change))
        });
        let Some((cert, change)) = decoded else {
            self.sync(SyncInput::Offence {
                peer: relay,
                reason: "gossiped garbage".into(),
            });
            return Some(false);
        };
        if cert.device != change.device {
            self.sync(SyncInput::Offence {
                peer: relay,
                reason: "gossiped a change with another device's certificate".into(),
            });
            return Some(false);
        }
        let wanted = match group {
            // A group's topic carries that group's documents, and nothing else.
            Some(g) => {
                if channel(&change.doc) != Channel::Group(g) {
                    self.sync(SyncInput::Offence {
                        peer: relay,
                        reason: "sent another space's change on a group topic".into(),
                    });
                    return Some(false);
                }
                true
            }
            None => {
                let kept = self.keeps(&change.doc.owner);
                // Followed identities' documents, and the profiles of people
                // met (the identities of connected peers): a stranger cannot
                // fill the store with profiles of throwaway identities.
                let met = change.doc.kind == kith_core::DocKind::Profile
                    && self
                        .engine
                        .peers()
                        .any(|(_, id)| id == Some(change.doc.owner));
                // Private and group documents never travel on the public
                // topic (a peer sending one relays what it should not have);
                // they come by sync or on their group's topic.
                (kept || met) && channel(&change.doc) == Channel::Public
            }
        };
        if !wanted {
            // Check it so the mesh only carries valid changes, but do not keep it.
            // The store's certificate for the device wins; else the one that
            // came with the message (verified above).
            let known = self
                .service
                .store()
                .identity_of(&change.device)
                .ok()
                .flatten();
            let identity = Some(known.unwrap_or(cert.identity));
            let signer = change.device;
            let certs = move |d: &DeviceId| if *d == signer { identity } else { None };
            return match change.verify(&certs) {
                Ok(_) => Some(true),
                Err(e) => {
                    self.sync(SyncInput::Offence {
                        peer: relay,
                        reason: format!("gossiped an invalid change: {e}"),
                    });
                    Some(false)
                }
            };
        }
        let signer = change.device;
        match self
            .service
            .store_mut()
            .ingest_buffered(&[cert], vec![change])
        {
            Ok(report)
                if report
                    .rejected
                    .first()
                    .is_some_and(|(_, e)| !e.blames_relay())
                    && signer != relay =>
            {
                // Not forwarded, and not held against a relay that did not sign it.
                None
            }
            Ok(report) if !report.rejected.is_empty() => {
                let reason = format!("gossiped an invalid change: {}", report.rejected[0].1);
                self.sync(SyncInput::Offence {
                    peer: relay,
                    reason,
                });
                Some(false)
            }
            Ok(report) => {
                if report.pending > 0 {
                    self.sync(SyncInput::DependenciesMissing { peer: relay });
                }
                Some(true)
            }
            Err(e) => {
                tracing::error!(error = %e, "store failed while applying gossip");
                None
            }
        }
    }

    /// A gossiped certificate, verified unless the very same one was before:
    /// every message carries its author's certificate, and checking its two
    /// signatures each time would double the cost of a message.
    fn certificate(&mut self, p: &proto::DeviceCertificate) -> Option<DeviceCert> {
        let cert = DeviceCert::parse_proto(p).ok()?;
        if self.verified_certs.get(&cert.device) == Some(&cert) {
            return Some(cert);
        }
        cert.verify().ok()?;
        if self.verified_certs.len() >= VERIFIED_CERTS_KEPT {
            self.verified_certs.clear();
        }
        self.verified_certs.insert(cert.device, cert.clone());
        Some(cert)
    }

    /// Publishes the changes of the last local action that the publisher
    /// did not take (see `new`), each where [`channel`] says.
    fn publish_outbox(&mut self) {
        let outbox = self.service.take_outbox();
        for change in &outbox {
            let channel = channel(&change.doc());
            if channel == Channel::SyncOnly {
                continue;
            }
            let msg = gossip_message(change, &self.cert);
            match channel {
                Channel::Public => self.command(Command::Publish(msg)),
                Channel::Group(group) => {
                    // Under the key members hold now: a change that starts a
                    // new epoch goes out under the old one, which they can open.
                    if let Some((topic, data)) = self.channels.seal(&group, &msg) {
                        self.command(Command::PublishTo { topic, data });
                    }
                }
                Channel::SyncOnly => {}
            }
        }
    }

    fn call(&mut self, call: Call) -> Result<Reply, ActionError> {
        let interests_change = matches!(call, Call::Follow { .. } | Call::Unfollow { .. });
        let reply = match call {
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
        };
        // Peers heard of a public change as soon as it was signed, and hear
        // of group changes now; the caller hears back once the journal
        // records are on disk (nothing to wait for if the call changed
        // nothing). Should that write fail, the change is not acknowledged:
        // the caller is told it was not saved, and that peers may have it.
        self.publish_outbox();
        if let Err(e) = self.service.store_mut().sync_local() {
            tracing::error!(error = %e, "could not sync the journal of local changes");
            return Err(ActionError::NotDurable(e));
        }
        if interests_change {
            self.sync(SyncInput::InterestsChanged);
        }
        Ok(reply)
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

/// A local change as gossiped: the change and this device's certificate,
/// so that any receiver can check it alone (proto/README.md §12).
fn gossip_message(
    change: &kith_core::Verified<SignedChange>,
    cert: &proto::DeviceCertificate,
) -> Vec<u8> {
    proto::GossipChange {
        change: Some(change.signed().to_proto()),
        certificate: Some(cert.clone()),
    }
    .encode_to_vec()
}

/// Where a document's changes travel live (proto/README.md §12). The one
/// decision both for publishing and for what a topic may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// The public topic: profiles and public feeds.
    Public,
    /// The group's own topic, encrypted: its control log and its feeds.
    Group(SpaceId),
    /// No topic: private documents reach this identity's devices by sync,
    /// which checks who asks.
    SyncOnly,
}

fn channel(doc: &kith_core::DocId) -> Channel {
    match doc.kind {
        kith_core::DocKind::Profile => Channel::Public,
        kith_core::DocKind::Feed if doc.space.is_public() => Channel::Public,
        kith_core::DocKind::Feed | kith_core::DocKind::GroupControl => Channel::Group(doc.space),
        kith_core::DocKind::Private => Channel::SyncOnly,
    }
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

impl Service {
    /// Identities whose documents this node keeps: itself and whom it follows.
    pub fn interests(&self) -> Result<BTreeSet<IdentityId>, ActionError> {
        Replica::interests(self).map_err(|e| ActionError::Invalid(e.0))
    }
}
