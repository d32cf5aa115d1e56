//! Public gossip sharded by author (proto/README.md §20): a fixed set of
//! public topics, the one an identity's public changes travel on, and the
//! ones a node joins. Defined and measured, not used yet: nodes still speak
//! the single topic [`PUBLIC_TOPIC`](super::PUBLIC_TOPIC).
//!
//! On one topic every node receives and verifies every public change anyone
//! writes. Sharded, an identity's profile and public feeds travel on the
//! topic of its shard, and a node joins only its own shard and those of the
//! people it follows: it receives the changes of the authors who share a
//! shard with someone it follows, a share of the network that grows with
//! whom it follows and never exceeds the single topic's. The count is
//! fixed, so each shard joined still carries 1/256 of all authors: sharding
//! divides the single topic's cost, it does not end its growth with the
//! network (§20 says what would).
//!
//! ```
//! use kith_core::IdentityId;
//! use kith_core::gossip::shard::{joined_shards, shard_of, shard_topic};
//!
//! let (alice, bob) = (IdentityId([1; 32]), IdentityId([0; 32]));
//! assert_eq!(shard_topic(shard_of(&alice)), "kith/public/v2/01");
//! // Alice follows bob: she listens on his shard and publishes on hers.
//! let joined = joined_shards(&alice, [&bob]);
//! assert_eq!(joined.into_iter().collect::<Vec<_>>(), [1, 44]);
//! ```

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::IdentityId;

/// Domain of the hash that places an identity in a shard.
pub const SHARD_DOMAIN: &[u8] = b"kith/public-shard/v1";

/// The shard topics' names: this prefix and the shard as two lower-case hex
/// digits.
pub const SHARD_TOPIC_PREFIX: &str = "kith/public/v2/";

/// How many public shards there are, as bits of the identity's hash.
pub const SHARD_BITS: u32 = 8;

/// The public shards: 256, the first byte of the hash.
///
/// Why 256 (figures of `cargo run --release -p kith-core --example shards`,
/// proto/README.md §20): a node following F people joins about
/// `S·(1 − (1 − 1/S)^(F+1))` of the S shards, so it receives a share
/// `1 − (1 − 1/S)^(F+1)` of all public changes. In the simulation a node
/// following 31 to 100 people verifies 60% of them with 64 shards, 21% with
/// 256 and 6% with 1024. But each shard joined is a gossipsub mesh of its
/// own to keep, and its mesh peers are connections: with 1024 shards a node
/// at the 99th percentile is on 599 topics and meshed with 303 peers, past
/// kith-net's 256 connections; with 256 shards, 256 topics at most and 78
/// mesh peers at the 99th percentile. With its group topics (at most 64),
/// the probe topic and, while nodes migrate, the v1 topic, a v2 node is on
/// at most 322 topics: gossipsub's default filter drops the subscriptions
/// of a peer on more than 100, and v2 must raise it. The shard is a hash
/// prefix, so a later version can split every shard in two
/// (`shard_among(id, 9) >> 1 == shard_among(id, 8)`) when a shard holds too
/// many authors, publishing on both while nodes move.
pub const PUBLIC_SHARDS: u32 = 1 << SHARD_BITS;

/// The shard of `id` among the [`PUBLIC_SHARDS`].
pub fn shard_of(id: &IdentityId) -> u16 {
    shard_among(id, SHARD_BITS)
}

/// The shard of `id` among `2^bits` shards (at most 16 bits): the first
/// `bits` bits of SHA-256(`SHARD_DOMAIN` ‖ id). Other counts than
/// [`SHARD_BITS`] are for measuring the choice, and for a later version.
pub fn shard_among(id: &IdentityId, bits: u32) -> u16 {
    let bits = bits.min(16);
    let digest = Sha256::new()
        .chain_update(SHARD_DOMAIN)
        .chain_update(id.0)
        .finalize();
    let prefix = u32::from(u16::from_be_bytes([digest[0], digest[1]]));
    // A shift by 16 of a u32 is defined: with no bits, every id is shard 0.
    (prefix >> (16 - bits)) as u16
}

/// The gossip topic of public `shard`.
pub fn shard_topic(shard: u16) -> String {
    format!("{SHARD_TOPIC_PREFIX}{shard:02x}")
}

/// The shard whose topic is `name`, if it is one: exactly the spelling
/// [`shard_topic`] makes, so that each shard has one topic.
pub fn topic_shard(name: &str) -> Option<u16> {
    let digits = name.strip_prefix(SHARD_TOPIC_PREFIX)?;
    let shard = u16::from_str_radix(digits, 16).ok()?;
    (u32::from(shard) < PUBLIC_SHARDS && shard_topic(shard) == name).then_some(shard)
}

