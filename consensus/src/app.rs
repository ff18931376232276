//! The state machine the simulated cluster replicates: the real `agora-core` ledger.
//! Leaders build signed blocks exactly as a node does; every node applies committed
//! entries and reports its state root, so the checkers compare real roots.

use crate::raft::{EntryData, LogEntry, RaftLog};
use agora_core::block::{Block, Entry, EntryPayload};
use agora_core::encoding::Canonical;
use agora_core::{Halt, Ledger, Outcome, SecretKey};

/// How far (in entries) a leader's applied state may lag its next proposal: further
/// behind, its block's `checked_state_root` could fall out of the roots followers keep.
pub const MAX_PROPOSAL_APPLY_LAG: u64 = 256;
const _: () = assert!(MAX_PROPOSAL_APPLY_LAG < agora_core::state::ROOT_HISTORY_LEN);

/// The ledger as a replicated state machine.
#[derive(Clone)]
pub struct LedgerApp {
    ledger: Ledger,
}

impl LedgerApp {
    /// Wraps a ledger at some height.
    pub fn new(ledger: Ledger) -> LedgerApp {
        LedgerApp { ledger }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Applies a committed Raft entry; returns everything it produced.
    pub fn apply_entry(&mut self, entry: &LogEntry) -> Result<Outcome, Halt> {
        let payload = match &entry.data {
            EntryData::Noop => EntryPayload::Noop,
            EntryData::Normal(bytes) => EntryPayload::Block(bytes.clone()),
            EntryData::Config(change) => {
                EntryPayload::Membership(borsh::to_vec(change).expect("in memory"))
            }
        };
        self.ledger.apply(&Entry {
            index: entry.index,
            term: entry.term,
            payload,
        })
    }

    /// Builds the block a leader proposes at `index`, on top of the last block in its log
    /// (or in its applied state), checking the newest root it has applied. `None` when its
    /// applied state lags too far behind to propose.
    pub fn build_block(
        &self,
        log: &RaftLog,
        index: u64,
        key: &SecretKey,
        txs: Vec<Vec<u8>>,
        randomness: [u8; 32],
    ) -> Option<Vec<u8>> {
        let applied = self.ledger.height();
        if index > applied + MAX_PROPOSAL_APPLY_LAG {
            return None;
        }
        let mut parent = self.ledger.state().globals.last_block_hash;
        for i in (applied + 1..index).rev() {
            if let Some(LogEntry {
                data: EntryData::Normal(bytes),
                ..
            }) = log.entry(i)
            {
                parent = Block::from_canonical_bytes(&bytes[..]).ok()?.header.hash();
                break;
            }
        }
        let block = Block::build(
            self.ledger.chain_id(),
            index,
            key,
            parent,
            applied,
            self.ledger.state_root(),
            txs,
            randomness,
        );
        Some(block.to_canonical_bytes())
    }
}
