//! A local change while it is being made: the document, and the bodies of
//! the posts the change makes or edits, which must travel with it.

use automerge::AutoCommit;
use kith_core::schema::feed::{self, FeedError};
use kith_core::{Body, PostId};

/// What [`crate::Store::commit_local`] hands its closure. It reads and
/// edits as the document does (it dereferences to it); posts are made and
/// edited through it, so that their bodies cannot be left behind.
#[derive(Debug)]
pub struct Draft<'a> {
    doc: &'a mut AutoCommit,
    bodies: Vec<Body>,
}

impl<'a> Draft<'a> {
    pub fn new(doc: &'a mut AutoCommit) -> Draft<'a> {
        Draft {
            doc,
            bodies: Vec::new(),
        }
    }

    /// The bodies to send beside the change, once it is committed.
    pub fn into_bodies(self) -> Vec<Body> {
        self.bodies
    }

    /// Adds a post ([`feed::create_post`]) and carries its body.
    pub fn create_post(
        &mut self,
        key: &str,
        text: &str,
        at_ms: u64,
        reply_to: Option<PostId>,
    ) -> Result<(), FeedError> {
        let body = feed::create_post(self.doc, key, text, at_ms, reply_to)?;
        self.carry(body);
        Ok(())
    }

    /// Edits a post ([`feed::edit_post`]) and carries its new body.
    pub fn edit_post(&mut self, key: &str, text: &str) -> Result<(), FeedError> {
        let body = feed::edit_post(self.doc, key, text)?;
        self.carry(body);
        Ok(())
    }

    /// Carries a body whose hash the closure put some other way.
    pub fn carry(&mut self, body: Body) {
        self.bodies.push(body);
    }
}

impl std::ops::Deref for Draft<'_> {
    type Target = AutoCommit;
    fn deref(&self) -> &AutoCommit {
        self.doc
    }
}

impl std::ops::DerefMut for Draft<'_> {
    fn deref_mut(&mut self) -> &mut AutoCommit {
        self.doc
    }
}
