//! # agora-consensus
//!
//! Everything a validator decides, as deterministic code with no I/O: the sans-IO
//! reputation-weighted Raft core ([`raft`]), the replica that joins it to the ledger
//! ([`replica`]: admission, mempool, block proposing, commit waiters, reads,
//! reconfiguration, snapshots, replay mode), the storage contract ([`storage`]) with its
//! in-memory implementation, and the simulator ([`sim`]) that runs the replica exactly as
//! the node ships it. This crate depends on no async runtime, socket, database or clock;
//! the compiler keeps it that way (see `tests/seam.rs`). `agora-node` is the tokio shell
//! that executes the replica's actions with SQLite, libp2p and axum.

#![forbid(unsafe_code)]

pub mod app;
pub mod mempool;
pub mod raft;
pub mod replica;
pub mod sim;
pub mod storage;
