//! Gossip intake against a hostile relay, in the IO-free core: bob's engine
//! and an in-memory replica, messages relayed by mallory, no sockets and a
//! simulated clock. Each case asserts its verdict, its offence (or none),
//! and what bob stored.
//!
//! Seeded: keys, flipped bytes and cut points come from the seed.
//! `KITH_TEST_SEED` replays one run; `KITH_TEST_CASES` sets how many
//! (default 16). Each run prints its seed.

use kith_core::gossip::{GossipChange, MAX_GOSSIP_BYTES, Topic, Verdict};
use kith_core::group::EpochKey;
use kith_core::sync::{Engine, EngineConfig, Input, Output, Request, Response};
use kith_core::testing::{MemoryReplica, Person};
use kith_core::{DeviceCert, DeviceId, DocId, SignedChange, SpaceId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Bob, who follows alice, with mallory and alice connected to him.
struct World {
    alice: Person,
    bob: Person,
    mallory: Person,
    carol: Person,
    engine: Engine,
    replica: MemoryReplica,
    now: u64,
    messages: u64,
    rng: StdRng,
}

/// What bob's engine made of one message.
#[derive(Debug)]
struct Outcome {
    verdict: Verdict,
    /// The relay was disconnected for its offences.
    disconnected: bool,
    /// Everything the engine asked for.
    outputs: Vec<Output>,
}

impl World {
    fn new(seed: u64) -> World {
        let alice = Person::new("alice", seed);
        let bob = Person::new("bob", seed);
        let mallory = Person::new("mallory", seed);
        let carol = Person::new("carol", seed);
        let mut replica = MemoryReplica::of(&bob);
        replica.follow(alice.id());
        let mut w = World {
            engine: Engine::new(EngineConfig {
                // One offence disconnects: each case sees whether it counted.
                max_offences: 1,
                ..EngineConfig::default()
            }),
            replica,
            alice,
            bob,
            mallory,
            carol,
            now: 1_000,
            messages: 0,
            rng: StdRng::seed_from_u64(seed),
        };
        for cert in [w.mallory.cert.clone(), w.alice.cert.clone()] {
            w.connect(cert);
        }
        w
    }

    fn handle(&mut self, input: Input) -> Vec<Output> {
        self.now += 10;
        self.engine.handle(input, self.now, &mut self.replica)
    }

    /// Connects a peer and has it say who it is.
    fn connect(&mut self, cert: DeviceCert) {
        let peer = cert.device;
        let out = self.handle(Input::PeerConnected { peer });
        let hello = out
            .iter()
            .find_map(|o| match o {
                Output::Send(s) if s.request == Request::Hello => Some(s.id),
                _ => None,
            })
            .expect("a new peer is asked who it is");
        let out = self.handle(Input::ResponseReceived {
            peer,
            id: hello,
            response: Response::Hello(cert),
        });
        // It has nothing bob lacks.
        for o in out {
            if let Output::Send(s) = o
                && matches!(s.request, Request::Versions { .. })
            {
                self.handle(Input::ResponseReceived {
                    peer,
                    id: s.id,
                    response: Response::Versions(Vec::new()),
                });
            }
        }
        assert!(self.engine.peers().any(|(d, id)| d == peer && id.is_some()));
    }

    fn relay(&mut self, relay: DeviceId, topic: Topic, data: Vec<u8>) -> Outcome {
        self.messages += 1;
        let message = kith_core::sync::MessageRef(self.messages.to_be_bytes().to_vec());
        let out = self.handle(Input::GossipReceived {
            relay,
            topic,
            message: message.clone(),
            data,
        });
        let verdicts: Vec<Verdict> = out
            .iter()
            .filter_map(|o| match o {
                Output::Validate {
                    message: m,
                    relay: r,
                    verdict,
                } if *m == message && *r == relay => Some(*verdict),
                _ => None,
            })
            .collect();
        assert_eq!(verdicts.len(), 1, "one verdict per message: {out:?}");
        Outcome {
            verdict: verdicts[0],
            disconnected: out
                .iter()
                .any(|o| matches!(o, Output::Disconnect { peer, .. } if *peer == relay)),
            outputs: out,
        }
    }

    /// Mallory relays `data` on the public topic.
    fn relayed_by_mallory(&mut self, data: Vec<u8>) -> Outcome {
        let relay = self.mallory.device.id();
        self.relay(relay, Topic::Public, data)
    }

    /// A group bob makes and keeps, and the topic his engine joins for it:
    /// the group, its topic and its key.
    /// A group id drawn from the seed: 32 independent bytes, never the
    /// public space (whose id is all zeros).
    fn group_id(&mut self) -> SpaceId {
        loop {
            let id = SpaceId(self.rng.random());
            if id != SpaceId::PUBLIC {
                return id;
            }
        }
    }

    fn own_group(&mut self, name: &str) -> (SpaceId, Topic, EpochKey) {
        let (group, created) = self.bob.create_group(name);
        let state = self.bob.group_state(&group);
        self.replica.set_groups(vec![state.clone()]);
        self.replica.write(created);
        let subscribed: Vec<String> = self
            .handle(Input::GroupsChanged)
            .into_iter()
            .filter_map(|o| match o {
                Output::Subscribe(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(subscribed.len(), 1, "bob joins his group's topic");
        let key = state.keys_for(&self.bob.device)[0].1.clone();
        (group, Topic::Named(subscribed[0].clone()), key)
    }

    /// Whether bob asks `peer` for versions now (in `out`) or by a second
    /// later.
    fn asks_versions(&mut self, peer: DeviceId, out: &[Output]) -> bool {
        self.now += 1_000;
        let later = self.handle(Input::Tick);
        out.iter().chain(&later).any(|o| {
            matches!(o, Output::Send(s) if s.peer == peer
                && matches!(s.request, Request::Versions { .. }))
        })
    }

    fn flip(&mut self, bytes: &mut [u8]) {
        let i = self.rng.random_range(0..bytes.len());
        bytes[i] ^= 1 << self.rng.random_range(0..8);
    }
}

fn envelope(change: &SignedChange, cert: &DeviceCert) -> Vec<u8> {
    GossipChange {
        change: change.clone(),
        certificate: cert.clone(),
    }
    .encode()
}

/// The one case that must be accepted, forwarded and kept.
fn honest(w: &mut World) {
    let post = w.alice.post("shipping today");
    let data = envelope(&post, &w.alice.cert);
    let o = w.relayed_by_mallory(data);
    assert_eq!(o.verdict, Verdict::Accept);
    assert!(!o.disconnected);
    assert!(w.replica.holds(&post), "a followed author's post is kept");
}

fn forged_signature(w: &mut World) {
    let mut post = w.alice.post("forged");
    let mut sig = post.signature;
    w.flip(&mut sig);
    post.signature = sig;
    let data = envelope(&post, &w.alice.cert);
    let o = w.relayed_by_mallory(data);
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected, "a forged signature is the relay's offence");
    assert!(!w.replica.holds(&post));
}

/// Mallory passes off alice's change as signed by its own device: the
/// actor is alice's device, the signature mallory's.
fn spoofed_actor(w: &mut World) {
    let post = w.alice.post("mine, says mallory");
    let header = kith_core::chunk::parse_header(&post.change).unwrap();
    let spoofed = SignedChange {
        device: w.mallory.device.id(),
        signature: w
            .mallory
            .device
            .sign(&SignedChange::signed_bytes(&post.doc, &header.hash)),
        ..post
    };
    let data = envelope(&spoofed, &w.mallory.cert);
    let o = w.relayed_by_mallory(data);
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected);
    assert!(!w.replica.holds(&spoofed));
}

/// Mallory writes to alice's feed with its own device and certificate.
fn unauthorised_author(w: &mut World) {
    let alice_feed = DocId::feed(w.alice.id(), SpaceId::PUBLIC, 0);
    let mut change = w.mallory.change(alice_feed, |d| {
        let _body = kith_core::schema::feed::create_post(d, "x", "alice never wrote this", 1, None)
            .unwrap();
    });
    change.bodies.clear();
    let data = envelope(&change, &w.mallory.cert);
    let o = w.relayed_by_mallory(data);
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected);
    assert!(!w.replica.holds(&change));
}

/// A certificate claiming mallory's device for alice's identity.
fn uncertified_device(w: &mut World) {
    let change = w.mallory.rename("Alice (really)");
    let mut cert = DeviceCert::issue(&w.mallory.identity, &w.mallory.device, 1);
    cert.identity = w.alice.id();
    let data = envelope(&change, &cert);
    let o = w.relayed_by_mallory(data);
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected, "a certificate that does not verify");
}

