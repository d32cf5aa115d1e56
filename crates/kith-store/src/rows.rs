//! Byte layouts of table keys and values. Fixed-width fields are
//! big-endian; variable fields come last so no length prefix is needed.

use kith_core::{IdentityId, PostId};

/// Where a post's current text lives: op `counter` of change
/// `(doc_no, actor_no, seq)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextRef {
    pub actor_no: u32,
    pub seq: u32,
    pub counter: u64,
}

/// One post in the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostRow {
    pub author_no: u32,
    pub doc_no: u32,
    pub space_no: u32,
    pub at_ms: u64,
    pub deleted: bool,
    pub edited: bool,
    pub reply_to: Option<PostId>,
    pub text: Option<TextRef>,
    /// Where the text the post was created with lives. Edits are recorded in
    /// `VERSIONS`; the first text is not, so most posts (never edited) cost
    /// no version row. Stored only when it differs from `text`.
    pub first: Option<TextRef>,
    /// The post's key inside its feed document.
    pub key: String,
}

const DELETED: u8 = 1;
const EDITED: u8 = 2;
const REPLY: u8 = 4;
const TEXT: u8 = 8;
const FIRST: u8 = 16;
const FIRST_IS_TEXT: u8 = 32;

fn take<const N: usize>(b: &mut &[u8]) -> Option<[u8; N]> {
    if b.len() < N {
        return None;
    }
    let (head, rest) = b.split_at(N);
    *b = rest;
    head.try_into().ok()
}

impl PostRow {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.key.len());
        out.extend_from_slice(&self.author_no.to_be_bytes());
        out.extend_from_slice(&self.doc_no.to_be_bytes());
        out.extend_from_slice(&self.space_no.to_be_bytes());
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        let first_is_text = self.first.is_some() && self.first == self.text;
        let flags = (self.deleted as u8 * DELETED)
            | (self.edited as u8 * EDITED)
            | (self.reply_to.is_some() as u8 * REPLY)
            | (self.text.is_some() as u8 * TEXT)
            | ((self.first.is_some() && !first_is_text) as u8 * FIRST)
            | (first_is_text as u8 * FIRST_IS_TEXT);
        out.push(flags);
        if let Some(r) = &self.reply_to {
            out.extend_from_slice(&r.0);
        }
        let mut put_ref = |t: &TextRef| {
            out.extend_from_slice(&t.actor_no.to_be_bytes());
            out.extend_from_slice(&t.seq.to_be_bytes());
            out.extend_from_slice(&t.counter.to_be_bytes());
        };
        if let Some(t) = &self.text {
            put_ref(t);
        }
        if let Some(t) = self.first.as_ref().filter(|_| !first_is_text) {
            put_ref(t);
        }
        out.extend_from_slice(self.key.as_bytes());
        out
    }

    /// Reads a row this crate wrote; `None` means the file is corrupt.
    pub fn decode(mut b: &[u8]) -> Option<PostRow> {
        let author_no = u32::from_be_bytes(take(&mut b)?);
        let doc_no = u32::from_be_bytes(take(&mut b)?);
        let space_no = u32::from_be_bytes(take(&mut b)?);
        let at_ms = u64::from_be_bytes(take(&mut b)?);
        let [flags] = take::<1>(&mut b)?;
        let reply_to = if flags & REPLY != 0 {
            Some(PostId(take(&mut b)?))
        } else {
            None
        };
        let mut take_ref = |present: bool| -> Option<Option<TextRef>> {
            if !present {
                return Some(None);
            }
            Some(Some(TextRef {
                actor_no: u32::from_be_bytes(take(&mut b)?),
                seq: u32::from_be_bytes(take(&mut b)?),
                counter: u64::from_be_bytes(take(&mut b)?),
            }))
        };
        let text = take_ref(flags & TEXT != 0)?;
        let first = if flags & FIRST_IS_TEXT != 0 {
            text
        } else {
            take_ref(flags & FIRST != 0)?
        };
        Some(PostRow {
            author_no,
            doc_no,
            space_no,
            at_ms,
            deleted: flags & DELETED != 0,
            edited: flags & EDITED != 0,
            reply_to,
            text,
            first,
            key: String::from_utf8(b.to_vec()).ok()?,
        })
    }
}

/// One person in the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonRow {
    pub identity: IdentityId,
    pub name: String,
    pub bio: String,
}

