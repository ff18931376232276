//! # agora-node
//!
//! The node around the deterministic ledger: the sans-IO reputation-weighted Raft core
//! ([`raft`]) and its simulator ([`sim`]), durable storage ([`storage`]), the libp2p
//! transport ([`network`]), the driver loop ([`driver`]), the HTTP API ([`api`]) and
//! [`node::run`], which wires them together.

#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod config;
pub mod driver;
pub mod keys;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod node;
pub mod raft;
pub mod sim;
pub mod storage;
