//! Reads the header of a raw automerge change chunk without automerge.
//!
//! Untrusted bytes must not reach automerge before their signature has been
//! checked (DESIGN.md decision 3). The signature covers the change hash, and
//! the authorisation checks need the actor id, so this module computes the
//! hash and reads the few header fields itself, checking every length before
//! it is used. Layout (automerge binary format, change chunk):
//!
//! ```text
//! magic (4) | checksum (4) | type = 1 (1) | uleb len | data (len bytes)
//! data = uleb n_deps | n_deps × hash (32) | uleb actor_len | actor | uleb seq
//!        | uleb start_op | sleb time | …ops…
//! hash = sha256(type || minimal_uleb(len) || data); checksum = hash[0..4]
//! ```

use sha2::{Digest, Sha256};

/// automerge's chunk magic bytes.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// The chunk type of an uncompressed change.
const CHUNK_CHANGE: u8 = 1;
/// The chunk type of a DEFLATE-compressed change; never accepted from others,
/// because checking one would mean inflating it first. (Stores written by
/// earlier versions of kith may hold some; they are read, never sent.)
const CHUNK_COMPRESSED: u8 = 2;

/// Most dependencies one change may declare.
pub const MAX_DEPS: usize = 256;
/// Longest actor id accepted: a 32-byte device key plus a suffix of up to 32 bytes.
pub const MAX_ACTOR_LEN: usize = 64;

/// The fields of a change that kith checks before automerge parses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeHeader {
    /// automerge's change hash: what the device signature binds.
    pub hash: [u8; 32],
    pub deps: Vec<[u8; 32]>,
    pub actor: Vec<u8>,
    pub seq: u64,
    pub start_op: u64,
    /// Milliseconds since the Unix epoch, as the author's clock claimed.
    pub time_ms: i64,
}

/// Why bytes are not an acceptable change chunk.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkError {
    #[error("change is truncated")]
    Truncated,
    #[error("change does not start with automerge's magic bytes")]
    Magic,
    #[error("compressed change chunks are not accepted; send the uncompressed change")]
    Compressed,
    #[error("chunk type {0} is not a change")]
    ChunkType(u8),
    #[error("change has {0} bytes after its end")]
    TrailingBytes(usize),
    #[error("change checksum does not match its contents")]
    Checksum,
    #[error("change declares {0} dependencies, more than {MAX_DEPS}")]
    TooManyDeps(u64),
    #[error("change actor id is {0} bytes, outside 33..={MAX_ACTOR_LEN}")]
    ActorLength(u64),
    #[error("change has an integer that is overlong or does not fit in 64 bits")]
    Leb128,
    #[error("change has start_op 0")]
    ZeroStartOp,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ChunkError> {
        if self.buf.len() < n {
            return Err(ChunkError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn uleb(&mut self) -> Result<u64, ChunkError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self.take(1)?.first().expect("took one byte");
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(ChunkError::Leb128);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                // A zero final byte after the first is an overlong encoding:
                // two byte strings would then share one change hash.
                if i > 0 && byte == 0 {
                    return Err(ChunkError::Leb128);
                }
                return Ok(value);
            }
        }
        Err(ChunkError::Leb128)
    }

    fn sleb(&mut self) -> Result<i64, ChunkError> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let byte = *self.take(1)?.first().expect("took one byte");
            if shift >= 64 {
                return Err(ChunkError::Leb128);
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }
}