impl PersonRow {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(34 + self.name.len() + self.bio.len());
        out.extend_from_slice(&self.identity.0);
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(self.bio.as_bytes());
        out
    }

    pub fn decode(mut b: &[u8]) -> Option<PersonRow> {
        let identity = IdentityId(take(&mut b)?);
        let name_len = u16::from_be_bytes(take(&mut b)?) as usize;
        if b.len() < name_len {
            return None;
        }
        let (name, bio) = b.split_at(name_len);
        Some(PersonRow {
            identity,
            name: String::from_utf8(name.to_vec()).ok()?,
            bio: String::from_utf8(bio.to_vec()).ok()?,
        })
    }
}

pub fn change_key(doc_no: u32, actor_no: u32, seq: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&doc_no.to_be_bytes());
    k[4..8].copy_from_slice(&actor_no.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// `change_key || op counter (8)`: where a body's hash was put.
pub fn body_key(doc_no: u32, actor_no: u32, seq: u32, counter: u64) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..12].copy_from_slice(&change_key(doc_no, actor_no, seq));
    k[12..].copy_from_slice(&counter.to_be_bytes());
    k
}

pub fn split_change_key(k: &[u8; 12]) -> (u32, u32, u32) {
    let n = |i: usize| u32::from_be_bytes(k[i..i + 4].try_into().expect("fixed slice"));
    (n(0), n(4), n(8))
}

/// `prefix (4) || at (8) || post (16)`: the FEED and BY_AUTHOR key.
pub fn timeline_key(prefix: u32, at_ms: u64, post: &PostId) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..4].copy_from_slice(&prefix.to_be_bytes());
    k[4..12].copy_from_slice(&at_ms.to_be_bytes());
    k[12..].copy_from_slice(&post.0);
    k
}

pub fn timeline_post(k: &[u8; 28]) -> PostId {
    PostId(k[12..].try_into().expect("fixed slice"))
}

pub fn reply_key(parent: &PostId, at_ms: u64, child: &PostId) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..16].copy_from_slice(&parent.0);
    k[16..24].copy_from_slice(&at_ms.to_be_bytes());
    k[24..].copy_from_slice(&child.0);
    k
}

pub fn version_key(post: &PostId, time_ms: u64, actor_no: u32, seq: u32) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&post.0);
    k[16..24].copy_from_slice(&time_ms.to_be_bytes());
    k[24..28].copy_from_slice(&actor_no.to_be_bytes());
    k[28..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn split_version_key(k: &[u8; 32]) -> (u64, u32, u32) {
    (
        u64::from_be_bytes(k[16..24].try_into().expect("fixed slice")),
        u32::from_be_bytes(k[24..28].try_into().expect("fixed slice")),
        u32::from_be_bytes(k[28..].try_into().expect("fixed slice")),
    )
}

pub fn pair_key(a: u32, b: u32) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&a.to_be_bytes());
    k[4..].copy_from_slice(&b.to_be_bytes());
    k
}

pub fn split_pair_key(k: &[u8; 8]) -> (u32, u32) {
    (
        u32::from_be_bytes(k[..4].try_into().expect("fixed slice")),
        u32::from_be_bytes(k[4..].try_into().expect("fixed slice")),
    )
}

pub fn reaction_key(post: &PostId, reactor_no: u32, emoji: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(20 + emoji.len());
    k.extend_from_slice(&post.0);
    k.extend_from_slice(&reactor_no.to_be_bytes());
    k.extend_from_slice(emoji.as_bytes());
    k
}

pub fn label_key(owner_no: u32, subject_no: u32, label: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + label.len());
    k.extend_from_slice(&owner_no.to_be_bytes());
    k.extend_from_slice(&subject_no.to_be_bytes());
    k.extend_from_slice(label.as_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_rows_round_trip() {
        let row = PostRow {
            author_no: 1,
            doc_no: 2,
            space_no: 0,
            at_ms: 3,
            deleted: false,
            edited: true,
            reply_to: Some(PostId([7; 16])),
            text: Some(TextRef {
                actor_no: 4,
                seq: 5,
                counter: 6,
            }),
            first: None,
            key: "abc".into(),
        };
        assert_eq!(PostRow::decode(&row.encode()), Some(row.clone()));
        // The first text: the same as the current one (stored once), or not.
        let same = PostRow {
            first: row.text,
            ..row.clone()
        };
        assert_eq!(same.encode().len(), row.encode().len());
        assert_eq!(PostRow::decode(&same.encode()), Some(same));
        let other = PostRow {
            first: Some(TextRef {
                actor_no: 9,
                seq: 1,
                counter: 2,
            }),
            ..row
        };
        assert_eq!(PostRow::decode(&other.encode()), Some(other));
    }

    #[test]
    fn person_rows_round_trip() {
        let row = PersonRow {
            identity: IdentityId([1; 32]),
            name: "Ada".into(),
            bio: "b".into(),
        };
        assert_eq!(PersonRow::decode(&row.encode()), Some(row));
    }
}
