//! A hostile peer against a real node. Mallory sends forged, spoofed,
//! oversized, malformed and equivocating changes: none of them is applied,
//! each counts against the device that relayed it (a gossipsub `Reject` and an
//! offence in the sync engine), the third offence gets that device
//! disconnected and banned, with every other device of its identity, and
//! honest traffic keeps flowing.
//!
//! Mallory is not a kith node: each of her devices is kith-net's swarm run
//! inside this test process with nothing behind it (no store, no checks), so
//! whatever bytes the test crafts go on the wire as they are.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ObjType};
use kith_core::gossip::{GossipChange, PUBLIC_TOPIC, Verdict};
use kith_core::schema::feed;
use kith_core::signed::MAX_CHANGE_BYTES;
use kith_core::sync::{Refusal, Request, Response};
use kith_core::{
    DeviceCert, DeviceId, DeviceKey, DocId, IdentityKey, SignedChange, SpaceId, VerifyError,
};
use kith_net::{Command, Event, MAX_GOSSIP_BYTES, Multiaddr};
use kith_tests::{TestHome, converge};
use tokio::sync::mpsc;

const LOOPBACK: &[&str] = &["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
/// Every wait in this test gives up after this long, in seconds.
const DEADLINE_SECS: u64 = 30;
/// Text every forged post starts with, so that none can hide in a feed.
const FORGED: &str = "forged:";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as u64
}

/// A document whose changes carry `actor`: `device` followed by `suffix`.
fn doc_of(device: &DeviceId, suffix: &[u8]) -> AutoCommit {
    AutoCommit::new().with_actor(kith_core::actor_id(device, suffix))
}

/// A raw change and the post bodies that travel beside it.
struct Made {
    change: Vec<u8>,
    bodies: Vec<Vec<u8>>,
}

impl From<Vec<u8>> for Made {
    fn from(change: Vec<u8>) -> Made {
        Made {
            change,
            bodies: Vec::new(),
        }
    }
}

/// Adds a post to a feed document; returns the change and the post's body.
fn post(doc: &mut AutoCommit, text: &str) -> Made {
    static NEXT_KEY: AtomicU32 = AtomicU32::new(0);
    let key = format!("k{}", NEXT_KEY.fetch_add(1, Ordering::Relaxed));
    let at = now_ms();
    let body = feed::create_post(doc, &key, text, at, None).expect("a valid post");
    Made {
        change: commit(doc, at),
        bodies: vec![body.into_bytes()],
    }
}

fn commit(doc: &mut AutoCommit, at_ms: u64) -> Vec<u8> {
    doc.commit_with(CommitOptions::default().with_time(at_ms as i64))
        .expect("the edit changed something");
    let change = doc.get_last_local_change().expect("just committed");
    change.raw_bytes().to_vec()
}

/// Signs `made` as a change of `doc` with `key`, whatever it holds.
fn sign(key: &DeviceKey, doc: DocId, made: impl Into<Made>) -> SignedChange {
    let Made { change, bodies } = made.into();
    let header = kith_core::chunk::parse_header(&change).expect("a well-formed change");
    SignedChange {
        doc,
        signature: key.sign(&SignedChange::signed_bytes(&doc, &header.hash)),
        device: key.id(),
        change,
        bodies,
    }
}

/// What a node would say of `change`, knowing only `certs`.
fn verdict(change: &SignedChange, certs: &[&DeviceCert]) -> Result<(), VerifyError> {
    let lookup = |d: &DeviceId| certs.iter().find(|c| c.device == *d).map(|c| c.identity);
    change.clone().verify(&lookup).map(|_| ())
}

/// The gossip message carrying `change` and a certificate.
fn gossip(change: &SignedChange, cert: &DeviceCert) -> Vec<u8> {
    GossipChange {
        change: change.clone(),
        certificate: cert.clone(),
    }
    .encode()
}