/// The public shards a node of `me` joins when it follows `follows`.
pub fn joined_shards<'a>(
    me: &IdentityId,
    follows: impl IntoIterator<Item = &'a IdentityId>,
) -> BTreeSet<u16> {
    joined_among(SHARD_BITS, me, follows)
}

/// The shards among `2^bits` a node of `me` joins when it follows
/// `follows`: its own, so that its changes are published where its
/// followers listen, and the shard of each identity it follows.
///
/// Bounded by the shard count: whoever follows people in every shard joins
/// every shard and receives what the single topic carries, never more. A
/// node computes the set again whenever whom it follows changes, and
/// leaves a shard once nobody it follows is in it.
pub fn joined_among<'a>(
    bits: u32,
    me: &IdentityId,
    follows: impl IntoIterator<Item = &'a IdentityId>,
) -> BTreeSet<u16> {
    let mut joined: BTreeSet<u16> = follows
        .into_iter()
        .map(|id| shard_among(id, bits))
        .collect();
    joined.insert(shard_among(me, bits));
    joined
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn the_assignment_is_the_specified_hash_prefix() {
        // SHA-256("kith/public-shard/v1" ‖ id): 2c59… for 32 zero bytes,
        // 0107… for 32 bytes of 1 (proto/README.md §20).
        let (zeros, ones) = (IdentityId([0; 32]), IdentityId([1; 32]));
        assert_eq!(shard_of(&zeros), 0x2c);
        assert_eq!(shard_of(&ones), 0x01);
        assert_eq!(shard_among(&zeros, 10), 0x2c59 >> 6);
        assert_eq!(shard_among(&ones, 16), 0x0107);
        assert_eq!(shard_among(&ones, 0), 0);
        assert_eq!(shard_topic(shard_of(&zeros)), "kith/public/v2/2c");
    }

    #[test]
    fn a_larger_count_splits_each_shard() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let id = IdentityId(rng.random());
            for bits in 0..16 {
                assert_eq!(shard_among(&id, bits + 1) >> 1, shard_among(&id, bits));
            }
        }
    }

    #[test]
    fn identities_spread_evenly_over_the_shards() {
        // Fixed seed: the same ids every run, so the bound cannot flake.
        let seed = 20_240_501;
        let mut rng = StdRng::seed_from_u64(seed);
        let per_shard = 100;
        let mut counts = vec![0u32; PUBLIC_SHARDS as usize];
        for _ in 0..PUBLIC_SHARDS * per_shard {
            counts[usize::from(shard_of(&IdentityId(rng.random())))] += 1;
        }
        let expected = f64::from(per_shard);
        let chi_square: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - expected).powi(2) / expected)
            .sum();
        println!("seed {seed}: chi-square {chi_square:.1}");
        // 255 degrees of freedom: mean 255, standard deviation about 23;
        // 330 is beyond the 99.9th percentile.
        assert!(chi_square < 330.0, "chi-square {chi_square:.1}");
        assert!(
            counts.iter().all(|&c| (50..=150).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn topics_name_each_shard_once() {
        for shard in 0..PUBLIC_SHARDS as u16 {
            assert_eq!(topic_shard(&shard_topic(shard)), Some(shard));
        }
        for other in [
            "kith/public/v1",
            "kith/public/v2/",
            "kith/public/v2/2C",
            "kith/public/v2/02c",
            "kith/public/v2/100",
            "kith/public/v2/+2",
        ] {
            assert_eq!(topic_shard(other), None, "{other}");
        }
    }

    #[test]
    fn a_node_joins_its_own_shard_and_those_it_follows() {
        let alice = IdentityId([1; 32]);
        assert_eq!(joined_shards(&alice, []), BTreeSet::from([0x01]));
        let bob = IdentityId([0; 32]);
        assert_eq!(
            joined_shards(&alice, [&bob, &bob]),
            BTreeSet::from([0x01, 0x2c])
        );
    }

    #[test]
    fn following_everyone_joins_every_shard_and_no_more() {
        let mut rng = StdRng::seed_from_u64(11);
        let everyone: Vec<IdentityId> = (0..20_000).map(|_| IdentityId(rng.random())).collect();
        let alice = IdentityId([1; 32]);
        let joined = joined_shards(&alice, &everyone);
        assert_eq!(joined.len(), PUBLIC_SHARDS as usize);
        assert_eq!(joined_among(0, &alice, &everyone), BTreeSet::from([0]));
    }
}
