//! Being found, and finding people, by id alone (proto/README.md section
//! 18): this node publishes its person record in the DHT whenever the
//! addresses others can reach it at change (and every hour, so that it
//! outlives no change), unless the person chose not to be findable; and
//! when the person follows someone none of whose devices is connected, it
//! looks their record up and dials the devices it lists.
//!
//! A person's devices share one record. So a device looks the record up
//! before it publishes, and publishes it with its own entry renewed and the
//! others' kept (`PersonRecord::renewed`), rather than a record of itself
//! alone that would hide the person's other devices.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use kith_core::IdentityId;
use kith_core::person::{self, DeviceReach, PersonRecord};
use kith_net::{Command, Multiaddr};

use crate::home::Keys;

/// How often a findable node publishes its record again.
pub const REPUBLISH: Duration = Duration::from_secs(3600);
/// Lookups waiting for the DHT, at most; more are not started.
pub const MAX_PENDING: usize = 64;
/// A lookup not answered in this time is forgotten, so the person can be
/// looked up again (the DHT gives up on a query after a minute; an answer
/// the network task could not hand over never comes).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(90);
/// A followed person none of whose devices is connected is looked up again
/// after this (a device that went away, a relay that dropped the circuit,
/// someone who was offline), the wait doubling up to [`RETRY_MAX`] while
/// they stay unreached.
pub const RETRY_MIN: Duration = Duration::from_secs(5);
pub const RETRY_MAX: Duration = Duration::from_secs(600);
/// Lookups one retry round starts, at most.
pub const RETRY_PER_ROUND: usize = 8;
/// A record is published again this long after a lookup of it that no DHT
/// server answered (none reached yet).
pub const PUBLISH_AGAIN: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// See the module's documentation.
#[derive(Debug)]
pub struct Finding {
    findable: bool,
    /// Where others reach this node, as the network last said.
    reach: Vec<Multiaddr>,
    published: Option<Instant>,
    lookups: HashMap<u64, (IdentityId, Instant)>,
    /// The lookup of this person's own record, made before publishing.
    own: Option<u64>,
    next: u64,
    /// Followed people not reached: when to look each up again, and the
    /// wait after that.
    unreached: HashMap<IdentityId, (Instant, Duration)>,
    /// When to try publishing again after a lookup of this person's own
    /// record that no DHT server answered.
    publish_again: Option<Instant>,
}

impl Finding {
    pub fn new(findable: bool) -> Finding {
        Finding {
            findable,
            reach: Vec::new(),
            published: None,
            lookups: HashMap::new(),
            own: None,
            next: 0,
            unreached: HashMap::new(),
            publish_again: None,
        }
    }

    /// Where others on the internet reach this node, as the network last
    /// said: relay circuits and public addresses.
    pub fn reach(&self) -> &[Multiaddr] {
        &self.reach
    }

    /// The network says where others reach this node now: the lookup that
    /// precedes publishing, if any.
    pub fn reach_changed(&mut self, keys: &Keys, reach: Vec<Multiaddr>) -> Option<Command> {
        self.reach = reach;
        self.publish(keys)
    }

    /// Every tick: expired lookups go, and the record is published again
    /// once an hour.
    pub fn tick(&mut self, keys: &Keys, now: Instant) -> Option<Command> {
        self.lookups
            .retain(|_, (_, at)| now.duration_since(*at) < LOOKUP_TIMEOUT);
        if let Some(own) = self.own
            && !self.lookups.contains_key(&own)
        {
            // The lookup before publishing went unanswered: start over.
            self.own = None;
            return self.publish(keys);
        }
        if self.publish_again.is_some_and(|at| at <= now) {
            self.publish_again = None;
            return self.publish(keys);
        }
        match self.published {
            Some(at) if now.duration_since(at) >= REPUBLISH => self.publish(keys),
            _ => None,
        }
    }

