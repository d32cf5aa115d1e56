//! kith's use of the DHT: person records (kith-core's `person`), stored
//! only once checked, and lookups that gather what the DHT returns.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use kith_core::person::{MAX_RECORD_BYTES, PersonRecord};
use libp2p::kad::{self, QueryId, Record, RecordKey, store::RecordStore};

/// Records a lookup gathers, at most (the DHT's replication factor).
pub const MAX_FOUND: usize = 20;
/// Lookups under way, at most.
pub const MAX_LOOKUPS: usize = 64;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A record a peer asked this DHT server to keep: kept only if it is a
/// valid person record under its own key and newer than the one held.
/// Returns why not, for the log.
pub fn accept_put(
    store: &mut kad::store::MemoryStore,
    record: Record,
) -> Result<(), kith_core::person::RecordError> {
    let now = now_ms();
    let new = PersonRecord::verify(&record.value, record.key.as_ref(), now)?;
    if let Some(held) = store.get(&record.key)
        && let Ok(held) = PersonRecord::verify(&held.value, record.key.as_ref(), now)
        && held.seq >= new.seq
    {
        return Ok(()); // not newer: keep the one held
    }
    // The store's own limits (records, value size) still apply.
    if let Err(e) = store.put(record) {
        tracing::debug!(error = %e, "DHT store refused a record");
    }
    Ok(())
}

/// Lookups under way: the caller's id and the values found so far.
#[derive(Debug, Default)]
pub struct Lookups {
    pending: HashMap<QueryId, (u64, Vec<Vec<u8>>)>,
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
        self.pending.insert(query, (id, Vec::new()));
        true
    }

    /// A step of query `query`: `found` a value, or none; `last` if the
    /// query is over. Returns the caller's id and everything found when it
    /// is.
    pub fn step(
        &mut self,
        query: QueryId,
        found: Option<Vec<u8>>,
        last: bool,
    ) -> Option<(u64, Vec<Vec<u8>>)> {
        let entry = self.pending.get_mut(&query)?;
        if let Some(value) = found
            && value.len() <= MAX_RECORD_BYTES
            && entry.1.len() < MAX_FOUND
        {
            entry.1.push(value);
        }
        if last {
            self.pending.remove(&query)
        } else {
            None
        }
    }
}
