//! The sans-IO, reputation-weighted Raft core.
//!
//! [`Raft`] is a plain struct: the driver feeds it clock ticks ([`Raft::tick`]), messages
//! ([`Raft::step`]) and requests ([`Raft::propose`], [`Raft::propose_config`],
//! [`Raft::read_index`], [`Raft::transfer_leader`]), then takes a [`Ready`] and calls
//! [`Raft::advance`]. Time is a tick count and randomness a seeded RNG, both handed in, so
//! a whole cluster runs inside the deterministic simulator ([`crate::sim`]).
//!
//! What differs from textbook Raft: quorums are weighted (more than half of the total
//! weight, learners weigh 0); every membership or weight change goes through joint
//! consensus; votes are signed with the voters' validator keys; election timeouts and
//! leadership follow reputation (weight).

pub mod config;
mod core;
pub mod crypto;
mod election;
mod leaving;
pub mod log;
pub mod message;
pub mod progress;
pub mod quorum;
mod read_index;
mod rejoin;
mod replication;
mod step;
pub mod types;
mod witness;

#[cfg(any(test, feature = "inject-bugs"))]
pub use self::core::Bugs;
pub use self::core::{
    Counters, ProposeError, Raft, RaftConfig, Ready, Recovered, Regression, Vouched,
};
pub use config::{Config, Member, Membership};
pub use crypto::{MlDsaVotes, StubVotes, VoteCrypto};
pub use log::RaftLog;
pub use message::{Message, MessageBody};
pub use types::{
    ConfigChange, EntryData, HardState, Index, LogEntry, NodeId, ReadState, Role, Snapshot,
    SnapshotMeta, SoftState, Term,
};

#[cfg(test)]
mod election_tests;
#[cfg(test)]
mod leaving_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod witness_tests;
