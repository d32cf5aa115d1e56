//! Post bodies: the text of a post, carried beside its signed change and
//! bound to it by hash (proto/README.md §9.1, *Bodies*).
//!
//! A signed change can never be altered: its hash is signed and later
//! changes name it as a dependency. If a post's text sat inside the change,
//! deleting the post could hide the text but never erase it, and every node
//! would go on serving it to whoever asked for the history. So the change
//! holds only the body's hash, and the body travels next to the change in
//! every message that carries one. A node that learns of a deletion drops
//! the bodies of every version of the post; the change, its hash and its
//! signature stay, so the history still verifies.
//!
//! The body starts with 16 random bytes (the salt). The hash stays in the
//! signed history forever, and without the salt anyone holding it could
//! confirm a guess of the deleted text ("I quit") by hashing the guess.

use crate::schema::feed::MAX_POST_CHARS;

/// Random bytes at the start of every body.
pub const SALT_LEN: usize = 16;

/// Longest body: the salt and a post of [`MAX_POST_CHARS`] characters of
/// four bytes each.
pub const MAX_BODY_BYTES: usize = SALT_LEN + 4 * MAX_POST_CHARS;

/// BLAKE3 of a body's bytes, as the change records it.
pub type BodyHash = [u8; 32];

/// The hash a change records for `bytes`.
pub fn hash(bytes: &[u8]) -> BodyHash {
    *blake3::hash(bytes).as_bytes()
}

/// Why bytes are not a body.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    #[error("a body is {SALT_LEN} bytes of salt then text; this one is {0} bytes")]
    TooShort(usize),
    #[error("a body is at most {MAX_BODY_BYTES} bytes; this one is {0}")]
    TooLong(usize),
    #[error("a body's text is not UTF-8")]
    NotUtf8,
}

/// A post's text with its salt: what the change's `body` hash names.
#[must_use = "a body must travel with the change that records its hash"]
#[derive(Clone, PartialEq, Eq)]
pub struct Body(Vec<u8>);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text is private until published: keep it out of logs.
        f.debug_struct("Body")
            .field("bytes", &self.0.len())
            .finish_non_exhaustive()
    }
}

impl Body {
    /// A body for `text` with a fresh random salt.
    pub fn new(text: &str) -> Result<Body, crate::RandomError> {
        Ok(Body::with_salt(crate::keys::random_bytes()?, text))
    }

    /// A body with a salt the caller chose. Only for fixed outputs (test
    /// vectors): a salt that others can guess lets them confirm a guess of
    /// the text from the hash.
    pub fn with_salt(salt: [u8; SALT_LEN], text: &str) -> Body {
        let mut bytes = Vec::with_capacity(SALT_LEN + text.len());
        bytes.extend_from_slice(&salt);
        bytes.extend_from_slice(text.as_bytes());
        Body(bytes)
    }

    /// Checks bytes from elsewhere: long enough for the salt, short enough
    /// for a post, and text that is UTF-8.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Body, BodyError> {
        check(&bytes)?;
        Ok(Body(bytes))
    }

    pub fn hash(&self) -> BodyHash {
        hash(&self.0)
    }

    /// The post's text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.0[SALT_LEN..]).expect("checked when made")
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// The checks of [`Body::from_bytes`], without taking the bytes.
pub fn check(bytes: &[u8]) -> Result<(), BodyError> {
    if bytes.len() < SALT_LEN {
        return Err(BodyError::TooShort(bytes.len()));
    }
    if bytes.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLong(bytes.len()));
    }
    std::str::from_utf8(&bytes[SALT_LEN..]).map_err(|_| BodyError::NotUtf8)?;
    Ok(())
}

/// The text of stored body bytes (checked when they were stored).
pub fn text_of(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes.get(SALT_LEN..)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_bodies_of_one_text_hash_apart() {
        let a = Body::new("I quit").unwrap();
        let b = Body::new("I quit").unwrap();
        assert_eq!((a.text(), b.text()), ("I quit", "I quit"));
        assert_ne!(a.hash(), b.hash(), "the salt hides equal texts");
        assert_ne!(
            a.hash(),
            hash(b"I quit"),
            "a guess of the text alone does not match"
        );
        assert_eq!(a.hash(), hash(a.as_bytes()));
    }

    #[test]
    fn bytes_that_are_not_a_body_are_refused() {
        assert_eq!(Body::from_bytes(vec![0; 15]), Err(BodyError::TooShort(15)));
        assert_eq!(
            Body::from_bytes(vec![b'a'; MAX_BODY_BYTES + 1]),
            Err(BodyError::TooLong(MAX_BODY_BYTES + 1))
        );
        let mut bad = vec![0; SALT_LEN];
        bad.push(0xff);
        assert_eq!(Body::from_bytes(bad), Err(BodyError::NotUtf8));
        // The salt itself may be any bytes; an empty text is a body.
        assert_eq!(Body::from_bytes(vec![0xff; SALT_LEN]).unwrap().text(), "");
        let longest = "é".repeat(MAX_POST_CHARS / 2) + &"🙂".repeat(MAX_POST_CHARS / 2);
        assert!(Body::new(&longest).unwrap().as_bytes().len() <= MAX_BODY_BYTES);
    }
}
