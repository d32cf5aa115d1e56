//! Public gossip sharded by author against the single public topic,
//! simulated on the IO-free core (proto/README.md §20).
//!
//! ```text
//! cargo run --release -p kith-core --example shards
//! ```
//!
//! `KITH_SIM_SEED` draws another world; the seed is printed first. The
//! model, which the program also prints:
//!
//! - **People.** 10,000 people, each running one node, each an author and a
//!   follower. Costs are reported for 1,000 of the nodes drawn at random;
//!   delivery for every (post, follower) pair.
//! - **Follows.** Each person follows a log-normal number of others (median
//!   50, σ 1.2, at least 1, at most 2,000), drawn without repeats by Zipf
//!   popularity (exponent 1), so a few authors have thousands of followers.
//! - **Posts.** Every author publishes one post: a node's cost per post
//!   published network-wide is its total over the 10,000 posts divided by
//!   10,000. Popular authors do not post more.
//! - **Topics.** With S shards a node joins
//!   [`joined_among`](kith_core::gossip::shard::joined_among): its own shard
//!   and those of whom it follows. S = 1 is today's single topic.
//! - **Meshes.** Per topic, among its subscribers: in random order, each
//!   node grafts until it has D = 6 mesh peers, first among the peers it is
//!   already meshed with on other topics (gossipsub grafts among connected
//!   peers), then random subscribers, each a new connection; a peer already
//!   at D_hi = 12 refuses. Links go both ways; topics are built largest
//!   first. Any two subscribers can connect (finding them is not modelled).
//! - **Flooding** in synchronous rounds: the author sends its post to its
//!   mesh peers; a node first reached in round r verifies that copy and, in
//!   round r + 1, sends it to every mesh peer it has not received it from
//!   (gossipsub leaves out the peers a message came from). So a node
//!   receives one copy from each mesh peer one round nearer the author, and
//!   one from each reached in the same round (the two copies cross).
//!   IDONTWANT is not modelled: when a link is slower than validating a
//!   message, it arrives after the copy it would stop. IHAVE/IWANT gossip,
//!   heartbeats and transport framing are not counted.
//! - **Costs from the core.** The bytes of a message are those of a real
//!   signed post's `GossipChange` in a gossipsub frame; a first copy costs
//!   the measured time of kith's gossip intake for a change the node does
//!   not keep (decoding, certificate cache, signature), and every copy,
//!   duplicates too, the measured time of the ed25519 check gossipsub does
//!   on each message it decodes in strict mode.

use std::collections::BTreeSet;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use kith_core::gossip::shard::{self, joined_among, shard_among, shard_topic};
use kith_core::gossip::{GossipChange, Intake, PUBLIC_TOPIC, Topic, Verdict};
use kith_core::testing::{MemoryReplica, Person, posts};
use kith_core::{DeviceCert, DeviceKey, IdentityId, IdentityKey, SpaceId};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// The world drawn when `KITH_SIM_SEED` is not set.
const DEFAULT_SEED: u64 = 20_240_501;
const PEOPLE: usize = 10_000;
/// Nodes whose costs are reported.
const OBSERVED: usize = 1_000;
const FOLLOWS_MEDIAN: f64 = 50.0;
const FOLLOWS_SIGMA: f64 = 1.2;
const FOLLOWS_MAX: usize = 2_000;
const ZIPF_EXPONENT: f64 = 1.0;
/// gossipsub's mesh degree, and the degree past which a peer refuses a
/// graft. D_lo is reported: gossipsub grafts again below it.
const D: usize = 6;
const D_LO: usize = 4;
const D_HI: usize = 12;
/// Shard counts compared, as bits: one topic, 64, 256 and 1024 shards.
const SHARD_BITS: [u32; 4] = [0, 6, 8, 10];
/// Real posts made to measure a message's size and the intake's cost.
const SAMPLE_POSTS: usize = 2_000;
const TIMED_PASSES: usize = 2;