/// The texts of `author`'s posts as `home` shows them, newest first
/// (`None`: deleted).
fn texts(home: &TestHome, author: &str) -> Vec<Option<String>> {
    let posts = home
        .run(&["feed", "--author", author, "--limit", "1000", "--json"])
        .json();
    posts
        .as_array()
        .expect("a list of posts")
        .iter()
        .map(|p| p["text"].as_str().map(str::to_owned))
        .collect()
}

fn shows(home: &TestHome, author: &str, text: &str) -> bool {
    texts(home, author)
        .iter()
        .any(|t| t.as_deref() == Some(text))
}

/// The peers `home`'s node lists, as (device, identity).
fn peers(home: &TestHome) -> Vec<(String, Option<String>)> {
    let peers = home.run(&["peers", "--json"]).json();
    peers
        .as_array()
        .expect("a list of peers")
        .iter()
        .map(|p| {
            let device = p["device"].as_str().expect("a device").to_owned();
            (device, p["identity"].as_str().map(str::to_owned))
        })
        .collect()
}

fn lists_device(home: &TestHome, device: &DeviceId) -> bool {
    let device = device.to_string();
    peers(home).iter().any(|(d, _)| *d == device)
}

/// What one of mallory's devices saw of its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Connected,
    Disconnected,
}

/// One of mallory's devices.
struct Device {
    key: DeviceKey,
    cert: DeviceCert,
    commands: mpsc::Sender<Command>,
    seen: std_mpsc::Receiver<Seen>,
    // Dropped last: dropping the runtime stops the swarm and closes its connections.
    _runtime: tokio::runtime::Runtime,
}

impl Device {
    /// A new device certified by `identity`, listening on loopback and
    /// dialing `peer`.
    fn connect(identity: &IdentityKey, peer: &Multiaddr) -> Device {
        let key = DeviceKey::generate().expect("random bytes");
        let cert = DeviceCert::issue(identity, &key, now_ms());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (commands, command_rx) = mpsc::channel(kith_net::COMMAND_CAPACITY);
        let (event_tx, events) = mpsc::channel(kith_net::EVENT_CAPACITY);
        let (seen_tx, seen) = std_mpsc::channel();
        runtime.block_on(async {
            let mut registry = kith_net::Registry::default();
            let mut swarm = kith_net::build_swarm(
                kith_net::keypair(&key),
                &kith_net::NetConfig::default(),
                &mut registry,
            )
            .expect("a swarm");
            let metrics = kith_net::Metrics::new(&mut registry);
            swarm
                .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("a multiaddr"))
                .expect("listening on loopback");
            tokio::spawn(kith_net::run(swarm, vec![], metrics, command_rx, event_tx));
            tokio::spawn(answer(events, commands.clone(), cert.clone(), seen_tx));
        });
        let device = Device {
            key,
            cert,
            commands,
            seen,
            _runtime: runtime,
        };
        device.command(Command::Dial(peer.clone()));
        device
    }

    fn command(&self, cmd: Command) {
        self.commands
            .blocking_send(cmd)
            .expect("mallory's network task runs");
    }

    fn publish(&self, data: Vec<u8>) {
        self.command(Command::Publish {
            topic: PUBLIC_TOPIC.into(),
            data,
        });
    }

    /// Publishes an honest change of mallory's and waits until bob shows its
    /// post. One peer's gossip reaches bob's service in order, so by then bob
    /// has handled everything this device published before.
    fn deliver(&self, bob: &TestHome, mallory: &str, change: &SignedChange, text: &str) {
        let data = gossip(change, &self.cert);
        converge(DEADLINE_SECS, &format!("bob shows {text:?}"), || {
            // Until bob's subscription reaches this device, publishing finds
            // no peer and sends nothing; once sent, a repeat is dropped here
            // as a duplicate.
            self.publish(data.clone());
            shows(bob, mallory, text).then_some(())
        });
    }

    /// Waits until this device sees `what` happen to its connection.
    fn wait_for(&self, what: Seen, description: &str) {
        converge(DEADLINE_SECS, description, || {
            self.seen.try_iter().any(|s| s == what).then_some(())
        });
    }
}

