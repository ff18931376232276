//! # agora-testkit
//!
//! What tests, the simulator and the vector tools share and the ledger does not need:
//! seeded keys and libp2p peer ids, and the scenarios that generate the committed test
//! vectors ([`vectors`]). `agora-core` keeps the vector format and `check`.

#![forbid(unsafe_code)]

pub mod light;
pub mod vectors;

pub use vectors::{generate_all, seeded_key, test_seed, validator_peer, VALIDATOR_PEER_IDS};