fn write_uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads and checks the header of an uncompressed change chunk.
pub fn parse_header(raw: &[u8]) -> Result<ChangeHeader, ChunkError> {
    let mut r = Reader { buf: raw };
    if r.take(4)? != MAGIC {
        return Err(ChunkError::Magic);
    }
    let checksum: [u8; 4] = r.take(4)?.try_into().expect("took four bytes");
    let chunk_type = r.take(1)?[0];
    match chunk_type {
        CHUNK_CHANGE => {}
        CHUNK_COMPRESSED => return Err(ChunkError::Compressed),
        other => return Err(ChunkError::ChunkType(other)),
    }
    let len = r.uleb()?;
    let len = usize::try_from(len).map_err(|_| ChunkError::Truncated)?;
    if r.buf.len() < len {
        return Err(ChunkError::Truncated);
    }
    if r.buf.len() > len {
        return Err(ChunkError::TrailingBytes(r.buf.len() - len));
    }
    let data = r.buf;

    let mut prefix = Vec::with_capacity(11);
    prefix.push(chunk_type);
    write_uleb(&mut prefix, len as u64);
    let hash: [u8; 32] = Sha256::new()
        .chain_update(&prefix)
        .chain_update(data)
        .finalize()
        .into();
    if hash[..4] != checksum {
        return Err(ChunkError::Checksum);
    }

    let mut d = Reader { buf: data };
    let n_deps = d.uleb()?;
    if n_deps > MAX_DEPS as u64 {
        return Err(ChunkError::TooManyDeps(n_deps));
    }
    let mut deps = Vec::with_capacity(n_deps as usize);
    for _ in 0..n_deps {
        deps.push(d.take(32)?.try_into().expect("took 32 bytes"));
    }
    let actor_len = d.uleb()?;
    if !(33..=MAX_ACTOR_LEN as u64).contains(&actor_len) {
        return Err(ChunkError::ActorLength(actor_len));
    }
    let actor = d.take(actor_len as usize)?.to_vec();
    let seq = d.uleb()?;
    let start_op = d.uleb()?;
    if start_op == 0 {
        return Err(ChunkError::ZeroStartOp);
    }
    let time_ms = d.sleb()?;
    Ok(ChangeHeader {
        hash,
        deps,
        actor,
        seq,
        start_op,
        time_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{ActorId, AutoCommit, ReadDoc, transaction::Transactable};

    fn sample_change() -> automerge::Change {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(vec![5u8; 40]));
        doc.put(automerge::ROOT, "k", "v").unwrap();
        doc.commit_with(automerge::transaction::CommitOptions::default().with_time(1234));
        doc.put(automerge::ROOT, "k", "w").unwrap();
        doc.commit_with(automerge::transaction::CommitOptions::default().with_time(5678));
        assert_eq!(
            doc.get(automerge::ROOT, "k")
                .unwrap()
                .unwrap()
                .0
                .into_string()
                .ok()
                .as_deref(),
            Some("w")
        );
        doc.get_last_local_change().unwrap()
    }

    #[test]
    fn header_matches_what_automerge_reads() {
        let change = sample_change();
        let h = parse_header(change.raw_bytes()).unwrap();
        assert_eq!(h.hash, change.hash().0);
        assert_eq!(h.actor, change.actor_id().to_bytes());
        assert_eq!(h.seq, change.seq());
        assert_eq!(h.start_op, change.start_op().get());
        assert_eq!(h.time_ms, change.timestamp());
        assert_eq!(
            h.deps,
            change.deps().iter().map(|d| d.0).collect::<Vec<_>>()
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        let change = sample_change();
        let raw = change.raw_bytes();
        for n in 0..raw.len() {
            assert!(
                parse_header(&raw[..n]).is_err(),
                "truncated to {n} bytes was accepted"
            );
        }
    }

    #[test]
    fn trailing_garbage_and_bit_flips_are_refused() {
        let change = sample_change();
        let mut long = change.raw_bytes().to_vec();
        long.push(0);
        assert_eq!(parse_header(&long), Err(ChunkError::TrailingBytes(1)));
        let mut flipped = change.raw_bytes().to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(parse_header(&flipped), Err(ChunkError::Checksum));
    }

    #[test]
    fn an_overlong_length_is_refused() {
        // The same change with its length written in one byte more: the hash
        // (computed over the minimal length) would be the same, so it must go.
        let change = sample_change();
        let raw = change.raw_bytes();
        let mut i = 9;
        while raw[i] & 0x80 != 0 {
            i += 1;
        }
        let mut long = raw[..i].to_vec();
        long.push(raw[i] | 0x80);
        long.push(0);
        long.extend_from_slice(&raw[i + 1..]);
        assert_eq!(parse_header(&long), Err(ChunkError::Leb128));
    }

    #[test]
    fn compressed_chunks_are_refused() {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(vec![5u8; 40]));
        doc.put(automerge::ROOT, "k", "x".repeat(2000)).unwrap();
        doc.commit();
        let mut change = doc.get_last_local_change().unwrap();
        let compressed = change.bytes().to_vec();
        assert_eq!(parse_header(&compressed), Err(ChunkError::Compressed));
    }
}