fn main() {
    let seed = std::env::var("KITH_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    println!("seed {seed} (KITH_SIM_SEED replays)");
    println!(
        "model: {PEOPLE} people, one node each, every one an author and a follower; \
         costs over {OBSERVED} nodes drawn at random"
    );
    println!(
        "  follows per person: log-normal, median {FOLLOWS_MEDIAN}, sigma {FOLLOWS_SIGMA}, \
         1..={FOLLOWS_MAX}; whom: Zipf popularity, exponent {ZIPF_EXPONENT}"
    );
    println!(
        "  one post per author; mesh per topic D={D} (D_lo {D_LO}, D_hi {D_HI}), grafting first \
         among peers meshed on other topics"
    );
    println!(
        "  flooding in rounds, no copy to a peer it came from; IDONTWANT, IHAVE and heartbeats \
         not modelled"
    );
    let started = Instant::now();
    let core = measure_core(seed);
    println!(
        "core: GossipChange of a public post {:.0} bytes (mean of {SAMPLE_POSTS}, {}..{}); \
         in a gossipsub frame {} bytes on one topic, {} on a shard",
        core.envelope_bytes,
        core.envelope_min,
        core.envelope_max,
        core.frame_bytes(PUBLIC_TOPIC),
        core.frame_bytes(&shard_topic(0)),
    );
    println!(
        "core: gossip intake of a change not kept {:.1} µs; gossipsub's signature check \
         of a copy {:.1} µs ({} of each timed)",
        core.intake_us,
        core.gossipsub_check_us,
        SAMPLE_POSTS * TIMED_PASSES,
    );

    let world = World::draw(seed);
    world.describe();
    let runs: Vec<Run> = SHARD_BITS
        .iter()
        .map(|&bits| Run::simulate(&world, bits, seed))
        .collect();
    print_costs(&world, &core, &runs);
    print_by_follows(&world, &runs);
    print_meshes(&runs);
    println!("\n{:.1} s in all", started.elapsed().as_secs_f64());
}

/// What the core says a message weighs and costs.
struct Core {
    envelope_bytes: f64,
    envelope_min: usize,
    envelope_max: usize,
    intake_us: f64,
    gossipsub_check_us: f64,
}

impl Core {
    /// A gossipsub message carrying one envelope on `topic`, as it goes on
    /// a stream: the length-prefixed `RPC { publish: [Message { from,
    /// data, seqno, topic, signature }] }` of strict signing with an
    /// ed25519 peer id (38 bytes; the key is inlined in it).
    fn frame_bytes(&self, topic: &str) -> usize {
        let field = |len: usize| 1 + varint_len(len) + len;
        let data = self.envelope_bytes.round() as usize;
        let message = field(38) + field(data) + field(8) + field(topic.len()) + field(64);
        let rpc = field(message);
        varint_len(rpc) + rpc
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Makes real signed posts, passes them through the gossip intake of a
/// node that does not follow their author, and times both checks.
fn measure_core(seed: u64) -> Core {
    let alice = IdentityKey::from_secret_bytes(&[0xa1; 32]);
    let phone = DeviceKey::from_secret_bytes(&[0xa2; 32]);
    let certificate = DeviceCert::issue(&alice, &phone, 1).to_proto();
    let messages: Vec<Vec<u8>> = posts(&alice, &phone, SpaceId::PUBLIC, "sim", SAMPLE_POSTS, 100)
        .iter()
        .map(|change| GossipChange::encode_parts(change, &certificate))
        .collect();
    let sizes = messages.iter().map(Vec::len);
    let envelope_bytes = sizes.clone().sum::<usize>() as f64 / messages.len() as f64;

    let bob = Person::new("bob", seed);
    let carol = Person::new("carol", seed);
    let mut replica = MemoryReplica::of(&bob);
    let mut intake = Intake::default();
    let mut receive = |data: &[u8]| {
        let decision = intake.receive(
            carol.device.id(),
            &Topic::Public,
            data,
            |_| false,
            &mut replica,
        );
        assert_eq!(decision.verdict, Verdict::Accept, "{decision:?}");
    };
    // The first message also checks alice's certificate, which is then cached.
    receive(&messages[0]);
    let timer = Instant::now();
    for _ in 0..TIMED_PASSES {
        messages.iter().for_each(|m| receive(m));
    }
    let intake_us = micros_each(timer, messages.len() * TIMED_PASSES);

    // gossipsub signs "libp2p-pubsub:" ‖ the message without its signature,
    // and a receiver reads the key out of the sender's peer id each time.
    let relay = SigningKey::from_bytes(&[0xc1; 32]);
    let public = relay.verifying_key().to_bytes();
    let signed: Vec<(Vec<u8>, ed25519_dalek::Signature)> = messages
        .iter()
        .map(|m| {
            let mut bytes = b"libp2p-pubsub:".to_vec();
            bytes.extend_from_slice(m);
            let signature = relay.sign(&bytes);
            (bytes, signature)
        })
        .collect();
    let timer = Instant::now();
    for _ in 0..TIMED_PASSES {
        for (bytes, signature) in &signed {
            let key = VerifyingKey::from_bytes(&public).expect("a key just made");
            key.verify(bytes, signature).expect("a signature just made");
        }
    }
    let gossipsub_check_us = micros_each(timer, signed.len() * TIMED_PASSES);
    Core {
        envelope_bytes,
        envelope_min: sizes.clone().min().unwrap_or(0),
        envelope_max: sizes.max().unwrap_or(0),
        intake_us,
        gossipsub_check_us,
    }
}

fn micros_each(since: Instant, count: usize) -> f64 {
    since.elapsed().as_secs_f64() * 1e6 / count as f64
}

/// The people, who follows whom, and the nodes observed.
struct World {
    ids: Vec<IdentityId>,
    follows: Vec<Vec<u32>>,
    followers: Vec<Vec<u32>>,
    observed: Vec<u32>,
}

impl World {
    fn draw(seed: u64) -> World {
        let mut rng = StdRng::seed_from_u64(seed);
        let ids: Vec<IdentityId> = (0..PEOPLE).map(|_| IdentityId(rng.random())).collect();
        // Popularity is a rank given at random, unrelated to the id.
        let mut by_rank: Vec<u32> = (0..PEOPLE as u32).collect();
        by_rank.shuffle(&mut rng);
        let mut cumulative = Vec::with_capacity(PEOPLE);
        let mut total = 0.0;
        for rank in 1..=PEOPLE {
            total += (rank as f64).powf(-ZIPF_EXPONENT);
            cumulative.push(total);
        }
        let mut follows = Vec::with_capacity(PEOPLE);
        // Who was drawn for whom: the person's index plus one.
        let mut drawn_for = vec![0u32; PEOPLE];
        for me in 0..PEOPLE as u32 {
            let count = follow_count(&mut rng);
            let mut mine = Vec::with_capacity(count);
            while mine.len() < count {
                let x = rng.random::<f64>() * total;
                let rank = cumulative.partition_point(|&c| c < x).min(PEOPLE - 1);
                let author = by_rank[rank];
                if author != me && drawn_for[author as usize] != me + 1 {
                    drawn_for[author as usize] = me + 1;
                    mine.push(author);
                }
            }
            follows.push(mine);
        }
        let mut followers = vec![Vec::new(); PEOPLE];
        for (me, mine) in follows.iter().enumerate() {
            for &author in mine {
                followers[author as usize].push(me as u32);
            }
        }
        let mut observed: Vec<u32> = (0..PEOPLE as u32).collect();
        observed.shuffle(&mut rng);
        observed.truncate(OBSERVED);
        World {
            ids,
            follows,
            followers,
            observed,
        }
    }

    fn describe(&self) {
        let mut counts: Vec<usize> = self.follows.iter().map(Vec::len).collect();
        let mut fans: Vec<usize> = self.followers.iter().map(Vec::len).collect();
        let total: usize = counts.iter().sum();
        println!(
            "world: {total} follows; follows per person p50 {} mean {:.0} p99 {} max {}; \
             followers per author p50 {} p99 {} max {}",
            percentile(&mut counts, 0.5),
            total as f64 / PEOPLE as f64,
            percentile(&mut counts, 0.99),
            percentile(&mut counts, 1.0),
            percentile(&mut fans, 0.5),
            percentile(&mut fans, 0.99),
            percentile(&mut fans, 1.0),
        );
    }
}

/// A log-normal draw (Box–Muller), rounded and bounded.
fn follow_count(rng: &mut StdRng) -> usize {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    let count = (FOLLOWS_MEDIAN.ln() + FOLLOWS_SIGMA * z).exp().round();
    (count as usize).clamp(1, FOLLOWS_MAX)
}

/// One topic's subscribers (sorted person indices) and their mesh, by
/// position in `members`.
struct Mesh {
    members: Vec<u32>,
    links: Vec<Vec<u32>>,
}

impl Mesh {
    /// The mesh of a topic of `members`. A node grafts first among the
    /// peers it is already meshed with on other topics (`peers`, by
    /// person), as gossipsub grafts among connected peers, and connects to
    /// random subscribers only for the rest.
    fn build(members: Vec<u32>, peers: &mut [Vec<u32>], rng: &mut StdRng) -> Mesh {
        let n = members.len();
        let mut links: Vec<Vec<u32>> = vec![Vec::with_capacity(D_HI); n];
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        let wanted = D.min(n.saturating_sub(1));
        let mut known: Vec<usize> = Vec::new();
        for u in order {
            let person = members[u] as usize;
            known.clear();
            known.extend(
                peers[person]
                    .iter()
                    .filter_map(|p| members.binary_search(p).ok()),
            );
            known.shuffle(rng);
            for &w in &known {
                if links[u].len() >= wanted {
                    break;
                }
                if links[w].len() < D_HI && !links[u].contains(&(w as u32)) {
                    links[u].push(w as u32);
                    links[w].push(u as u32);
                }
            }
            // Bounded: in a small topic every peer may be full.
            for _ in 0..32 * D {
                if links[u].len() >= wanted {
                    break;
                }
                let w = rng.random_range(0..n);
                if w != u && links[w].len() < D_HI && !links[u].contains(&(w as u32)) {
                    links[u].push(w as u32);
                    links[w].push(u as u32);
                    peers[person].push(members[w]);
                    peers[members[w] as usize].push(members[u]);
                }
            }
        }
        Mesh { members, links }
    }

    fn position(&self, person: u32) -> Option<usize> {
        self.members.binary_search(&person).ok()
    }
}

/// One shard count's outcome.
struct Run {
    bits: u32,
    meshes: Vec<Mesh>,
    joined: Vec<BTreeSet<u16>>,
    /// Per person, over all posts: copies received, and first copies
    /// (each verified).
    copies: Vec<u64>,
    verified: Vec<u64>,
    delivered: u64,
    missed: u64,
    /// Followers reached, by mesh hops from the author.
    hops: Vec<u64>,
}

/// What one thread counts while flooding its share of the posts.
struct Tally {
    copies: Vec<u64>,
    verified: Vec<u64>,
    delivered: u64,
    missed: u64,
    hops: Vec<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            copies: vec![0; PEOPLE],
            verified: vec![0; PEOPLE],
            delivered: 0,
            missed: 0,
            hops: Vec::new(),
        }
    }

    fn add(&mut self, other: Tally) {
        for (a, b) in self.copies.iter_mut().zip(other.copies) {
            *a += b;
        }
        for (a, b) in self.verified.iter_mut().zip(other.verified) {
            *a += b;
        }
        self.delivered += other.delivered;
        self.missed += other.missed;
        if self.hops.len() < other.hops.len() {
            self.hops.resize(other.hops.len(), 0);
        }
        for (a, b) in self.hops.iter_mut().zip(other.hops) {
            *a += b;
        }
    }
}

impl Run {
    fn simulate(world: &World, bits: u32, seed: u64) -> Run {
        let mut rng = StdRng::seed_from_u64(seed ^ u64::from(bits).wrapping_mul(0x9e37_79b9));
        let shard_of: Vec<u16> = world.ids.iter().map(|id| shard_among(id, bits)).collect();
        let joined: Vec<BTreeSet<u16>> = world
            .ids
            .iter()
            .zip(&world.follows)
            .map(|(me, follows)| {
                joined_among(bits, me, follows.iter().map(|&a| &world.ids[a as usize]))
            })
            .collect();
        let mut members = vec![Vec::new(); 1 << bits];
        for (person, shards) in joined.iter().enumerate() {
            for &s in shards {
                members[usize::from(s)].push(person as u32);
            }
        }
        // The largest topics first: smaller ones reuse their connections.
        let mut by_size: Vec<usize> = (0..members.len()).collect();
        by_size.sort_by_key(|&s| std::cmp::Reverse(members[s].len()));
        let mut peers = vec![Vec::new(); PEOPLE];
        let mut built: Vec<Option<Mesh>> = (0..members.len()).map(|_| None).collect();
        for s in by_size {
            let m = std::mem::take(&mut members[s]);
            built[s] = Some(Mesh::build(m, &mut peers, &mut rng));
        }
        let meshes: Vec<Mesh> = built
            .into_iter()
            .map(|m| m.expect("every topic built"))
            .collect();

        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let authors: Vec<u32> = (0..PEOPLE as u32).collect();
        let chunk = PEOPLE.div_ceil(threads);
        let mut tally = Tally::new();
        std::thread::scope(|scope| {
            let handles: Vec<_> = authors
                .chunks(chunk)
                .map(|part| {
                    let (meshes, shard_of) = (&meshes, &shard_of);
                    scope.spawn(move || flood_all(world, meshes, shard_of, part))
                })
                .collect();
            for h in handles {
                tally.add(h.join().expect("a flooding thread does not panic"));
            }
        });
        Run {
            bits,
            meshes,
            joined,
            copies: tally.copies,
            verified: tally.verified,
            delivered: tally.delivered,
            missed: tally.missed,
            hops: tally.hops,
        }
    }

    fn shards(&self) -> usize {
        1 << self.bits
    }

    /// Distinct mesh peers of `person` over all its topics: the
    /// connections its gossip needs.
    fn mesh_peers(&self, person: u32) -> usize {
        let mut peers: Vec<u32> = Vec::new();
        for &s in &self.joined[person as usize] {
            let mesh = &self.meshes[usize::from(s)];
            let at = mesh
                .position(person)
                .expect("a node is in its shards' meshes");
            peers.extend(mesh.links[at].iter().map(|&w| mesh.members[w as usize]));
        }
        peers.sort_unstable();
        peers.dedup();
        peers.len()
    }
}

/// Floods each post of `authors` over its author's shard mesh.
fn flood_all(world: &World, meshes: &[Mesh], shard_of: &[u16], authors: &[u32]) -> Tally {
    let mut tally = Tally::new();
    let largest = meshes.iter().map(|m| m.members.len()).max().unwrap_or(0);
    let mut depth = vec![u32::MAX; largest];
    let mut order: Vec<u32> = Vec::with_capacity(largest);
    for &author in authors {
        let mesh = &meshes[usize::from(shard_of[author as usize])];
        let source = mesh
            .position(author)
            .expect("an author is in its own shard");
        // Breadth first: the round in which each node is first reached.
        order.clear();
        depth[source] = 0;
        order.push(source as u32);
        let mut next = 0;
        while next < order.len() {
            let u = order[next] as usize;
            next += 1;
            for &w in &mesh.links[u] {
                if depth[w as usize] == u32::MAX {
                    depth[w as usize] = depth[u] + 1;
                    order.push(w);
                }
            }
        }
        for &u in &order[1..] {
            let d = depth[u as usize];
            let copies = mesh.links[u as usize]
                .iter()
                .filter(|&&w| depth[w as usize] + 1 == d || depth[w as usize] == d)
                .count();
            let person = mesh.members[u as usize] as usize;
            tally.copies[person] += copies as u64;
            tally.verified[person] += 1;
        }
        for &follower in &world.followers[author as usize] {
            let at = mesh
                .position(follower)
                .expect("a follower joins its author's shard");
            match depth[at] {
                u32::MAX => tally.missed += 1,
                d => {
                    let d = d as usize;
                    if tally.hops.len() <= d {
                        tally.hops.resize(d + 1, 0);
                    }
                    tally.hops[d] += 1;
                    tally.delivered += 1;
                }
            }
        }
        for &u in &order {
            depth[u as usize] = u32::MAX;
        }
    }
    tally
}

fn print_costs(world: &World, core: &Core, runs: &[Run]) {
    let posts = PEOPLE as f64;
    println!(
        "\nPer node per post published network-wide, over the {OBSERVED} observed nodes \
         (p50/p99 or mean/p99 over nodes);"
    );
    println!("delivery over every (post, follower) pair; hops from author to follower, p50/p99.");
    println!(
        "{:<10} {:>9} {:>10} {:>12} {:>14} {:>12} {:>13} {:>6} {:>9} {:>6}",
        "shards",
        "topics",
        "mesh peers",
        "copies",
        "bytes",
        "verified",
        "CPU µs",
        "kept",
        "delivery",
        "hops"
    );
    println!(
        "{:<10} {:>9} {:>10} {:>12} {:>14} {:>12} {:>13} {:>6} {:>9} {:>6}",
        "", "p50/p99", "p50/p99", "mean/p99", "mean/p99", "mean/p99", "mean/p99", "", "", ""
    );
    for run in runs {
        let topic = if run.bits == 0 {
            PUBLIC_TOPIC.to_owned()
        } else {
            shard_topic((run.shards() - 1) as u16)
        };
        let frame = core.frame_bytes(&topic) as f64;
        let mut topics = Vec::new();
        let mut peers = Vec::new();
        let mut copies = Vec::new();
        let mut verified = Vec::new();
        let mut cpu = Vec::new();
        let (mut kept, mut checked) = (0usize, 0u64);
        for &v in &world.observed {
            let (c, f) = (run.copies[v as usize], run.verified[v as usize]);
            topics.push(run.joined[v as usize].len() as f64);
            peers.push(run.mesh_peers(v) as f64);
            copies.push(c as f64 / posts);
            verified.push(f as f64 / posts);
            cpu.push((f as f64 * core.intake_us + c as f64 * core.gossipsub_check_us) / posts);
            kept += world.follows[v as usize].len();
            checked += f;
        }
        let bytes: Vec<f64> = copies.iter().map(|c| c * frame).collect();
        let name = match run.shards() {
            1 => "1 (v1)".to_owned(),
            s if s == shard::PUBLIC_SHARDS as usize => format!("{s} (v2)"),
            s => s.to_string(),
        };
        println!(
            "{:<10} {:>9} {:>10} {:>12} {:>14} {:>12} {:>13} {:>5.1}% {:>8.2}% {:>6}",
            name,
            format!(
                "{:.0}/{:.0}",
                percentile(&mut topics, 0.5),
                percentile(&mut topics, 0.99)
            ),
            format!(
                "{:.0}/{:.0}",
                percentile(&mut peers, 0.5),
                percentile(&mut peers, 0.99)
            ),
            format!("{:.2}/{:.2}", mean(&copies), percentile(&mut copies, 0.99)),
            format!(
                "{:.0}/{:.0}",
                mean(&bytes),
                percentile(&mut bytes.clone(), 0.99)
            ),
            format!(
                "{:.3}/{:.3}",
                mean(&verified),
                percentile(&mut verified, 0.99)
            ),
            format!("{:.1}/{:.1}", mean(&cpu), percentile(&mut cpu, 0.99)),
            100.0 * kept as f64 / checked.max(1) as f64,
            100.0 * run.delivered as f64 / (run.delivered + run.missed).max(1) as f64,
            format!(
                "{}/{}",
                hop_percentile(&run.hops, 0.5),
                hop_percentile(&run.hops, 0.99)
            ),
        );
    }
    println!(
        "(mesh peers: distinct peers a node is meshed with over all its topics, the connections \
         its gossip needs;"
    );
    println!(
        " copies: gossipsub messages received, duplicates included; verified: first copies, \
         each checked by kith's intake;"
    );
    println!(
        " kept: share of verified changes that are of someone the node follows; \
         CPU: verified × intake + copies × gossipsub check)"
    );
}

/// Verifications per node per post by how many the node follows: the cost
/// grows with whom a node follows, up to the single topic's.
fn print_by_follows(world: &World, runs: &[Run]) {
    const BUCKETS: [(usize, usize); 5] = [(1, 10), (11, 30), (31, 100), (101, 300), (301, 2000)];
    println!(
        "\nVerified per node per post by follows (mean over the observed nodes in each band):"
    );
    print!("{:<10}", "shards");
    for (lo, hi) in BUCKETS {
        let n = world
            .observed
            .iter()
            .filter(|&&v| (lo..=hi).contains(&world.follows[v as usize].len()))
            .count();
        print!(" {:>16}", format!("{lo}-{hi} ({n})"));
    }
    println!();
    for run in runs {
        print!("{:<10}", run.shards());
        for (lo, hi) in BUCKETS {
            let band: Vec<f64> = world
                .observed
                .iter()
                .filter(|&&v| (lo..=hi).contains(&world.follows[v as usize].len()))
                .map(|&v| run.verified[v as usize] as f64 / PEOPLE as f64)
                .collect();
            print!(" {:>16.3}", mean(&band));
        }
        println!();
    }
}

fn print_meshes(runs: &[Run]) {
    println!(
        "\nMeshes: subscribers per topic, mesh members below D_lo={D_LO}, \
         (post, follower) pairs gossip did not reach:"
    );
    for run in runs {
        let mut sizes: Vec<f64> = run.meshes.iter().map(|m| m.members.len() as f64).collect();
        let thin: usize = run
            .meshes
            .iter()
            .map(|m| {
                let wanted = D_LO.min(m.members.len().saturating_sub(1));
                m.links.iter().filter(|l| l.len() < wanted).count()
            })
            .sum();
        println!(
            "{:<10} subscribers min {:.0} mean {:.0} max {:.0}; below D_lo {thin}; \
             not reached {} of {}",
            run.shards(),
            percentile(&mut sizes.clone(), 0.0),
            mean(&sizes),
            percentile(&mut sizes, 1.0),
            run.missed,
            run.missed + run.delivered,
        );
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The value at quantile `q` (nearest rank), sorting `values`.
fn percentile<T: PartialOrd + Copy + Default>(values: &mut [T], q: f64) -> T {
    if values.is_empty() {
        return T::default();
    }
    values.sort_unstable_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let at = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
    values[at]
}

/// The hop count at quantile `q` of a histogram.
fn hop_percentile(hops: &[u64], q: f64) -> usize {
    let total: u64 = hops.iter().sum();
    let target = ((total as f64 * q).ceil() as u64).max(1);
    let mut seen = 0;
    for (d, &n) in hops.iter().enumerate() {
        seen += n;
        if seen >= target {
            return d;
        }
    }
    hops.len().saturating_sub(1)
}