    /// Starts publishing: first the lookup of the record as it stands
    /// (unless one is under way; its answer publishes the reach of then).
    fn publish(&mut self, keys: &Keys) -> Option<Command> {
        if !self.findable || self.reach.is_empty() || self.own.is_some() {
            return None;
        }
        let me = keys.identity.id();
        self.next += 1;
        self.lookups.insert(self.next, (me, Instant::now()));
        self.own = Some(self.next);
        self.published = Some(Instant::now());
        Some(Command::FindPerson {
            key: person::dht_key(&me),
            id: self.next,
        })
    }

    /// The record to publish, given what the DHT holds now.
    fn renewed(&self, found: &[Vec<u8>], keys: &Keys) -> Option<Command> {
        if !self.findable || self.reach.is_empty() {
            return None;
        }
        let me = keys.identity.id();
        let key = person::dht_key(&me);
        let now = now_ms();
        let held = person::newest(found.iter().map(Vec::as_slice), &key, now);
        let mine = DeviceReach {
            cert: keys.cert.clone(),
            addrs: self
                .reach
                .iter()
                .take(person::MAX_ADDRS)
                .map(ToString::to_string)
                .collect(),
            updated_ms: now,
        };
        let record = PersonRecord::renewed(me, mine, held.as_ref(), now);
        Some(Command::PutPerson {
            key,
            record: record.sign(&keys.identity),
        })
    }

    /// The followed people none of whose devices is connected now: those
    /// whose wait is over are looked up again (see [`RETRY_MIN`]); anyone
    /// reached since starts over.
    pub fn retry(&mut self, unreached: &BTreeSet<IdentityId>, now: Instant) -> Vec<Command> {
        self.unreached.retain(|who, _| unreached.contains(who));
        let mut due = Vec::new();
        for who in unreached {
            let (next, _) = self
                .unreached
                .entry(*who)
                .or_insert((now + RETRY_MIN, RETRY_MIN));
            if *next <= now && due.len() < RETRY_PER_ROUND {
                due.push(*who);
            }
        }
        let mut out = Vec::new();
        for who in due {
            // Only a lookup started waits longer next time (one refused as
            // too many under way is tried again next round).
            if let Some(c) = self.look_up(who) {
                out.push(c);
                if let Some((next, wait)) = self.unreached.get_mut(&who) {
                    *wait = (*wait * 2).min(RETRY_MAX);
                    *next = now + *wait;
                }
            }
        }
        out
    }

    /// Starts looking `who` up.
    pub fn look_up(&mut self, who: IdentityId) -> Option<Command> {
        if self.lookups.len() >= MAX_PENDING || self.lookups.values().any(|(w, _)| *w == who) {
            return None;
        }
        self.next += 1;
        self.lookups.insert(self.next, (who, Instant::now()));
        Some(Command::FindPerson {
            key: person::dht_key(&who),
            id: self.next,
        })
    }

