//! # agora-node
//!
//! The node around the deterministic ledger. So far: the sans-IO reputation-weighted Raft
//! core ([`raft`]) and the deterministic simulator that checks it ([`sim`]).

#![forbid(unsafe_code)]

pub mod raft;
pub mod sim;
pub mod storage;
