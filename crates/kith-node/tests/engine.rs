//! The sync engine with simulated peers and a simulated clock: no sockets,
//! no sleeps. Real stores, a simulated network that delays, reorders and
//! loses messages and partitions links.
//!
//! Seeded: `KITH_TEST_SEED` replays a run; `KITH_TEST_CASES` sets how many
//! seeds (default 4). Each run prints its seed.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashSet};

use kith_core::sync::{Engine, EngineConfig, Input, Output, Request, Response, Sent};
use kith_core::{DeviceId, DocId, IdentityId};
use kith_node::home::{Home, HomeSource};
use kith_node::service::Service;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// How long a lost request takes to be reported failed.
const TIMEOUT_MS: u64 = 10_000;
const TICK_MS: u64 = 1_000;

struct Node {
    name: &'static str,
    service: Service,
    engine: Engine,
    device: DeviceId,
    /// Corrupts the signatures of every change it sends.
    hostile: bool,
    _home: tempfile::TempDir,
}

impl Node {
    /// A node in a home of its own; with `identity_key`, a new device of
    /// the identity that key belongs to, else a new identity.
    fn open(name: &'static str, identity_key: Option<&std::path::Path>) -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home {
            dir: tmp.path().join("home"),
            source: HomeSource::Flag,
        };
        if let Some(key) = identity_key {
            std::fs::create_dir(&home.dir).unwrap();
            let file = kith_node::home::IDENTITY_KEY_FILE;
            std::fs::copy(key, home.dir.join(file)).unwrap();
        }
        let (service, _) = Service::open(&home).unwrap();
        let device = service.keys().device.id();
        Node {
            name,
            service,
            engine: Engine::new(EngineConfig::default()),
            device,
            hostile: false,
            _home: tmp,
        }
    }
}

enum Msg {
    Input(Input),
}

struct Sim {
    nodes: Vec<Node>,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    payloads: std::collections::HashMap<u64, Msg>,
    links: HashSet<(usize, usize)>,
    rng: StdRng,
    loss: f64,
    /// Lost messages are never reported: the engine's own timeouts must act.
    silent_loss: bool,
    disconnects: Vec<(usize, usize)>,
}

