//! kith's use of the DHT: person records (kith-core's `person`), stored
//! only once checked, and lookups that keep only what checks.
//!
//! A DHT server's store is a resource anyone can spend: valid records cost
//! nothing but a fresh identity each. So a server keeps at most
//! [`MAX_PER_SOURCE`] records placed by any one peer, and when it is full it
//! keeps the records whose keys are closest to its own id (those it is
//! responsible for), evicting the farthest. Filling one server's store then
//! takes many peer ids and identities ground to keys near that server's id,
//! and honest records further away are refused loudly, in the log, rather
//! than silently.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kith_core::person::{MAX_RECORD_BYTES, PersonRecord, RecordError};
use libp2p::PeerId;
use libp2p::kad::{self, KBucketKey, QueryId, Record, RecordKey, store::RecordStore};

/// Lookups under way, at most.
pub const MAX_LOOKUPS: usize = 64;
/// Records a DHT server keeps, at most (libp2p's default).
pub const MAX_RECORDS: usize = 1024;
/// Records one peer may have placed in this server's store, at most, once
/// the store is three-quarters full (before that, replication by honest
/// servers, which send everything they hold, is not held back).
pub const MAX_PER_SOURCE: usize = 32;
/// Provider keys (group rendezvous, proto §19) others may announce here, at
/// most: libp2p's store refuses every new key once it holds 1024, this
/// node's own announcements included, so room is kept for those.
pub const MAX_PROVIDER_KEYS: usize = MAX_RECORDS - crate::behaviour::MAX_GROUP_TOPICS;
/// Provider keys one peer may announce here, at most (a node announces
/// one per group, and may be in this many groups).
pub const MAX_PROVIDED_PER_SOURCE: usize = crate::behaviour::MAX_GROUP_TOPICS;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why a record a peer asked to store was not kept.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Invalid(#[from] RecordError),
    #[error("a record of this person with the same or a larger seq is held")]
    NotNewer,
    #[error("this peer has already placed {MAX_PER_SOURCE} records here")]
    SourceFull,
    #[error("the DHT store is full of records closer to this node's id")]
    StoreFull,
}

/// A record `source` asked this DHT server to keep: kept only if it is a
/// valid person record under its own key, newer than the one held, and
/// there is room (see the module's documentation). `capacity` is the
/// store's `max_records`.
pub fn accept_put(
    store: &mut kad::store::MemoryStore,
    local: &PeerId,
    source: PeerId,
    mut record: Record,
    capacity: usize,
) -> Result<(), Refused> {
    let now = now_ms();
    let new = PersonRecord::verify(&record.value, record.key.as_ref(), now)?;
    let held = store.get(&record.key).map(|r| r.into_owned());
    match held {
        Some(held) => {
            if let Ok(held) = PersonRecord::verify(&held.value, record.key.as_ref(), now)
                && held.seq >= new.seq
            {
                return Err(Refused::NotNewer);
            }
        }
        None => {
            if store.records().count() >= capacity * 3 / 4 {
                let placed = store
                    .records()
                    .filter(|r| r.publisher == Some(source))
                    .count();
                if placed >= MAX_PER_SOURCE {
                    return Err(Refused::SourceFull);
                }
            }
            make_room(store, local, &record.key, capacity)?;
        }
    }
    // Attributed to the peer that placed it (for the cap above), and gone
    // when the person record says it is stale.
    record.publisher = Some(source);
    let left = Duration::from_millis(new.expires_ms.saturating_sub(now));
    let expires = Instant::now() + left;
    record.expires = Some(record.expires.map_or(expires, |e| e.min(expires)));
    store.put(record).map_err(|_| Refused::StoreFull)
}

/// Frees a place for a record under `key` in a full store: expired records
/// go first, then the record farthest from this node if it is farther than
/// `key`; never one this node published itself.
pub fn make_room(
    store: &mut kad::store::MemoryStore,
    local: &PeerId,
    key: &RecordKey,
    capacity: usize,
) -> Result<(), Refused> {
    if store.records().count() < capacity {
        return Ok(());
    }
    let now = Instant::now();
    let expired: Vec<RecordKey> = store
        .records()
        .filter(|r| r.is_expired(now))
        .map(|r| r.key.clone())
        .collect();
    for k in &expired {
        store.remove(k);
    }
    if !expired.is_empty() {
        return Ok(());
    }
    let me = KBucketKey::from(*local);
    let distance = |k: &RecordKey| me.distance(&KBucketKey::new(k.clone()));
    let farthest = store
        .records()
        .filter(|r| r.publisher != Some(*local))
        .map(|r| r.key.clone())
        .max_by_key(|k| distance(k))
        .ok_or(Refused::StoreFull)?;
    if distance(&farthest) <= distance(key) {
        return Err(Refused::StoreFull);
    }
    store.remove(&farthest);
    Ok(())
}

