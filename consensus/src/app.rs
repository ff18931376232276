//! The state machine the simulated cluster replicates: the real `agora-core` ledger.
//! Leaders build signed blocks exactly as a node does; every node applies committed
//! entries and reports its state root, so the checkers compare real roots.

use crate::raft::{EntryData, LogEntry, RaftLog};
use agora_core::block::{Block, Entry, EntryPayload};
use agora_core::encoding::Canonical;
use agora_core::state::{Proposal, ProposalStatus};
use agora_core::tx_root::tx_root_of_ids;
use agora_core::{
    AccountId, Certificate, Halt, Hash32, Ledger, Outcome, ProposalKind, SecretKey,
    SignatureVerdicts,
};

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

    /// Applies a committed Raft entry, reusing the signature verdicts in `verdicts`;
    /// returns everything it produced.
    pub fn apply_entry(
        &mut self,
        entry: &LogEntry,
        verdicts: &dyn SignatureVerdicts,
    ) -> Result<Outcome, Halt> {
        let payload = match &entry.data {
            EntryData::Noop => EntryPayload::Noop,
            EntryData::Normal(bytes) => EntryPayload::Block(bytes.to_vec()),
            EntryData::Config(change) => {
                EntryPayload::Membership(borsh::to_vec(change).expect("in memory"))
            }
        };
        let entry = Entry {
            index: entry.index,
            term: entry.term,
            payload,
        };
        self.ledger.apply_with(&entry, verdicts)
    }

    /// Whether a block by `key` at `index` can be valid when it applies: its proposer must
    /// be a validator then. A leader stays Raft leader for a while after governance removes
    /// it from the ledger's validators (the configuration follows through joint
    /// consensus), so it proposes no block at a height past the tally of an open proposal
    /// to remove it — every node would refuse that block and halt. No-ops and the
    /// configuration change that removes it still go through.
    pub fn may_propose_at(&self, key: &SecretKey, index: u64) -> bool {
        let me = AccountId::from_public_key(key.public_key());
        let state = self.ledger.state();
        let removal_tallied_before = |proposal: &Proposal| {
            proposal.status == ProposalStatus::Voting
                && proposal.voting_end_height < index
                && matches!(proposal.kind, ProposalKind::RemoveValidator { validator } if validator == me)
        };
        state.validators.contains_key(&me) && !state.proposals.values().any(removal_tallied_before)
    }

    /// Builds the block a leader proposes at `index`, on top of the last block in its log
    /// (or in its applied state), checking the newest root it has applied. `tx_ids` are
    /// the transactions' ids, hashed when they were admitted. `None` when its applied
    /// state lags too far behind to propose.
    pub fn build_block(
        &self,
        log: &RaftLog,
        index: u64,
        key: &SecretKey,
        (txs, tx_ids, certificates): (Vec<Vec<u8>>, &[Hash32], Vec<Certificate>),
        randomness: [u8; 32],
    ) -> Option<Vec<u8>> {
        let applied = self.ledger.height();
        if index > applied + MAX_PROPOSAL_APPLY_LAG || !self.may_propose_at(key, index) {
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
        let tx_root = tx_root_of_ids(tx_ids);
        debug_assert_eq!(tx_root, agora_core::tx_root::tx_root(&txs));
        let block = Block::build_with_tx_root(
            self.ledger.chain_id(),
            index,
            key,
            parent,
            applied,
            self.ledger.state_root(),
            txs,
            tx_root,
            certificates,
            randomness,
        );
        Some(block.to_canonical_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::tx::{Action, VoteChoice};
    use agora_core::{KeyKind, Params};
    use agora_testkit::vectors::Scenario;

    /// A validator that governance is removing stops proposing blocks for heights past
    /// the tally, while it may still lead Raft: every node would refuse such a block
    /// ("proposer is not a validator") and halt. Found by the simulator with governance.
    #[test]
    fn a_validator_being_removed_proposes_no_block_past_the_tally() {
        let mut s = Scenario::new("removal", "", &[KeyKind::MlDsa44; 2], Params::default());
        let removed = s.validators[0].clone();
        let other = s.validators[1].clone();
        let validator = AccountId::from_public_key(removed.public_key());
        let propose = s.sign(
            0,
            Action::Propose {
                proposal: ProposalKind::RemoveValidator { validator },
                deposit: Params::default().min_deposit,
            },
        );
        s.block(1, "propose the removal", vec![propose]);
        let id = *s.ledger().state().proposals.keys().next_back().unwrap();
        let end = s.ledger().state().proposals[&id].voting_end_height;
        let votes = vec![
            s.sign(
                0,
                Action::Vote {
                    proposal: id,
                    choice: VoteChoice::Yes,
                },
            ),
            s.sign(
                1,
                Action::Vote {
                    proposal: id,
                    choice: VoteChoice::Yes,
                },
            ),
        ];
        s.block(1, "vote", votes);
        let app = LedgerApp::new(s.ledger().clone());
        assert!(
            app.may_propose_at(&removed, end),
            "its block at the tally height is valid"
        );
        assert!(
            !app.may_propose_at(&removed, end + 1),
            "after the tally it would not be"
        );
        assert!(app.may_propose_at(&other, end + 1));
        while s.ledger().height() < end {
            s.block(1, "voting runs out", vec![]);
        }
        let app = LedgerApp::new(s.ledger().clone());
        assert!(
            !s.ledger().state().validators.contains_key(&validator),
            "removed"
        );
        assert!(!app.may_propose_at(&removed, end + 1));
    }
}
