//! # agora-node
//!
//! The tokio shell around the replica of [`agora_consensus`]: it feeds the replica ticks,
//! peer messages and client requests, and carries out the actions it returns with SQLite
//! ([`sqlite`]), libp2p ([`network`]) and axum ([`api`]). It holds no ledger or consensus
//! decision of its own. [`node::run`] wires them together.

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod cpu;
pub mod driver;
pub mod events;
pub mod keys;
pub mod light;
pub mod metrics;
pub mod network;
pub mod node;
pub mod sqlite;
pub mod watchdog;
pub mod zones;