fn link(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Sim {
    fn new(names: &[&'static str], seed: u64, loss: f64) -> Sim {
        let nodes = names
            .iter()
            .map(|name| {
                let mut node = Node::open(name, None);
                node.service.set_profile(Some(name), None).unwrap();
                node
            })
            .collect();
        Sim {
            nodes,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            payloads: Default::default(),
            links: HashSet::new(),
            rng: StdRng::seed_from_u64(seed),
            loss,
            silent_loss: seed.is_multiple_of(2),
            disconnects: Vec::new(),
        }
    }

    /// A new node: another device of node `i`'s identity.
    fn add_device_of(&mut self, i: usize, name: &'static str) -> usize {
        let identity_key = self.nodes[i]
            ._home
            .path()
            .join("home")
            .join(kith_node::home::IDENTITY_KEY_FILE);
        let node = Node::open(name, Some(&identity_key));
        assert_eq!(node.service.identity(), self.id(i), "same identity");
        assert_ne!(node.device, self.nodes[i].device, "another device");
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn id(&self, i: usize) -> IdentityId {
        self.nodes[i].service.identity()
    }

    fn index_of(&self, device: &DeviceId) -> usize {
        self.nodes
            .iter()
            .position(|n| n.device == *device)
            .expect("known device")
    }

    fn schedule(&mut self, at: u64, to: usize, input: Input) {
        self.seq += 1;
        self.payloads.insert(self.seq, Msg::Input(input));
        self.queue.push(Reverse((at, self.seq, to)));
    }

    fn connect(&mut self, a: usize, b: usize) {
        if self.links.insert(link(a, b)) {
            let (da, db) = (self.nodes[a].device, self.nodes[b].device);
            self.schedule(self.now, a, Input::PeerConnected { peer: db });
            self.schedule(self.now, b, Input::PeerConnected { peer: da });
        }
    }

    fn disconnect(&mut self, a: usize, b: usize) {
        if self.links.remove(&link(a, b)) {
            let (da, db) = (self.nodes[a].device, self.nodes[b].device);
            self.schedule(self.now, a, Input::PeerDisconnected { peer: db });
            self.schedule(self.now, b, Input::PeerDisconnected { peer: da });
        }
    }

    fn deliver(&mut self, to: usize, input: Input) {
        // Messages between peers only pass while their link is up.
        let from = match &input {
            Input::RequestReceived { peer, .. } | Input::ResponseReceived { peer, .. } => {
                Some(self.index_of(peer))
            }
            _ => None,
        };
        if let Some(from) = from
            && !self.links.contains(&link(from, to))
        {
            return;
        }
        let now = self.now;
        let node = &mut self.nodes[to];
        let outputs = node.engine.handle(input, now, &mut node.service);
        for out in outputs {
            self.output(to, out);
        }
    }

    fn output(&mut self, from: usize, out: Output) {
        let delay = self.rng.random_range(1..80);
        match out {
            Output::Send(Sent { peer, id, request }) => {
                let to = self.index_of(&peer);
                let me = self.nodes[from].device;
                if !self.links.contains(&link(from, to)) || self.rng.random_bool(self.loss) {
                    if !self.silent_loss {
                        let at = self.now + TIMEOUT_MS;
                        self.schedule(at, from, Input::RequestFailed { peer, id });
                    }
                } else {
                    self.schedule(
                        self.now + delay,
                        to,
                        Input::RequestReceived {
                            peer: me,
                            id,
                            request,
                        },
                    );
                }
            }
            Output::Respond {
                peer,
                id,
                mut response,
            } => {
                let to = self.index_of(&peer);
                let me = self.nodes[from].device;
                if self.nodes[from].hostile
                    && let Response::Changes(batch) = &mut response
                {
                    for c in &mut batch.changes {
                        c.signature[0] ^= 1;
                    }
                }
                if self.rng.random_bool(self.loss) {
                    if !self.silent_loss {
                        let at = self.now + TIMEOUT_MS;
                        self.schedule(at, to, Input::RequestFailed { peer: me, id });
                    }
                } else {
                    self.schedule(
                        self.now + delay,
                        to,
                        Input::ResponseReceived {
                            peer: me,
                            id,
                            response,
                        },
                    );
                }
            }
            Output::Disconnect { peer, .. } => {
                let to = self.index_of(&peer);
                self.disconnects.push((from, to));
                self.disconnect(from, to);
            }
            Output::PeerIdentified { .. } | Output::JoinAnswer { .. } => {}
            // This simulation is of catch-up alone; gossip has its own
            // (kith-core's gossip_intake tests).
            Output::Validate { .. }
            | Output::Gossip { .. }
            | Output::Subscribe(_)
            | Output::Unsubscribe(_) => {}
        }
    }

    /// Runs the simulation until `until` (simulated milliseconds).
    fn run_until(&mut self, until: u64) {
        let mut next_tick = (self.now / TICK_MS + 1) * TICK_MS;
        loop {
            let next_msg = self.queue.peek().map(|Reverse((t, _, _))| *t);
            match next_msg {
                Some(t) if t <= next_tick && t <= until => {
                    let Reverse((t, seq, to)) = self.queue.pop().unwrap();
                    self.now = t;
                    let Msg::Input(input) = self.payloads.remove(&seq).unwrap();
                    self.deliver(to, input);
                }
                _ if next_tick <= until => {
                    self.now = next_tick;
                    next_tick += TICK_MS;
                    for i in 0..self.nodes.len() {
                        self.deliver(i, Input::Tick);
                    }
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
    }

    /// Node `i` follows node `j`, and its engine hears of it.
    fn follow(&mut self, i: usize, j: usize) {
        let who = self.id(j);
        self.nodes[i].service.follow(&who, &[]).unwrap();
        let now = self.now;
        let node = &mut self.nodes[i];
        for out in node
            .engine
            .handle(Input::InterestsChanged, now, &mut node.service)
        {
            self.output(i, out);
        }
    }

    /// Every public document of `owner` is at the owner's version on `reader`.
    fn has_all_of(&self, reader: usize, owner: usize) -> Result<(), String> {
        let who = BTreeSet::from([self.id(owner)]);
        let docs = self.nodes[owner]
            .service
            .store()
            .versions(&who, &BTreeSet::new(), &BTreeSet::new(), None)
            .unwrap();
        for (doc, theirs) in docs {
            let ours = self.nodes[reader].service.store().version(&doc).unwrap();
            if ours != theirs {
                return Err(format!(
                    "{} lacks {doc} of {}: {ours:?} vs {theirs:?}",
                    self.nodes[reader].name, self.nodes[owner].name
                ));
            }
        }
        Ok(())
    }
}

fn seeds() -> Vec<u64> {
    let cases: u64 = std::env::var("KITH_TEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let first: u64 = std::env::var("KITH_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    (0..cases).map(|i| first.wrapping_add(i)).collect()
}

#[test]
fn followers_converge_through_loss_reordering_and_partitions() {
    // alice -- bob -- carol   (alice and carol never link directly)
    for seed in seeds() {
        println!("engine: KITH_TEST_SEED={seed}");
        let mut sim = Sim::new(&["alice", "bob", "carol"], seed, 0.1);
        let (alice, bob, carol) = (0, 1, 2);
        sim.follow(bob, alice);
        sim.follow(carol, alice);
        sim.follow(carol, bob);
        sim.follow(alice, bob);
        sim.connect(alice, bob);
        sim.connect(bob, carol);
        for round in 0..30 {
            // Partitions come and go.
            if sim.rng.random_bool(0.2) {
                let (a, b) = *[(alice, bob), (bob, carol)].choose(&mut sim.rng).unwrap();
                if sim.links.contains(&link(a, b)) {
                    sim.disconnect(a, b)
                } else {
                    sim.connect(a, b)
                }
            }
            let writer = *[alice, bob, carol].choose(&mut sim.rng).unwrap();
            let text = format!("round {round} from {}", sim.nodes[writer].name);
            sim.nodes[writer].service.post(&text, None).unwrap();
            if sim.rng.random_bool(0.2) {
                let feed = sim.nodes[writer]
                    .service
                    .feed(Some(sim.id(writer)), 1)
                    .unwrap();
                sim.nodes[writer]
                    .service
                    .edit(&feed[0].id, &format!("edited in round {round}"))
                    .unwrap();
            }
            let until = sim.now + sim.rng.random_range(100..5_000);
            sim.run_until(until);
        }
        // Heal and give every pair two resync periods.
        sim.connect(alice, bob);
        sim.connect(bob, carol);
        // Converge within a deadline of simulated time.
        let pairs = [(bob, alice), (carol, alice), (carol, bob), (alice, bob)];
        let healed = sim.now;
        let deadline = healed + 10 * 60_000;
        let carol_id = sim.id(carol);
        let converged = |sim: &Sim| {
            pairs.iter().all(|(r, o)| sim.has_all_of(*r, *o).is_ok())
                && !sim.nodes.iter().any(|n| n.engine.is_syncing())
                && sim.nodes[bob]
                    .service
                    .person(Some(carol_id))
                    .is_ok_and(|p| p.name.is_some())
        };
        while !converged(&sim) && sim.now < deadline {
            sim.run_until(sim.now + 500);
        }
        for (reader, owner) in pairs {
            sim.has_all_of(reader, owner)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        println!(
            "engine: converged {} simulated ms after healing",
            sim.now - healed
        );
        // Nobody receives what they did not ask for: alice does not follow carol.
        let carol_feed = DocId::feed(sim.id(carol), kith_core::SpaceId::PUBLIC, 0);
        assert!(
            sim.nodes[alice]
                .service
                .store()
                .version(&carol_feed)
                .unwrap()
                .is_empty(),
            "seed {seed}"
        );
        // But people met are known by their profile.
        assert!(
            sim.nodes[bob]
                .service
                .person(Some(sim.id(carol)))
                .unwrap()
                .name
                .is_some(),
            "seed {seed}"
        );
        assert!(
            sim.disconnects.is_empty(),
            "seed {seed}: honest peers were disconnected: {:?}",
            sim.disconnects
        );
    }
}

#[test]
fn a_peer_sending_forged_changes_is_disconnected_and_honest_sync_goes_on() {
    // mallory -- bob -- alice: mallory relays alice's posts with broken signatures.
    for seed in seeds() {
        println!("engine: KITH_TEST_SEED={seed}");
        let mut sim = Sim::new(&["alice", "bob", "mallory"], seed, 0.0);
        let (alice, bob, mallory) = (0, 1, 2);
        sim.nodes[mallory].hostile = true;
        // A second device of mallory's, honest and already connected to bob.
        let phone = sim.add_device_of(mallory, "mallory's phone");
        sim.connect(phone, bob);
        sim.follow(bob, alice);
        sim.follow(mallory, alice);
        for i in 0..20 {
            sim.nodes[alice]
                .service
                .post(&format!("post {i}"), None)
                .unwrap();
        }
        // mallory gets alice's posts first, then offers them to bob.
        sim.connect(alice, mallory);
        sim.run_until(sim.now + 5_000);
        sim.has_all_of(mallory, alice).unwrap();
        sim.connect(mallory, bob);
        sim.run_until(sim.now + 4 * EngineConfig::default().resync_ms);
        assert!(
            sim.disconnects.contains(&(bob, mallory)),
            "seed {seed}: bob kept mallory: {:?}",
            sim.disconnects
        );
        assert!(
            sim.disconnects.contains(&(bob, phone)),
            "seed {seed}: bob kept another device of the banned identity"
        );
        assert!(
            sim.nodes[bob]
                .service
                .feed(Some(sim.id(alice)), 100)
                .unwrap()
                .is_empty(),
            "nothing forged applied"
        );
        // Reconnecting does not help mallory: she is banned for a while.
        sim.connect(mallory, bob);
        sim.run_until(sim.now + 1_000);
        assert!(
            !sim.links.contains(&link(mallory, bob)),
            "seed {seed}: banned peer reconnected"
        );
        // Nor does a new device of hers: the ban covers her identity.
        let laptop = sim.add_device_of(mallory, "mallory's laptop");
        sim.connect(laptop, bob);
        sim.run_until(sim.now + 1_000);
        assert!(
            sim.disconnects.contains(&(bob, laptop)),
            "seed {seed}: a device of a banned identity was kept"
        );
        // Honest sync still works.
        sim.connect(alice, bob);
        sim.run_until(sim.now + 5_000);
        sim.has_all_of(bob, alice)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

#[test]
fn requests_for_documents_never_asked_for_are_answered_but_not_applied() {
    // A peer asking about anything gets answers only for public documents.
    let mut sim = Sim::new(&["alice", "bob"], 1, 0.0);
    let (alice, bob) = (0, 1);
    let bob_id = sim.id(bob);
    sim.nodes[alice]
        .service
        .label(&bob_id, &["colleague".into()], &[])
        .unwrap();
    let private = DocId::private(sim.id(alice));
    let request = Request::Changes {
        doc: private,
        have: Default::default(),
        max_bytes: 1 << 20,
    };
    sim.connect(alice, bob);
    sim.run_until(2_000);
    let bob_device = sim.nodes[bob].device;
    let node = &mut sim.nodes[alice];
    let out = node.engine.handle(
        Input::RequestReceived {
            peer: bob_device,
            id: 99,
            request,
        },
        2_000,
        &mut node.service,
    );
    match &out[..] {
        [
            Output::Respond {
                response: Response::Changes(batch),
                ..
            },
        ] => assert!(batch.changes.is_empty()),
        other => panic!("unexpected {other:?}"),
    }
}
