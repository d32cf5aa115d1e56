//! Being found, and finding people, by id alone (proto/README.md section
//! 18): this node publishes its person record in the DHT whenever the
//! addresses others can reach it at change (and every hour, so that it
//! outlives no change), unless the person chose not to be findable; and
//! when the person follows someone none of whose devices is connected, it
//! looks their record up and dials the devices it lists.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kith_core::IdentityId;
use kith_core::person::{self, DeviceReach, LIFETIME_MS, PersonRecord};
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
    next: u64,
}

impl Finding {
    pub fn new(findable: bool) -> Finding {
        Finding {
            findable,
            reach: Vec::new(),
            published: None,
            lookups: HashMap::new(),
            next: 0,
        }
    }

    /// The network says where others reach this node now: the record to
    /// publish, if any.
    pub fn reach_changed(&mut self, keys: &Keys, reach: Vec<Multiaddr>) -> Option<Command> {
        self.reach = reach;
        self.publish(keys)
    }

    /// Every tick: expired lookups go, and the record is published again
    /// once an hour.
    pub fn tick(&mut self, keys: &Keys, now: Instant) -> Option<Command> {
        self.lookups
            .retain(|_, (_, at)| now.duration_since(*at) < LOOKUP_TIMEOUT);
        match self.published {
            Some(at) if now.duration_since(at) >= REPUBLISH => self.publish(keys),
            _ => None,
        }
    }

    fn publish(&mut self, keys: &Keys) -> Option<Command> {
        if !self.findable || self.reach.is_empty() {
            return None;
        }
        let now = now_ms();
        let record = PersonRecord {
            identity: keys.identity.id(),
            seq: now,
            expires_ms: now + LIFETIME_MS,
            devices: vec![DeviceReach {
                cert: keys.cert.clone(),
                addrs: self
                    .reach
                    .iter()
                    .take(person::MAX_ADDRS)
                    .map(ToString::to_string)
                    .collect(),
            }],
        };
        self.published = Some(Instant::now());
        Some(Command::PutPerson {
            key: person::dht_key(&keys.identity.id()),
            record: record.sign(&keys.identity),
        })
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
    /// valid record found (none if there is none).
    pub fn found(&mut self, id: u64, records: &[Vec<u8>], me: &Keys) -> Vec<Command> {
        let Some((who, _)) = self.lookups.remove(&id) else {
            return Vec::new();
        };
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

    #[test]
    fn a_found_device_is_dialled_once_with_every_address_of_its_own() {
        let (alice, me) = (keys(), keys());
        let mut finding = Finding::new(true);
        let relay = kith_net::peer_id(&DeviceKey::generate().unwrap().id());
        let stranger = kith_net::peer_id(&DeviceKey::generate().unwrap().id());
        let circuit = format!("/ip4/203.0.113.10/tcp/4001/p2p/{relay}/p2p-circuit");
        let public = "/ip4/198.51.100.7/tcp/4610".to_owned();
        let elsewhere = format!("/ip4/198.51.100.8/tcp/4610/p2p/{stranger}");
        let Some(Command::PutPerson { record, .. }) = finding.reach_changed(
            &alice,
            vec![
                circuit.parse().unwrap(),
                public.parse().unwrap(),
                elsewhere.parse().unwrap(),
            ],
        ) else {
            panic!("a findable node with a reach publishes");
        };
        let Some(Command::FindPerson { id, .. }) = finding.look_up(alice.identity.id()) else {
            panic!("a lookup starts");
        };
        assert!(
            finding.look_up(alice.identity.id()).is_none(),
            "once at a time"
        );
        let dials = finding.found(id, &[record], &me);
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
            "the stranger's address is left out"
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
