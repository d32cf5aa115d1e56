//! Test doubles for the IO-free parts (feature `testing`): a replica kept in
//! memory and people who write signed changes, so that the sync engine and
//! gossip intake are tested without a store, a socket or a clock.
//!
//! ```
//! use kith_core::testing::Person;
//!
//! let mut alice = Person::new("alice", 1);
//! let post = alice.post("hello");
//! assert_eq!(post.doc.owner, alice.id());
//! ```

mod corpus;
mod person;
mod replica;

pub use corpus::posts;

pub use person::Person;
pub use replica::MemoryReplica;