fn group_document_on_the_public_topic(w: &mut World) {
    let group = w.group_id();
    let post = w.alice.post_in(group, "for the group only");
    let data = envelope(&post, &w.alice.cert);
    let o = w.relayed_by_mallory(data);
    assert_eq!(
        o.verdict,
        Verdict::Reject,
        "a group's change is never public"
    );
    assert!(o.disconnected);
    assert!(!w.replica.holds(&post));
}

fn private_document_on_the_public_topic(w: &mut World) {
    let private = DocId::private(w.alice.id());
    let change = w.alice.change(private, |d| {
        use automerge::transaction::Transactable;
        d.put(automerge::ROOT, "l/x", "customer").unwrap();
    });
    let data = envelope(&change, &w.alice.cert);
    let o = w.relayed_by_mallory(data);
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected);
    assert!(!w.replica.holds(&change));
}

/// A group bob belongs to (he made it), and a public post sealed under the
/// group's key on the group's topic.
fn public_document_on_a_group_topic(w: &mut World) {
    let (group, topic, key) = w.own_group("book club");

    // The group's own change on its topic: accepted.
    let group_post = w.bob.post_in(group, "first meeting on friday");
    let sealed = key
        .encrypt(&group, &envelope(&group_post, &w.bob.cert))
        .unwrap();
    let mallory = w.mallory.device.id();
    let o = w.relay(mallory, topic.clone(), sealed);
    assert_eq!(o.verdict, Verdict::Accept);
    assert!(w.replica.holds(&group_post));

    // A public post on the group's topic: misplaced.
    let post = w.alice.post("public, but sent to the group");
    let sealed = key
        .encrypt(&group, &envelope(&post, &w.alice.cert))
        .unwrap();
    let o = w.relay(mallory, topic.clone(), sealed);
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected);
    assert!(!w.replica.holds(&post));
}

