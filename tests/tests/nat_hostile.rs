//! Hostile peers on the simulated internet (`scripts/nat`): DHT servers
//! that answer lookups with forged and stale person records, a flood of
//! relay reservations, and a relay that drops every circuit. The hostile
//! peers are libp2p swarms run by the test itself, inside their namespace,
//! speaking kith's protocols; the honest nodes are real `kith node`s.
//! Needs root, iproute2 and iptables, as CI has.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kith_core::person::{self, DeviceReach, LIFETIME_MS, PersonRecord};
use kith_core::{DeviceCert, DeviceKey, IdentityKey, proto};
use kith_net::{BehaviourEvent, NetConfig, Registry, build_swarm};
use kith_tests::nat::Nat;
use kith_tests::{TestHome, converge, feed_ids};
use libp2p::futures::StreamExt;
use libp2p::kad::store::RecordStore;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, kad, noise, relay, tcp, yamux};
use prost::Message;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Runs `f` on a thread of its own inside the namespace `ns`, on a
/// single-threaded runtime, so that every socket it opens is there.
fn in_netns<T: Send + 'static>(
    ns: String,
    f: impl AsyncFnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("the namespace exists");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(f())
    })
}

/// The always-on node of `host`, public at its address on port 4001.
fn always_on(nat: &Nat, home: &TestHome, host: &str) -> (kith_tests::NodeProc, String) {
    let tcp = format!("/ip4/{}/tcp/4001", nat.ip(host));
    let node = home.node(&["--listen", &tcp, "--public-addr", &tcp]);
    (node, tcp)
}

fn behind_nat(home: &TestHome, bootstrap: &[&str]) -> kith_tests::NodeProc {
    let mut args = vec!["--listen", "/ip4/0.0.0.0/tcp/4001"];
    for b in bootstrap {
        args.extend(["--bootstrap", b]);
    }
    home.node(&args)
}

fn json_of(home: &TestHome, args: &[&str]) -> serde_json::Value {
    home.run(args).json()
}

/// The relays `home`'s node holds a reservation on, once it holds `n`.
fn wait_for_relays(home: &TestHome, n: usize) -> Vec<String> {
    converge(60, "the node holds its relay reservations", || {
        let status = json_of(home, &["status", "--json"]);
        let relays: Vec<String> = status["reach"]["relays"]
            .as_array()?
            .iter()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
        (relays.len() >= n).then_some(relays)
    })
}

/// What a DHT server run by mallory serves for alice's key.
struct Forgery {
    what: &'static str,
    value: Vec<u8>,
}