/// The provider records others placed in this server's store, by key:
/// libp2p's store can neither list them nor evict one, so this does, with
/// the same rules as records (see the module's documentation).
#[derive(Debug, Default)]
pub struct Providers {
    placed: HashMap<RecordKey, Vec<PeerId>>,
}

impl Providers {
    /// A provider record a peer announced (libp2p checked that it names
    /// that peer): kept within the limits.
    pub fn accept(
        &mut self,
        store: &mut kad::store::MemoryStore,
        local: &PeerId,
        record: kad::ProviderRecord,
    ) -> Result<(), Refused> {
        let (key, source) = (record.key.clone(), record.provider);
        let already = self.placed.get(&key).is_some_and(|p| p.contains(&source));
        if !already {
            let announced = |placed: &HashMap<RecordKey, Vec<PeerId>>| {
                placed.values().filter(|p| p.contains(&source)).count()
            };
            let full = |placed: &HashMap<RecordKey, Vec<PeerId>>| {
                !placed.contains_key(&key) && placed.len() >= MAX_PROVIDER_KEYS
            };
            // Gone and expired announcements are swept only when a limit is
            // reached: the sweep reads every key.
            if announced(&self.placed) >= MAX_PROVIDED_PER_SOURCE || full(&self.placed) {
                self.forget_gone(store);
            }
            if announced(&self.placed) >= MAX_PROVIDED_PER_SOURCE {
                return Err(Refused::SourceFull);
            }
            if full(&self.placed) {
                let me = KBucketKey::from(*local);
                let distance = |k: &RecordKey| me.distance(&KBucketKey::new(k.clone()));
                let farthest = self
                    .placed
                    .keys()
                    .max_by_key(|k| distance(k))
                    .cloned()
                    .ok_or(Refused::StoreFull)?;
                if distance(&farthest) <= distance(&key) {
                    return Err(Refused::StoreFull);
                }
                for p in self.placed.remove(&farthest).unwrap_or_default() {
                    store.remove_provider(&farthest, &p);
                }
            }
        }
        store.add_provider(record).map_err(|_| Refused::StoreFull)?;
        let providers = self.placed.entry(key).or_default();
        if !providers.contains(&source) {
            providers.push(source);
        }
        Ok(())
    }

    /// Forgets the records the store no longer holds, and removes those
    /// that expired (libp2p removes them only when someone asks for them).
    fn forget_gone(&mut self, store: &mut kad::store::MemoryStore) {
        let now = Instant::now();
        self.placed.retain(|key, providers| {
            let held = store.providers(key);
            providers.retain(|p| match held.iter().find(|r| r.provider == *p) {
                Some(r) if r.is_expired(now) => {
                    store.remove_provider(key, p);
                    false
                }
                Some(_) => true,
                None => false,
            });
            !providers.is_empty()
        });
    }
}

/// The newest valid record of a lookup so far, and its seq.
#[derive(Debug, Default)]
struct Best(Option<(u64, Vec<u8>)>);

impl Best {
    /// A value found under `key`: kept if it is a valid person record newer
    /// than the one kept. Invalid values cost one check and take no room,
    /// so peers near the key cannot crowd the valid record out.
    fn offer(&mut self, value: Vec<u8>, key: &[u8], now_ms: u64) {
        if value.len() > MAX_RECORD_BYTES {
            return;
        }
        let Ok(record) = PersonRecord::verify(&value, key, now_ms) else {
            return;
        };
        if self.0.as_ref().is_none_or(|(seq, _)| record.seq > *seq) {
            self.0 = Some((record.seq, value));
        }
    }
}

/// Lookups under way: the caller's id, the key, the best record found,
/// and whether any DHT server answered.
#[derive(Debug, Default)]
pub struct Lookups {
    pending: HashMap<QueryId, (u64, Vec<u8>, Best, bool)>,
}