/// Another group's change sealed under this group's key.
fn another_groups_document_on_a_group_topic(w: &mut World) {
    let (group, topic, key) = w.own_group("book club");
    let elsewhere = w.group_id();
    let post = w.alice.post_in(elsewhere, "for another group");
    let sealed = key
        .encrypt(&group, &envelope(&post, &w.alice.cert))
        .unwrap();
    let mallory = w.mallory.device.id();
    let o = w.relay(mallory, topic, sealed);
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected);
    assert!(!w.replica.holds(&post));
}

fn undecryptable_on_a_group_topic(w: &mut World) {
    let (group, topic, key) = w.own_group("ops");
    let post = w.bob.post_in(group, "sealed");
    let mut sealed = key.encrypt(&group, &envelope(&post, &w.bob.cert)).unwrap();
    // A key this device does not hold: not the relay's fault.
    let other = EpochKey::from_bytes(w.rng.random());
    let foreign = other
        .encrypt(&group, &envelope(&post, &w.bob.cert))
        .unwrap();
    let mallory = w.mallory.device.id();
    let o = w.relay(mallory, topic.clone(), foreign);
    assert_eq!((o.verdict, o.disconnected), (Verdict::Ignore, false));
    // A damaged ciphertext under bob's key: forged.
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    let o = w.relay(mallory, topic.clone(), sealed);
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected);
    assert!(!w.replica.holds(&post));
}

fn oversized_envelope(w: &mut World) {
    let mut data = envelope(&w.alice.post("big"), &w.alice.cert);
    data.resize(MAX_GOSSIP_BYTES + 1 + w.rng.random_range(0..1000), 0);
    let o = w.relayed_by_mallory(data);
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected);
}