/// Person records of alice that no honest lookup may use, each with a seq
/// larger than any alice's node makes, so that "newest wins" would pick
/// them: one signed by mallory, one of mallory's own moved under alice's
/// key, and two that alice's identity once signed (the test reads her key
/// to make them): one expired, replayed, and one whose seq was pushed
/// months ahead. All point at mallory.
fn forgeries(alice: &IdentityKey, mallory_addr: &str) -> Vec<Forgery> {
    let now = now_ms();
    let mallory = IdentityKey::generate().unwrap();
    let mallory_device = DeviceKey::generate().unwrap();
    let entry = |identity: &IdentityKey| {
        let device = DeviceKey::generate().unwrap();
        DeviceReach {
            cert: DeviceCert::issue(identity, &device, now - 1000),
            addrs: vec![mallory_addr.to_owned()],
            updated_ms: now,
        }
    };
    let key = person::dht_key(&alice.id());
    // Claims alice, signed by mallory.
    let body = proto::PersonRecordBody {
        identity: alice.id().0.to_vec(),
        seq: now + 3_600_000,
        expires_ms: now + LIFETIME_MS,
        devices: vec![proto::DeviceReach {
            certificate: Some(DeviceCert::issue(&mallory, &mallory_device, now).to_proto()),
            addrs: vec![mallory_addr.to_owned()],
            updated_ms: now,
        }],
    }
    .encode_to_vec();
    let mut msg = person::RECORD_DOMAIN.to_vec();
    msg.extend_from_slice(&body);
    let signed_by_mallory = proto::PersonRecord {
        signature: mallory.sign(&msg).to_vec(),
        body,
    }
    .encode_to_vec();
    let own = PersonRecord {
        identity: mallory.id(),
        seq: now + 3_600_000,
        expires_ms: now + LIFETIME_MS,
        devices: vec![entry(&mallory)],
    }
    .sign(&mallory);
    let expired = PersonRecord {
        identity: alice.id(),
        seq: now + 3_600_000,
        expires_ms: now - 60_000,
        devices: vec![entry(alice)],
    }
    .sign(alice);
    let far_ahead = PersonRecord {
        identity: alice.id(),
        seq: now + 90 * 24 * 3_600_000,
        expires_ms: now + LIFETIME_MS,
        devices: vec![entry(alice)],
    }
    .sign(alice);
    for (what, value) in [
        ("signed by mallory", &signed_by_mallory),
        ("mallory's own", &own),
        ("expired", &expired),
        ("seq far ahead", &far_ahead),
    ] {
        assert!(
            PersonRecord::verify(value, &key, now).is_err(),
            "the forgery `{what}` must not verify"
        );
    }
    vec![
        Forgery {
            what: "signed by mallory",
            value: signed_by_mallory,
        },
        Forgery {
            what: "mallory's own, under alice's key",
            value: own,
        },
        Forgery {
            what: "expired",
            value: expired,
        },
        Forgery {
            what: "seq far ahead",
            value: far_ahead,
        },
    ]
}

