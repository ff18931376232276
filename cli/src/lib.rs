//! # agora-cli
//!
//! The pieces of the `agora` binary (and of `agora-load`, the cluster load generator):
//! the HTTP client, key files, amounts and output, governance and vector commands.

#![forbid(unsafe_code)]

pub mod client;
pub mod format;
pub mod governance;
pub mod keyfile;
pub mod light;
pub mod lookup;
pub mod settings;
pub mod state_value;
pub mod vectors;
pub mod watch;
