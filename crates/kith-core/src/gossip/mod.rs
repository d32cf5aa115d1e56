//! Gossip: how a change travels live, and what a node does with one a peer
//! relays (proto/README.md §12). IO-free like the sync engine, which owns
//! an [`Intake`] and turns its decisions into outputs: the node's network
//! task only carries bytes and verdicts.
//!
//! - [`envelope`]: the message, [`GossipChange`], and its limits;
//! - [`channel`]: which document travels on which topic;
//! - [`groups`]: a node's group topics and their keys;
//! - [`intake`]: the receiving rules, and whom to blame;
//! - [`publish`]: the one route out for a local change;
//! - [`shard`]: public topics by author, for internet scale (defined, not
//!   used yet).

pub mod channel;
pub mod envelope;
pub mod groups;
pub mod intake;
pub mod publish;
pub mod shard;

pub use channel::{Channel, PUBLIC_TOPIC, Topic};
pub use envelope::{EnvelopeError, GossipChange, MAX_GOSSIP_BYTES};
pub use groups::{GroupChannels, MAX_GROUP_TOPICS, TopicChanges};
pub use intake::{Decision, Intake, Offence, Verdict};
pub use publish::outgoing;