/// Runs one DHT server per forgery on `host` (ports 4101…), each a kith
/// swarm that serves its forgery for `key`, until `stop`. Returns how many
/// lookups each answered with its forgery.
fn hostile_dht_servers(
    nat: &Nat,
    host: &str,
    relay: &str,
    key: Vec<u8>,
    forgeries: Vec<Forgery>,
    stop: Arc<AtomicBool>,
) -> Vec<(&'static str, Arc<AtomicUsize>)> {
    let ip = nat.ip(host);
    let relay: Multiaddr = relay.parse().unwrap();
    let served: Vec<(&'static str, Arc<AtomicUsize>)> = forgeries
        .iter()
        .map(|f| (f.what, Arc::new(AtomicUsize::new(0))))
        .collect();
    let counters: Vec<Arc<AtomicUsize>> = served.iter().map(|(_, c)| c.clone()).collect();
    in_netns(nat.netns(host), async move || {
        let mut tasks = Vec::new();
        for (i, (forgery, count)) in forgeries.into_iter().zip(counters).enumerate() {
            let addr: Multiaddr = format!("/ip4/{ip}/tcp/{}", 4101 + i).parse().unwrap();
            let device = DeviceKey::generate().unwrap();
            let config = NetConfig {
                mdns: false,
                public: vec![addr.clone()],
                relay: false,
            };
            let mut swarm = build_swarm(
                kith_net::keypair(&device),
                &config,
                &mut Registry::default(),
            )
            .unwrap();
            swarm.listen_on(addr.clone()).unwrap();
            swarm.add_external_address(addr);
            swarm
                .behaviour_mut()
                .kad
                .store_mut()
                .put(kad::Record::new(key.clone(), forgery.value))
                .unwrap();
            swarm.dial(relay.clone()).unwrap();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let event =
                        tokio::time::timeout(Duration::from_millis(200), swarm.next()).await;
                    if let Ok(Some(SwarmEvent::Behaviour(BehaviourEvent::Kad(
                        kad::Event::InboundRequest {
                            request:
                                kad::InboundRequest::GetRecord {
                                    present_locally: true,
                                    ..
                                },
                        },
                    )))) = event
                    {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    served
}

/// `n` throw-away peers on `host` each ask `relay` for a reservation at
/// once, and keep what they get until `stop`. Returns how many were
/// accepted and how many refused.
fn reservation_flood(
    nat: &Nat,
    host: &str,
    relay: Multiaddr,
    n: usize,
    stop: Arc<AtomicBool>,
) -> (usize, usize) {
    let (tx, rx) = std::sync::mpsc::channel::<Option<bool>>();
    in_netns(nat.netns(host), async move || {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let mut swarm = libp2p::SwarmBuilder::with_new_identity()
                .with_tokio()
                .with_tcp(
                    tcp::Config::default(),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .unwrap()
                .with_relay_client(noise::Config::new, yamux::Config::default)
                .unwrap()
                .with_behaviour(|_, client| client)
                .unwrap()
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
                .build();
            swarm
                .listen_on(relay.clone().with(Protocol::P2pCircuit))
                .unwrap();
            let (tx, stop) = (tx.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                let mut told = false;
                while !stop.load(Ordering::Relaxed) {
                    let outcome = match tokio::time::timeout(
                        Duration::from_millis(200),
                        swarm.next(),
                    )
                    .await
                    {
                        Ok(Some(SwarmEvent::Behaviour(
                            relay::client::Event::ReservationReqAccepted { .. },
                        ))) => Some(Some(true)),
                        Ok(Some(SwarmEvent::ListenerClosed { .. }))
                        | Ok(Some(SwarmEvent::ListenerError { .. })) => Some(Some(false)),
                        _ if tokio::time::Instant::now() > deadline => Some(None),
                        _ => None,
                    };
                    if let Some(o) = outcome
                        && !told
                    {
                        told = true;
                        let _ = tx.send(o);
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let mut outcome = (0, 0);
    for _ in 0..n {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(true)) => outcome.0 += 1,
            Ok(Some(false)) => outcome.1 += 1,
            Ok(None) => {}
            Err(_) => break,
        }
    }
    outcome
}

#[test]
fn forged_records_mislead_no_lookup_and_a_reservation_flood_stays_within_limits() {
    // relay 203.0.113.10 (public, honest)   mallory 203.0.113.11 (four DHT
    //   | internet 203.0.113.0/24            servers serving forged records)
    //   |                                    flood 203.0.113.12 (100 peers
    //   |                                     asking the relay for places)
    // rA 203.0.113.1 (NAT, endpoint-independent)  rB 203.0.113.2 (same)
    //   |                                           |
    // alice 10.0.1.2                              bob 10.0.2.2
    let nat = Nat::up(&[
        "pub:relay",
        "pub:mallory",
        "pub:flood",
        "lan:a:eim:alice",
        "lan:b:eim:bob",
    ]);
    let relay = nat.home("relay", "relay");
    let alice = nat.home("alice", "alice");
    let bob = nat.home("bob", "bob");
    let (relay_node, relay_addr) = always_on(&nat, &relay, "relay");
    let relay_id = relay_node.status["device"].as_str().unwrap().to_owned();
    let relay_peer = kith_net::peer_id(&relay_id.parse().unwrap());

    // The flood comes first: the relay serves it up to its per-IP limit
    // (60 reservations from one address in a burst) and refuses the rest.
    let flood = 100;
    let relay_full: Multiaddr = format!("{relay_addr}/p2p/{relay_peer}").parse().unwrap();
    // The flood keeps its places while alice asks for hers.
    let flooding = Arc::new(AtomicBool::new(false));
    let (accepted, refused) = reservation_flood(&nat, "flood", relay_full, flood, flooding.clone());
    println!("reservation flood: {accepted} accepted, {refused} refused of {flood}");
    assert!(
        (1..=60).contains(&accepted),
        "the relay took {accepted} reservations from one address"
    );
    assert!(refused >= flood - 60, "{refused} refused");

    // alice, from another address, still gets her place.
    let _alice_node = behind_nat(&alice, &[&relay_addr]);
    wait_for_relays(&alice, 1);
    let alice_id = alice.id();
    let alice_device = json_of(&alice, &["whoami", "--json"])["device"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = alice.run(&["post", "the real alice"]).out().to_owned();

    // mallory's servers join the DHT, each holding a forgery of alice.
    let secret: [u8; 32] = std::fs::read(alice.path("identity.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let alice_key = IdentityKey::from_secret_bytes(&secret);
    let mallory_addr = format!("/ip4/{}/tcp/4101", nat.ip("mallory"));
    let stop = Arc::new(AtomicBool::new(false));
    let served = hostile_dht_servers(
        &nat,
        "mallory",
        &relay_addr,
        person::dht_key(&alice_key.id()),
        forgeries(&alice_key, &mallory_addr),
        stop.clone(),
    );
    converge(30, "the relay knows mallory's DHT servers", || {
        let peers = json_of(&relay, &["peers", "--json"]);
        let n = peers
            .as_array()?
            .iter()
            .filter(|p| {
                p["address"]
                    .as_str()
                    .is_some_and(|a| a.contains(&nat.ip("mallory")))
            })
            .count();
        (n >= served.len()).then_some(())
    });

    // bob looks alice up: every server answers, the forgeries too; bob
    // reaches alice's real device, and nothing else as alice.
    let _bob_node = behind_nat(&bob, &[&relay_addr]);
    wait_for_relays(&bob, 1);
    bob.run(&["follow", &alice_id]).out();
    converge(
        60,
        "bob reaches the real alice and catches her post up",
        || feed_ids(&bob, &alice_id).contains(&post).then_some(()),
    );
    let peers = json_of(&bob, &["peers", "--json"]);
    let as_alice: Vec<&serde_json::Value> = peers
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["identity"] == alice_id.as_str())
        .collect();
    assert!(
        !as_alice.is_empty()
            && as_alice
                .iter()
                .all(|p| p["device"] == alice_device.as_str()),
        "only alice's own device is alice: {peers}"
    );
    stop.store(true, Ordering::Relaxed);
    flooding.store(true, Ordering::Relaxed);
    for (what, count) in &served {
        assert!(
            count.load(Ordering::Relaxed) >= 1,
            "mallory's server with the forgery `{what}` was asked, and served it"
        );
    }
}

/// A relay that accepts reservations and circuits, then drops every
/// circuit after a second or 4 KiB: what a broken or spiteful relay does.
#[derive(libp2p::swarm::NetworkBehaviour)]
struct DroppingRelay {
    relay: relay::Behaviour,
    identify: libp2p::identify::Behaviour,
    ping: libp2p::ping::Behaviour,
}

/// Runs a [`DroppingRelay`] on `host` at port 4001 until `stop`. Returns
/// its address and a count of the circuits it cut.
fn dropping_relay(nat: &Nat, host: &str, stop: Arc<AtomicBool>) -> (String, Arc<AtomicUsize>) {
    let device = DeviceKey::generate().unwrap();
    let keypair = kith_net::keypair(&device);
    let peer = keypair.public().to_peer_id();
    let addr = format!("/ip4/{}/tcp/4001", nat.ip(host));
    let listen: Multiaddr = addr.parse().unwrap();
    let cut = Arc::new(AtomicUsize::new(0));
    let counter = cut.clone();
    in_netns(nat.netns(host), async move || {
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|key| DroppingRelay {
                relay: relay::Behaviour::new(
                    key.public().to_peer_id(),
                    relay::Config {
                        max_circuit_duration: Duration::from_secs(1),
                        max_circuit_bytes: 4096,
                        ..relay::Config::default()
                    },
                ),
                identify: libp2p::identify::Behaviour::new(libp2p::identify::Config::new(
                    "/kith/1.0.0".into(),
                    key.public(),
                )),
                ping: libp2p::ping::Behaviour::default(),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm.listen_on(listen.clone()).unwrap();
        swarm.add_external_address(listen);
        while !stop.load(Ordering::Relaxed) {
            let event = tokio::time::timeout(Duration::from_millis(200), swarm.next()).await;
            if let Ok(Some(SwarmEvent::Behaviour(DroppingRelayEvent::Relay(
                relay::Event::CircuitClosed { .. },
            )))) = event
            {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    (format!("{addr}/p2p/{peer}"), cut)
}

#[test]
fn a_relay_that_drops_circuits_delays_but_does_not_stop_a_catch_up() {
    // dht 203.0.113.10 (public, no relay)   mallory 203.0.113.11 (a relay
    //   | internet 203.0.113.0/24            that cuts every circuit)
    //   |                                    relay 203.0.113.12 (public,
    //   |                                     honest, started later)
    // rA 203.0.113.1 (symmetric NAT)   rB 203.0.113.2 (endpoint-independent)
    //   |                                |
    // alice 10.0.1.2                   bob 10.0.2.2
    //
    // alice can first be reached only through mallory's relay, whose
    // circuits are cut within a second; bob gets through, is cut off, and
    // looks alice up again. Once alice also holds a place on an honest
    // relay, bob's node, having seen mallory's relay cut its circuits,
    // prefers the other, and the catch-up completes.
    let nat = Nat::up(&[
        "pub:dht",
        "pub:mallory",
        "pub:relay",
        "lan:a:sym:alice",
        "lan:b:eim:bob",
    ]);
    let dht = nat.home("dht", "dht");
    let relay = nat.home("relay", "relay");
    let alice = nat.home("alice", "alice");
    let bob = nat.home("bob", "bob");
    let dht_addr = format!("/ip4/{}/tcp/4001", nat.ip("dht"));
    let _dht_node = dht.node(&[
        "--listen",
        &dht_addr,
        "--public-addr",
        &dht_addr,
        "--no-relay",
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let (mallory, cut) = dropping_relay(&nat, "mallory", stop.clone());
    let _alice_node = behind_nat(&alice, &[&dht_addr, &mallory]);
    let relays = wait_for_relays(&alice, 1);
    assert!(relays[0].contains(&mallory), "{relays:?}");
    let alice_id = alice.id();
    let posts: Vec<String> = (0..20)
        .map(|i| {
            alice
                .run(&[
                    "post",
                    &format!("post {i}, longer than a circuit lasts: {}", "x".repeat(400)),
                ])
                .out()
                .to_owned()
        })
        .collect();

    let _bob_node = behind_nat(&bob, &[&dht_addr]);
    bob.run(&["follow", &alice_id]).out();
    converge(
        60,
        "mallory's relay cuts a circuit from bob to alice",
        || (cut.load(Ordering::Relaxed) >= 1).then_some(()),
    );

    // An honest relay comes up; alice takes a place on it too.
    let relay_addr = format!("/ip4/{}/tcp/4001", nat.ip("relay"));
    let _relay_node = relay.node(&["--listen", &relay_addr, "--public-addr", &relay_addr]);
    alice.run(&["peer", "add", &relay_addr]).out();
    wait_for_relays(&alice, 2);
    converge(300, "bob catches every post of alice's up", || {
        let have = feed_ids(&bob, &alice_id);
        posts.iter().all(|p| have.contains(p)).then_some(())
    });
    let live = alice.run(&["post", "still here"]).out().to_owned();
    converge(60, "a live post reaches bob", || {
        feed_ids(&bob, &alice_id).contains(&live).then_some(())
    });
    // Through the honest relay: bob's node tries mallory's last.
    let relay_ip = nat.ip("relay");
    let peers = json_of(&bob, &["peers", "--json"]);
    let to_alice = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["identity"] == alice_id.as_str())
        .expect("bob is connected to alice");
    assert!(
        to_alice["address"]
            .as_str()
            .is_some_and(|a| a.starts_with(&format!("/ip4/{relay_ip}/"))),
        "{to_alice}"
    );
    println!(
        "mallory's relay cut {} circuits",
        cut.load(Ordering::Relaxed)
    );
    stop.store(true, Ordering::Relaxed);
}