fn truncated_envelope(w: &mut World) {
    let post = w.alice.post("cut short");
    let data = envelope(&post, &w.alice.cert);
    let cut = w.rng.random_range(1..data.len());
    let o = w.relayed_by_mallory(data[..cut].to_vec());
    assert_eq!(o.verdict, Verdict::Reject, "a {cut}-byte prefix");
    assert!(o.disconnected);
    assert!(!w.replica.holds(&post));
}

/// Alice tells two stories under one actor and sequence number. An honest
/// relay of the second is not at fault; alice relaying it herself is.
fn equivocation(w: &mut World) {
    let mut twin = Person::new("alice", 0);
    twin.identity = kith_core::IdentityKey::from_secret_bytes(&w.alice.identity.secret_bytes());
    twin.device = kith_core::DeviceKey::from_secret_bytes(&w.alice.device.secret_bytes());
    twin.cert = w.alice.cert.clone();
    let first = w.alice.post("one story");
    let second = twin.post("another story");
    let cert = w.alice.cert.clone();
    assert_eq!(
        w.relayed_by_mallory(envelope(&first, &cert)).verdict,
        Verdict::Accept
    );
    let o = w.relayed_by_mallory(envelope(&second, &cert));
    assert_eq!((o.verdict, o.disconnected), (Verdict::Ignore, false));
    assert_eq!(w.replica.quarantined.len(), 1, "kept as evidence");
    assert!(!w.replica.holds(&second));
    let alice = w.alice.device.id();
    let o = w.relay(alice, Topic::Public, envelope(&second, &cert));
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected, "the signer relaying its own equivocation");
}

/// Carol, whom bob does not follow: checked and forwarded, not kept.
fn nobody_follows(w: &mut World) {
    let post = w.carol.post("anyone there?");
    let cert = w.carol.cert.clone();
    let before = w.replica.verifications;
    let o = w.relayed_by_mallory(envelope(&post, &cert));
    assert_eq!((o.verdict, o.disconnected), (Verdict::Accept, false));
    assert!(
        !w.replica.holds(&post),
        "nothing of a stranger's post is kept"
    );
    assert_eq!(w.replica.verifications, before + 1, "but it is verified");
    // And a forged one of hers is still rejected.
    let mut forged = w.carol.post("forged stranger");
    forged.signature[0] ^= 0x80;
    let o = w.relayed_by_mallory(envelope(&forged, &cert));
    assert_eq!(o.verdict, Verdict::Reject);
    assert!(o.disconnected);
}

/// A change whose predecessor has not arrived: kept waiting, and bob asks
/// the relay for versions.
fn missing_dependency(w: &mut World) {
    let mallory = w.mallory.device.id();
    let first = w.alice.post("one");
    let second = w.alice.post("two");
    let third = w.alice.post("three");
    let cert = w.alice.cert.clone();
    let o = w.relayed_by_mallory(envelope(&first, &cert));
    assert_eq!(o.verdict, Verdict::Accept);
    assert!(
        !w.asks_versions(mallory, &o.outputs),
        "nothing is missing yet"
    );
    let o = w.relayed_by_mallory(envelope(&third, &cert));
    assert_eq!((o.verdict, o.disconnected), (Verdict::Accept, false));
    assert!(w.replica.holds(&third), "kept, waiting");
    assert!(
        w.asks_versions(mallory, &o.outputs),
        "sync fetches what the change depends on"
    );
    let _ = second;
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("KITH_TEST_SEED") {
        return vec![s.parse().expect("KITH_TEST_SEED is a number")];
    }
    let cases: u64 = std::env::var("KITH_TEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let base: u64 = rand::rng().random();
    (0..cases).map(|i| base.wrapping_add(i)).collect()
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            for seed in seeds() {
                println!("{}: seed {seed}", stringify!($name));
                let mut w = World::new(seed);
                super::$name(&mut w);
            }
        }
    )*};
}

mod hostile_relay {
    use super::*;
    cases!(
        honest,
        forged_signature,
        spoofed_actor,
        unauthorised_author,
        uncertified_device,
        group_document_on_the_public_topic,
        private_document_on_the_public_topic,
        public_document_on_a_group_topic,
        another_groups_document_on_a_group_topic,
        undecryptable_on_a_group_topic,
        oversized_envelope,
        truncated_envelope,
        equivocation,
        nobody_follows,
        missing_dependency,
    );
}
