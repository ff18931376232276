//! Test vectors: the format, and the check every implementation must pass.
//!
//! A vector is a genesis plus a sequence of committed entries (blocks of signed
//! transactions as hex), each with the state root, receipts and events expected after it.
//! [`check`] replays a vector through [`Ledger`] and reports the first divergence.
//! `vectors/README.md` specifies the format. The scenarios that generate the committed
//! vectors live in `agora-testkit`.

use crate::block::Entry;
use crate::genesis::Genesis;
use crate::hash::Hash32;
use crate::ledger::Ledger;
use crate::outcome::{Event, Receipt, TargetConfig};
use crate::types::ValidatorId;
use serde::{Deserialize, Serialize};

/// The format tag every vector file carries.
pub const FORMAT: &str = "agora-vectors/v1";

/// What must hold after an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The state root.
    pub state_root: Hash32,
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// Events, in order.
    pub events: Vec<Event>,
    /// Present exactly when the entry ends with a `config_changed` event: the consensus
    /// (Raft) weight of every validator, in validator-id order, that the ledger now asks
    /// for (vectors/README.md §5, "Consensus weights").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Vec<ConfigWeight>>,
}

/// One member's consensus weight in a target configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigWeight {
    /// The validator (or witness).
    pub validator: ValidatorId,
    /// Its consensus weight (after the cap).
    pub weight: u64,
    /// Whether it is a witness (written only when it is: a configuration without
    /// witnesses keeps the form it had before witnesses existed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub witness: bool,
}

impl ConfigWeight {
    /// The weights of a target configuration: the validators, then the witnesses.
    pub fn of(config: &TargetConfig) -> Vec<ConfigWeight> {
        let weight = |witness: bool| {
            move |member: &crate::outcome::ConfigMember| ConfigWeight {
                validator: member.validator,
                weight: member.weight,
                witness,
            }
        };
        config
            .members
            .iter()
            .map(weight(false))
            .chain(config.witnesses.iter().map(weight(true)))
            .collect()
    }
}

impl Expected {
    /// Compares what an implementation produced at entry `index` with what is expected:
    /// the root, then the receipts, then the events (`None` when the producer does not
    /// report them, e.g. a node's block archive).
    pub fn compare(
        &self,
        index: u64,
        state_root: &Hash32,
        receipts: &[Receipt],
        events: Option<&[Event]>,
    ) -> Result<(), Divergence> {
        compare(index, "state root", &self.state_root, state_root)?;
        compare(index, "receipts", &self.receipts.as_slice(), &receipts)?;
        match events {
            Some(events) => compare(index, "events", &self.events.as_slice(), &events),
            None => Ok(()),
        }
    }
}

/// One committed entry and its expected result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorEntry {
    /// The entry as committed (a block's canonical bytes as hex).
    pub entry: Entry,
    /// A note for readers.
    pub note: String,
    /// What must hold after applying it.
    pub expected: Expected,
    /// Entries at the same index that must be refused first: each halts with its code and
    /// changes nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedEntry>,
}

/// An entry a correct ledger refuses (halts on) without changing its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedEntry {
    /// The entry.
    pub entry: Entry,
    /// What is wrong with it, for readers.
    pub note: String,
    /// The halt's code ([`crate::Halt::code`]).
    pub halt: String,
}

/// A vector file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// File stem.
    pub name: String,
    /// What it covers.
    pub description: String,
    /// The genesis.
    pub genesis: Genesis,
    /// The chain id the genesis must hash to.
    pub chain_id: Hash32,
    /// The root at height 0.
    pub genesis_state_root: Hash32,
    /// The entries, index 1 upward.
    pub entries: Vec<VectorEntry>,
}

impl VectorFile {
    /// Pretty JSON with a trailing newline: the committed form.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("vectors serialize");
        text.push('\n');
        text
    }

    /// Parses a vector file.
    pub fn from_json(text: &str) -> Result<VectorFile, String> {
        let file: VectorFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.format != FORMAT {
            return Err(format!("format is {:?}, expected {FORMAT:?}", file.format));
        }
        Ok(file)
    }
}

/// Where a replay first differed from a vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Divergence {
    /// The genesis does not validate or hash as recorded.
    #[error("genesis: {0}")]
    Genesis(String),
    /// The ledger halted on an entry.
    #[error("entry {index}: ledger halted: {reason}")]
    Halted {
        /// Entry index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// A result differs.
    #[error("entry {index}: {what} differs: expected {expected}, got {actual}")]
    Mismatch {
        /// Entry index.
        index: u64,
        /// Which part.
        what: &'static str,
        /// Recorded.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The ledger's invariants broke.
    #[error("entry {index}: invariant broken: {reason}")]
    Invariant {
        /// Entry index.
        index: u64,
        /// Why.
        reason: String,
    },
}

/// Replays `file` through a fresh ledger. Returns the number of entries checked.
pub fn check(file: &VectorFile) -> Result<usize, Divergence> {
    let genesis = file
        .genesis
        .clone()
        .normalized()
        .map_err(|e| Divergence::Genesis(e.to_string()))?;
    if genesis.chain_id() != file.chain_id {
        return Err(Divergence::Genesis(format!(
            "chain id is {}, vector says {}",
            genesis.chain_id(),
            file.chain_id
        )));
    }
    let mut ledger = Ledger::from_genesis(&genesis);
    if ledger.state_root() != file.genesis_state_root {
        return Err(Divergence::Genesis(format!(
            "genesis root is {}, vector says {}",
            ledger.state_root(),
            file.genesis_state_root
        )));
    }
    for vector in &file.entries {
        let index = vector.entry.index;
        for refused in &vector.refused {
            let root = ledger.state_root();
            let halt = match ledger.apply(&refused.entry) {
                Ok(_) => "applied".to_string(),
                Err(halt) => halt.code(),
            };
            compare(index, "refusal", &refused.halt, &halt)?;
            compare(
                index,
                "state root after a refusal",
                &root,
                &ledger.state_root(),
            )?;
            compare(
                index,
                "height after a refusal",
                &(index - 1),
                &ledger.height(),
            )?;
        }
        let outcome = ledger
            .apply(&vector.entry)
            .map_err(|halt| Divergence::Halted {
                index,
                reason: halt.to_string(),
            })?;
        vector.expected.compare(
            index,
            &outcome.state_root,
            &outcome.receipts,
            Some(&outcome.events),
        )?;
        let config = outcome.config_changed.as_ref().map(ConfigWeight::of);
        compare(index, "configuration", &vector.expected.config, &config)?;
        ledger
            .state()
            .check_invariants()
            .map_err(|reason| Divergence::Invariant { index, reason })?;
    }
    Ok(file.entries.len())
}

fn compare<T: PartialEq + Serialize>(
    index: u64,
    what: &'static str,
    expected: &T,
    actual: &T,
) -> Result<(), Divergence> {
    if expected == actual {
        return Ok(());
    }
    Err(Divergence::Mismatch {
        index,
        what,
        expected: serde_json::to_string(expected).expect("serializes"),
        actual: serde_json::to_string(actual).expect("serializes"),
    })
}
