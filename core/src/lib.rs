//! # agora-core
//!
//! The deterministic ledger every Agora node runs. It does no I/O, reads no clock, draws
//! no randomness and uses no floating point: the state after an entry is a pure function
//! of the state before it and the entry. The one entry point that changes state is
//! [`Ledger::apply`].
//!
//! - [`crypto`]: ML-DSA keys and signatures (FIPS 204), tagged by parameter set.
//! - [`encoding`]: canonical borsh bytes and the strict decoder.
//! - [`tx`], [`block`]: what members and proposers sign.
//! - [`certificate`]: validators' commit signatures, checked by the ledger and light clients.
//! - [`light`]: the light client's checks: certified roots from a trusted committee.
//! - [`ledger`]: economics, governance, reputation; [`state`] its data.
//! - [`state_tree`]: the order-independent, incremental Merkle state root and proofs.
//! - [`tx_root`]: the per-block transaction root (rs_merkle, domain-separated).
//! - [`genesis`]: the initial state and the chain id.
//! - [`vectors`]: the deterministic scenario generator behind `vectors/`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod block;
pub mod certificate;
pub mod crypto;
pub mod encoding;
pub mod genesis;
pub mod hash;
pub mod ledger;
pub mod light;
#[cfg(feature = "openapi")]
mod openapi;
pub mod outcome;
pub mod params;
pub mod state;
pub mod state_tree;
pub mod tx;
pub mod tx_root;
pub mod types;
pub mod vectors;

pub use block::{Block, BlockHeader, Entry, EntryPayload};
pub use certificate::{Certificate, CertificateFault, CommitSignature, CommitStatement, Committee};
pub use crypto::{KeyKind, PublicKey, Purpose, SecretKey, Signature};
pub use encoding::{Canonical, DecodeError};
pub use genesis::Genesis;
pub use hash::Hash32;
pub use ledger::{
    Authorization, Ledger, NoVerdicts, NonceRule, PreparedEntry, RestoreError, SignatureVerdicts,
};
pub use outcome::{Event, Halt, Outcome, Receipt, TargetConfig, TxError, TxStatus, TxTrace};
pub use params::{ParamChange, Params};
pub use state::{Snapshot, State, StateKey};
pub use tx::{Action, ProposalKind, Sender, SignedTransaction, Transaction, VoteChoice};
pub use types::{AccountId, Amount, ChainId, Ratio, ValidatorId};