    /// A lookup is over: the dials to make, to the devices of the newest
    /// valid record found (none if there is none); or, for the lookup of
    /// this person's own record, the record to publish.
    /// `answered` says whether any DHT server answered: with none, "no
    /// record" says nothing, and publishing then would drop the person's
    /// other devices from the record, so it waits [`PUBLISH_AGAIN`].
    pub fn found(
        &mut self,
        id: u64,
        records: &[Vec<u8>],
        answered: bool,
        me: &Keys,
    ) -> Vec<Command> {
        let Some((who, _)) = self.lookups.remove(&id) else {
            return Vec::new();
        };
        if self.own == Some(id) {
            self.own = None;
            if !answered {
                self.publish_again = Some(Instant::now() + PUBLISH_AGAIN);
                return Vec::new();
            }
            return self.renewed(records, me).into_iter().collect();
        }
        let key = person::dht_key(&who);
        let Some(record) = person::newest(records.iter().map(Vec::as_slice), &key, now_ms()) else {
            tracing::info!(person = %who, found = records.len(), "no valid record of this person in the DHT");
            return Vec::new();
        };
        tracing::info!(person = %who, devices = record.devices.len(), "found this person's devices");
        record
            .devices
            .iter()
            .filter(|d| d.cert.device != me.device.id())
            .map(|d| {
                let peer = kith_net::peer_id(&d.cert.device);
                let addrs = d
                    .addrs
                    .iter()
                    .filter_map(|a| a.parse::<Multiaddr>().ok())
                    // Never a LAN or loopback address on a stranger's word.
                    .filter(kith_net::address::is_internet)
                    .filter_map(|a| match kith_net::address::peer_of(&a) {
                        Some(p) if p == peer => Some(a),
                        // An address of some other peer: not this device's.
                        Some(_) => None,
                        None => Some(a.with(libp2p::multiaddr::Protocol::P2p(peer))),
                    })
                    .collect();
                Command::DialDevice {
                    device: d.cert.device,
                    addrs,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_core::{DeviceCert, DeviceKey, IdentityKey};

    fn keys() -> Keys {
        let identity = IdentityKey::generate().unwrap();
        let device = DeviceKey::generate().unwrap();
        let cert = DeviceCert::issue(&identity, &device, now_ms() - 1000);
        Keys {
            identity,
            device,
            cert,
        }
    }

    /// Publishes `keys`'s reach the way a node does: a lookup of the record
    /// as the DHT holds it (`held`), then the renewed record.
    fn publish(finding: &mut Finding, keys: &Keys, reach: &[&str], held: &[Vec<u8>]) -> Vec<u8> {
        let reach = reach.iter().map(|a| a.parse().unwrap()).collect();
        let Some(Command::FindPerson { id, key }) = finding.reach_changed(keys, reach) else {
            panic!("a findable node with a reach looks its record up first");
        };
        assert_eq!(key, person::dht_key(&keys.identity.id()));
        let [Command::PutPerson { record, .. }] = &finding.found(id, held, true, keys)[..] else {
            panic!("then publishes");
        };
        record.clone()
    }

    #[test]
    fn a_found_device_is_dialled_once_with_every_internet_address_of_its_own() {
        let (alice, me) = (keys(), keys());
        let relay = kith_net::peer_id(&DeviceKey::generate().unwrap().id());
        let stranger = kith_net::peer_id(&DeviceKey::generate().unwrap().id());
        let circuit = format!("/ip4/203.0.113.10/tcp/4001/p2p/{relay}/p2p-circuit");
        let public = "/ip4/198.51.100.7/tcp/4610".to_owned();
        let elsewhere = format!("/ip4/198.51.100.8/tcp/4610/p2p/{stranger}");
        let record = publish(
            &mut Finding::new(true),
            &alice,
            &[&circuit, &public, &elsewhere, "/ip4/10.0.0.5/tcp/4610"],
            &[],
        );
        let mut finding = Finding::new(true);
        let Some(Command::FindPerson { id, .. }) = finding.look_up(alice.identity.id()) else {
            panic!("a lookup starts");
        };
        assert!(
            finding.look_up(alice.identity.id()).is_none(),
            "once at a time"
        );
        let dials = finding.found(id, &[record], true, &me);
        let [Command::DialDevice { device, addrs }] = &dials[..] else {
            panic!("one dial of alice's device: {dials:?}");
        };
        assert_eq!(*device, alice.device.id());
        let peer = kith_net::peer_id(&alice.device.id());
        let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        assert_eq!(
            addrs,
            [
                format!("{circuit}/p2p/{peer}"),
                format!("{public}/p2p/{peer}")
            ],
            "the stranger's address and the LAN address are left out"
        );
    }

    #[test]
    fn a_second_device_publishes_beside_the_first_not_over_it() {
        let laptop = keys();
        let device = DeviceKey::generate().unwrap();
        let phone = Keys {
            identity: IdentityKey::from_secret_bytes(&laptop.identity.secret_bytes()),
            cert: DeviceCert::issue(&laptop.identity, &device, now_ms() - 1000),
            device,
        };
        let first = publish(
            &mut Finding::new(true),
            &laptop,
            &["/ip4/198.51.100.7/tcp/4610"],
            &[],
        );
        let second = publish(
            &mut Finding::new(true),
            &phone,
            &["/ip4/198.51.100.9/tcp/4610"],
            std::slice::from_ref(&first),
        );
        let key = person::dht_key(&laptop.identity.id());
        let first = PersonRecord::verify(&first, &key, now_ms()).unwrap();
        let second = PersonRecord::verify(&second, &key, now_ms()).unwrap();
        assert!(second.seq > first.seq);
        let devices: Vec<_> = second.device_ids().collect();
        assert_eq!(devices, [phone.device.id(), laptop.device.id()]);
    }

    #[test]
    fn an_unreached_person_is_looked_up_again_less_and_less_often() {
        let alice = keys();
        let who = alice.identity.id();
        let mut finding = Finding::new(true);
        let t = Instant::now();
        let unreached = BTreeSet::from([who]);
        assert!(finding.retry(&unreached, t).is_empty(), "not at once");
        let lookups = |f: &mut Finding, at| {
            let out = f.retry(&unreached, at);
            // Answered (nothing found), so the next retry may start one.
            for c in &out {
                if let Command::FindPerson { id, .. } = c {
                    f.found(*id, &[], true, &alice);
                }
            }
            out.len()
        };
        assert_eq!(lookups(&mut finding, t + RETRY_MIN), 1);
        assert_eq!(
            lookups(&mut finding, t + RETRY_MIN * 2),
            0,
            "the wait doubled"
        );
        assert_eq!(lookups(&mut finding, t + RETRY_MIN * 3), 1);
        // Reached, then lost again: the wait starts over.
        assert!(
            finding
                .retry(&BTreeSet::new(), t + RETRY_MIN * 4)
                .is_empty()
        );
        assert!(finding.retry(&unreached, t + RETRY_MIN * 4).is_empty());
        assert_eq!(lookups(&mut finding, t + RETRY_MIN * 5), 1);
        // Many at once: a few a round.
        let many: BTreeSet<IdentityId> = (0..50).map(|_| keys().identity.id()).collect();
        let mut finding = Finding::new(true);
        finding.retry(&many, t);
        assert_eq!(finding.retry(&many, t + RETRY_MIN).len(), RETRY_PER_ROUND);
    }

    #[test]
    fn a_lookup_nobody_answered_does_not_publish_over_the_other_devices() {
        let alice = keys();
        let mut finding = Finding::new(true);
        let reach = vec!["/ip4/198.51.100.7/tcp/4610".parse().unwrap()];
        let Some(Command::FindPerson { id, .. }) = finding.reach_changed(&alice, reach) else {
            panic!("a lookup first");
        };
        assert!(
            finding.found(id, &[], false, &alice).is_empty(),
            "no server answered: nothing published"
        );
        let t = Instant::now();
        assert!(finding.tick(&alice, t).is_none());
        assert!(
            matches!(
                finding.tick(&alice, t + PUBLISH_AGAIN),
                Some(Command::FindPerson { .. })
            ),
            "tried again later"
        );
    }

    #[test]
    fn an_unanswered_lookup_expires_so_the_person_can_be_looked_up_again() {
        let (alice, me) = (keys(), keys());
        let mut finding = Finding::new(false);
        assert!(
            finding
                .reach_changed(&me, vec!["/ip4/198.51.100.7/tcp/1".parse().unwrap()])
                .is_none(),
            "not findable: nothing published"
        );
        assert!(finding.look_up(alice.identity.id()).is_some());
        assert!(finding.look_up(alice.identity.id()).is_none());
        finding.tick(&me, Instant::now() + LOOKUP_TIMEOUT);
        assert!(finding.look_up(alice.identity.id()).is_some());
    }
}