/// What a lookup found.
#[derive(Debug)]
pub struct Found {
    /// The caller's id.
    pub id: u64,
    /// The newest valid record, if any.
    pub records: Vec<Vec<u8>>,
    /// Some DHT server answered: "no record" means none is held, not that
    /// nobody could be asked.
    pub answered: bool,
}

impl Lookups {
    /// Starts looking `key` up for the caller's `id`; `false` if too many
    /// lookups are under way.
    pub fn start(
        &mut self,
        kad: &mut kad::Behaviour<kad::store::MemoryStore>,
        key: Vec<u8>,
        id: u64,
    ) -> bool {
        if self.pending.len() >= MAX_LOOKUPS {
            return false;
        }
        let query = kad.get_record(RecordKey::new(&key));
        self.pending
            .insert(query, (id, key, Best::default(), false));
        true
    }

    /// A step of query `query`: `found` a value, or none; `answered` if a
    /// server has answered so far; `last` if the query is over. Returns
    /// what it found when it is.
    pub fn step(
        &mut self,
        query: QueryId,
        found: Option<Vec<u8>>,
        answered: bool,
        last: bool,
    ) -> Option<Found> {
        let (_, key, best, any) = self.pending.get_mut(&query)?;
        *any |= answered;
        if let Some(value) = found {
            best.offer(value, key, now_ms());
        }
        if !last {
            return None;
        }
        let (id, _, best, answered) = self.pending.remove(&query)?;
        Some(Found {
            id,
            records: best.0.map(|(_, v)| v).into_iter().collect(),
            answered,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_core::person::{DeviceReach, LIFETIME_MS, dht_key};
    use kith_core::{DeviceCert, DeviceKey, IdentityKey};

    fn signed(identity: &IdentityKey, seq: u64) -> Record {
        let device = DeviceKey::generate().unwrap();
        let now = now_ms();
        let record = PersonRecord {
            identity: identity.id(),
            seq,
            expires_ms: now + LIFETIME_MS,
            devices: vec![DeviceReach {
                cert: DeviceCert::issue(identity, &device, now - 1000),
                addrs: vec!["/ip4/203.0.113.10/tcp/4610".into()],
                updated_ms: now,
            }],
        };
        Record::new(dht_key(&identity.id()), record.sign(identity))
    }

    fn fresh() -> Record {
        signed(&IdentityKey::generate().unwrap(), 1)
    }

    #[test]
    fn a_server_keeps_valid_newer_records_only() {
        let local = PeerId::random();
        let mut store = kad::store::MemoryStore::new(local);
        let source = PeerId::random();
        let alice = IdentityKey::generate().unwrap();
        accept_put(&mut store, &local, source, signed(&alice, 5), MAX_RECORDS).unwrap();
        assert!(matches!(
            accept_put(&mut store, &local, source, signed(&alice, 4), MAX_RECORDS),
            Err(Refused::NotNewer)
        ));
        accept_put(&mut store, &local, source, signed(&alice, 6), MAX_RECORDS).unwrap();
        let key = RecordKey::new(&dht_key(&alice.id()));
        let held = store.get(&key).unwrap();
        let now = now_ms();
        assert_eq!(
            PersonRecord::verify(&held.value, key.as_ref(), now)
                .unwrap()
                .seq,
            6
        );
        // Under another person's key.
        let mut moved = signed(&alice, 7);
        moved.key = RecordKey::new(&dht_key(&IdentityKey::generate().unwrap().id()));
        assert!(matches!(
            accept_put(&mut store, &local, source, moved, MAX_RECORDS),
            Err(Refused::Invalid(RecordError::WrongKey))
        ));
        assert_eq!(store.records().count(), 1);
    }

    #[test]
    fn one_peer_cannot_fill_a_filling_store() {
        let local = PeerId::random();
        let mut store = kad::store::MemoryStore::new(local);
        // Honest replication first: one server sends all it holds.
        let capacity = 4 * MAX_PER_SOURCE;
        let replica = PeerId::random();
        for _ in 0..capacity * 3 / 4 {
            accept_put(&mut store, &local, replica, fresh(), capacity).unwrap();
        }
        // Now filling: a peer gets MAX_PER_SOURCE places and no more.
        let flooder = PeerId::random();
        let refused = (0..MAX_PER_SOURCE + 5)
            .filter(|_| accept_put(&mut store, &local, flooder, fresh(), capacity).is_err())
            .count();
        assert!(refused >= 5, "{refused}");
        let held = store
            .records()
            .filter(|r| r.publisher == Some(flooder))
            .count();
        assert!(held <= MAX_PER_SOURCE, "{held}");
    }

    fn provider(key: Vec<u8>, peer: PeerId) -> kad::ProviderRecord {
        kad::ProviderRecord::new(
            RecordKey::new(&key),
            peer,
            vec!["/ip4/203.0.113.7/tcp/1".parse().unwrap()],
        )
    }

    #[test]
    fn provider_announcements_are_bounded_per_peer_and_closest_first() {
        let local = PeerId::random();
        let mut store = kad::store::MemoryStore::new(local);
        let mut providers = Providers::default();
        let flooder = PeerId::random();
        let refused = (0..MAX_PROVIDED_PER_SOURCE + 3)
            .filter(|i| {
                let key = (*i as u64).to_be_bytes().to_vec();
                providers
                    .accept(&mut store, &local, provider(key, flooder))
                    .is_err()
            })
            .count();
        assert_eq!(refused, 3, "one peer announces one key per group at most");
        // Many peers fill the keys; the store still takes this node's own.
        let mut i = 1_000_000u64;
        while providers.placed.len() < MAX_PROVIDER_KEYS {
            i += 1;
            let _ = providers.accept(
                &mut store,
                &local,
                provider(i.to_be_bytes().to_vec(), PeerId::random()),
            );
        }
        let before = providers.placed.len();
        let me = KBucketKey::from(local);
        let farthest = providers
            .placed
            .keys()
            .map(|k| me.distance(&KBucketKey::new(k.clone())))
            .max()
            .unwrap();
        // A key closer than the farthest takes its place.
        let closer = (0u64..)
            .map(|j| [&b"closer"[..], &j.to_be_bytes()].concat())
            .find(|k| me.distance(&KBucketKey::new(RecordKey::new(k))) < farthest)
            .unwrap();
        providers
            .accept(&mut store, &local, provider(closer, PeerId::random()))
            .unwrap();
        assert_eq!(providers.placed.len(), before);
        store
            .add_provider(provider(b"own group".to_vec(), local))
            .expect("room kept for this node's own announcements");
    }

    #[test]
    fn a_full_store_keeps_the_records_closest_to_this_node() {
        let local = PeerId::random();
        let me = KBucketKey::from(local);
        let capacity = 8;
        let mut store = kad::store::MemoryStore::new(local);
        let mut records: Vec<Record> = (0..capacity * 3).map(|_| fresh()).collect();
        records.sort_by_key(|r| me.distance(&KBucketKey::new(r.key.clone())));
        let (near, far) = records.split_at(capacity);
        // The far half first: they fill the store.
        for r in far.iter().take(capacity) {
            accept_put(&mut store, &local, PeerId::random(), r.clone(), capacity).unwrap();
        }
        // A record farther than all of them is refused, and loudly.
        let farthest = far.last().unwrap().clone();
        assert!(matches!(
            accept_put(&mut store, &local, PeerId::random(), farthest, capacity),
            Err(Refused::StoreFull)
        ));
        // Closer records evict the farthest held.
        for r in near {
            accept_put(&mut store, &local, PeerId::random(), r.clone(), capacity).unwrap();
        }
        let mut held: Vec<RecordKey> = store.records().map(|r| r.key.clone()).collect();
        held.sort_by_key(|k| me.distance(&KBucketKey::new(k.clone())));
        let want: Vec<RecordKey> = near.iter().map(|r| r.key.clone()).collect();
        assert_eq!(held, want);
    }

    #[test]
    fn a_lookup_keeps_the_newest_valid_record_whatever_else_comes() {
        let alice = IdentityKey::generate().unwrap();
        let key = dht_key(&alice.id());
        let now = now_ms();
        let mut best = Best::default();
        // Garbage and other people's records by the hundred, around the
        // valid ones: none takes room, none wins.
        for i in 0..200 {
            best.offer(vec![i as u8; 40], &key, now);
            best.offer(fresh().value, &key, now);
            if i == 100 {
                best.offer(signed(&alice, 3).value, &key, now);
            }
            if i == 150 {
                best.offer(signed(&alice, 2).value, &key, now);
            }
        }
        let (seq, value) = best.0.unwrap();
        assert_eq!(seq, 3);
        assert_eq!(PersonRecord::verify(&value, &key, now).unwrap().seq, 3);
    }
}