/// Answers the node's sync requests as a peer with no documents would, and
/// reports connections to the test.
async fn answer(
    mut events: mpsc::Receiver<Event>,
    commands: mpsc::Sender<Command>,
    cert: DeviceCert,
    seen: std_mpsc::Sender<Seen>,
) {
    while let Some(event) = events.recv().await {
        let cmd = match event {
            Event::Request { id, request, .. } => {
                let response = match request {
                    Request::Hello => Response::Hello(cert.clone()),
                    Request::Versions { .. } => Response::Versions(Vec::new()),
                    Request::Changes { .. } => {
                        Response::Refused(Refusal::other("no such document"))
                    }
                    Request::Join { .. } => Response::Refused(Refusal::other("not a member")),
                };
                Command::Respond { id, response }
            }
            Event::Gossip { message, relay, .. } => Command::Validate {
                message,
                relay,
                verdict: Verdict::Ignore,
            },
            Event::Connected { .. } => {
                let _ = seen.send(Seen::Connected);
                continue;
            }
            Event::Disconnected { .. } => {
                let _ = seen.send(Seen::Disconnected);
                continue;
            }
            _ => continue,
        };
        if commands.send(cmd).await.is_err() {
            break;
        }
    }
}

#[test]
fn a_hostile_peer_gets_nothing_applied_and_is_disconnected_while_honest_traffic_flows() {
    // alice -- bob -- mallory (one device, then another), then trent
    let alice = TestHome::init("alice");
    let bob = TestHome::init("bob");
    let alice_node = alice.node(LOOPBACK);
    let alice_addr = alice_node.addr();
    let mut args = LOOPBACK.to_vec();
    args.extend(["--peer", &alice_addr]);
    let bob_node = bob.node(&args);
    let bob_addr: Multiaddr = bob_node.addr().parse().expect("a multiaddr");
    let alice_id = alice.id();
    let mallory = IdentityKey::generate().expect("random bytes");
    let mallory_id = mallory.id().to_string();
    converge(DEADLINE_SECS, "bob knows alice as a peer", || {
        peers(&bob)
            .iter()
            .any(|(_, id)| id.as_deref() == Some(alice_id.as_str()))
            .then_some(())
    });
    // bob wants both feeds, so mallory's changes go all the way to his store.
    bob.run(&["follow", &alice_id]).out();
    bob.run(&["follow", &mallory_id]).out();
    // trent, mallory's accomplice, takes over once she is banned.
    let trent = IdentityKey::generate().expect("random bytes");
    let trent_id = trent.id().to_string();
    bob.run(&["follow", &trent_id]).out();
    let before = "written before the attack";
    alice.run(&["post", before]).out();
    converge(DEADLINE_SECS, "alice's post reaches bob", || {
        shows(&bob, &alice_id, before).then_some(())
    });

    // What mallory needs to craft her messages: alice's device key stands in
    // for a change alice really signed (its signature is then tampered with).
    let alice_cert = DeviceCert::decode(&std::fs::read(alice.path("device.cert")).unwrap())
        .expect("alice's certificate");
    let alice_key = DeviceKey::from_secret_bytes(
        &std::fs::read(alice.path("device.key"))
            .unwrap()
            .try_into()
            .expect("a 32-byte key"),
    );
    assert_eq!(alice_cert.device, alice_key.id());
    let alice_feed = DocId::feed(alice_cert.identity, SpaceId::PUBLIC, 0);
    let mallory_feed = DocId::feed(mallory.id(), SpaceId::PUBLIC, 0);
    let trent_feed = DocId::feed(trent.id(), SpaceId::PUBLIC, 0);
    let mut honest = Vec::new();
    let mut honest_trent = Vec::new();

    // The laptop: three bad changes, each of which would be applied if its one
    // defect went unnoticed.
    let laptop = Device::connect(&mallory, &bob_addr);
    converge(DEADLINE_SECS, "bob lists mallory's laptop", || {
        lists_device(&bob, &laptop.key.id()).then_some(())
    });
    let mut mine = doc_of(&laptop.key.id(), b"laptop");
    let mut say = |device: &Device, doc: &mut AutoCommit, text: &str| {
        let change = sign(&device.key, mallory_feed, post(doc, text));
        device.deliver(&bob, &mallory_id, &change, text);
        honest.push(text.to_owned());
    };
    say(&laptop, &mut mine, "mallory: hello, I am harmless");

    // 1. A change of alice's feed by alice's device, one signature bit flipped.
    let text = format!("{FORGED} alice's device signed this, then it was altered");
    let mut tampered = sign(
        &alice_key,
        alice_feed,
        post(&mut doc_of(&alice_key.id(), b"tamper"), &text),
    );
    assert_eq!(verdict(&tampered, &[&alice_cert]), Ok(()));
    tampered.signature[0] ^= 1;
    assert_eq!(
        verdict(&tampered, &[&alice_cert]),
        Err(VerifyError::BadSignature)
    );
    laptop.publish(gossip(&tampered, &alice_cert));
    say(&laptop, &mut mine, "mallory: nothing to see here");

    // 2. Mallory's own change, validly signed, claiming alice's feed.
    let text = format!("{FORGED} mallory writing in alice's feed");
    let trespass = sign(
        &laptop.key,
        alice_feed,
        post(&mut doc_of(&laptop.key.id(), b"trespass"), &text),
    );
    assert!(matches!(
        verdict(&trespass, &[&laptop.cert]),
        Err(VerifyError::NotAuthorized { .. })
    ));
    laptop.publish(gossip(&trespass, &laptop.cert));
    say(&laptop, &mut mine, "mallory: still nothing");

    // 3. A change whose actor is alice's device, signed by mallory's laptop.
    let text = format!("{FORGED} mallory's post under alice's actor");
    let spoofed = sign(
        &laptop.key,
        mallory_feed,
        post(&mut doc_of(&alice_key.id(), b"spoof"), &text),
    );
    assert_eq!(
        verdict(&spoofed, &[&laptop.cert]),
        Err(VerifyError::ActorMismatch)
    );
    laptop.publish(gossip(&spoofed, &laptop.cert));
    laptop.wait_for(Seen::Disconnected, "bob disconnects mallory's laptop");
    converge(DEADLINE_SECS, "bob no longer lists the laptop", || {
        (!lists_device(&bob, &laptop.key.id())).then_some(())
    });
    // The laptop is banned: when it comes back, bob drops it again.
    laptop.command(Command::Dial(bob_addr.clone()));
    laptop.wait_for(Seen::Connected, "the laptop reconnects to bob");
    laptop.wait_for(Seen::Disconnected, "bob drops the banned laptop again");
    drop(laptop);
    // So is her identity: a fresh device of hers is dropped at hello.
    let tablet = Device::connect(&mallory, &bob_addr);
    tablet.wait_for(Seen::Connected, "mallory's tablet reaches bob");
    tablet.wait_for(
        Seen::Disconnected,
        "bob drops a device of the banned identity",
    );
    converge(DEADLINE_SECS, "bob does not list the tablet", || {
        (!lists_device(&bob, &tablet.key.id())).then_some(())
    });
    drop(tablet);

    // trent's phone: three more, each caught.
    let phone = Device::connect(&trent, &bob_addr);
    converge(DEADLINE_SECS, "bob lists trent's phone", || {
        lists_device(&bob, &phone.key.id()).then_some(())
    });
    let mut say = |device: &Device, doc: &mut AutoCommit, text: &str| {
        let change = sign(&device.key, trent_feed, post(doc, text));
        device.deliver(&bob, &trent_id, &change, text);
        honest_trent.push(text.to_owned());
    };
    let phone_actor = kith_core::actor_id(&phone.key.id(), b"phone");
    let mut mine = doc_of(&phone.key.id(), b"phone");
    // The same history, the same actor: its next change has the same number.
    let mut twin = mine.fork().with_actor(phone_actor);
    say(&phone, &mut mine, "trent: the first version");
    let first = mine.get_last_local_change().expect("just made");
    let first = kith_core::chunk::parse_header(first.raw_bytes()).expect("a well-formed change");

    // 4. Bytes that are not a GossipChange.
    let mut garbage = format!("{FORGED} not a gossip message").into_bytes();
    garbage.extend([0xff; 32]);
    assert!(GossipChange::decode(&garbage).is_err());
    phone.publish(garbage);
    say(
        &phone,
        &mut mine,
        "trent: sorry, my cat walked on the keyboard",
    );

    // 5. A change over the size limit, otherwise valid (and still small
    // enough for one gossipsub message, so that it reaches bob).
    let mut big = mine
        .fork()
        .with_actor(kith_core::actor_id(&phone.key.id(), b"big"));
    let at = now_ms();
    let obj = big
        .put_object(
            automerge::ROOT,
            format!("{}big", feed::POST_PREFIX),
            ObjType::Map,
        )
        .unwrap();
    let filler: String = (0..MAX_CHANGE_BYTES + 1024)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    big.put(&obj, feed::TEXT, format!("{FORGED} {filler}"))
        .unwrap();
    big.put(&obj, "at", at as i64).unwrap();
    let oversized = sign(&phone.key, trent_feed, commit(&mut big, at));
    assert!(oversized.change.len() > MAX_CHANGE_BYTES);
    let data = gossip(&oversized, &phone.cert);
    assert!(data.len() + 1024 < MAX_GOSSIP_BYTES, "{} bytes", data.len());
    phone.publish(data);
    say(&phone, &mut mine, "trent: that was too long anyway");

    // 6. Equivocation: another change with the number of "the first version".
    let text = format!("{FORGED} the first version, told differently");
    let equivocation = sign(&phone.key, trent_feed, post(&mut twin, &text));
    let twin = kith_core::chunk::parse_header(&equivocation.change).expect("a change");
    assert_eq!((&twin.actor, twin.seq), (&first.actor, first.seq));
    assert_ne!(twin.hash, first.hash);
    assert_eq!(verdict(&equivocation, &[&phone.cert]), Ok(()));
    phone.publish(gossip(&equivocation, &phone.cert));
    phone.wait_for(Seen::Disconnected, "bob disconnects trent's phone");
    converge(DEADLINE_SECS, "bob no longer lists the phone", || {
        (!lists_device(&bob, &phone.key.id())).then_some(())
    });
    let counts = bob.run(&["status", "--json"]).json()["counts"].clone();
    assert!(
        counts["quarantined"].as_u64().expect("a count") >= 1,
        "the equivocating change is quarantined: {counts}"
    );
    drop(phone);

    // Honest traffic keeps flowing between alice and bob.
    let after = "written after the attack";
    alice.run(&["post", after]).out();
    converge(
        DEADLINE_SECS,
        "alice's post after the attack reaches bob",
        || shows(&bob, &alice_id, after).then_some(()),
    );
    assert!(
        peers(&bob)
            .iter()
            .any(|(_, id)| id.as_deref() == Some(alice_id.as_str())),
        "bob is still connected to alice"
    );

    // Nothing forged was applied: bob holds exactly the honest posts.
    assert_eq!(
        texts(&bob, &alice_id),
        vec![Some(after.to_owned()), Some(before.to_owned())]
    );
    assert_eq!(texts(&bob, &alice_id), texts(&alice, &alice_id));
    for (id, mut honest) in [(&mallory_id, honest), (&trent_id, honest_trent)] {
        let mut shown: Vec<String> = texts(&bob, id)
            .into_iter()
            .map(|t| t.expect("no post of the attackers' is deleted"))
            .collect();
        shown.sort();
        honest.sort();
        assert_eq!(shown, honest);
        assert!(!shown.iter().any(|t| t.starts_with(FORGED)));
    }
}
