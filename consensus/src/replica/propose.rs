//! The leader's work: when to propose, building a block from the mempool, and proposing a
//! configuration change when the ledger's validators moved.

use super::{raft_config_of, Notice, Replica};
use crate::raft::{MessageBody, Role, VoteCrypto};
use agora_core::Hash32;
use rand::Rng;

impl<C: VoteCrypto> Replica<C> {
    /// Whether the leader proposes a block now: its pipeline is empty and the mempool
    /// is not.
    pub(super) fn takes_a_block_now(&self) -> bool {
        self.proposed_blocks.is_empty()
            && !self.mempool.is_empty()
            && self.raft.role() == Role::Leader
            && !self.config.replay
    }

    /// Leader: batches the mempool into a block on top of its log, or proposes an empty
    /// block when the chain has been idle for the empty-block interval.
    pub(super) fn propose_block(&mut self) {
        let idle = self
            .config
            .empty_block_interval_ticks
            .is_some_and(|interval| self.now.saturating_sub(self.last_block_proposed) >= interval);
        if (self.mempool.is_empty() && !idle)
            || self.proposed_blocks.len() as u64 >= self.config.max_uncommitted_blocks
        {
            return;
        }
        let Some(index) = self.raft.next_proposal_index() else {
            return;
        };
        let ledger = self.app.ledger();
        let txs = self.mempool.take(
            self.config.max_block_txs,
            self.config.max_block_bytes,
            self.now,
            index,
            |sender| ledger.next_nonce(sender),
        );
        if txs.is_empty() && !idle {
            // Only held transactions (waiting for a predecessor): a block could take none,
            // and an empty block now would be followed by another as soon as it commits.
            return;
        }
        let bytes: Vec<Vec<u8>> = txs.iter().map(|tx| tx.bytes.clone()).collect();
        let ids: Vec<Hash32> = txs.iter().map(|tx| tx.hash).collect();
        let randomness: [u8; 32] = self.rng.random();
        let certificates = self.certificates_for(self.raft.log(), index);
        let Some(payload) = self.app.build_block(
            self.raft.log(),
            index,
            &self.key,
            (bytes, &ids, certificates),
            randomness,
        ) else {
            self.mempool.restore(txs, self.now);
            return;
        };
        #[cfg(any(test, feature = "inject-bugs"))]
        let speculative = payload.clone();
        match self.raft.propose(payload) {
            Ok(index) => {
                self.verifier.remember_tx_ids(index, self.raft.term(), ids);
                self.proposed_blocks.push_back(index);
                self.last_block_proposed = self.now;
                self.counters.blocks_proposed += 1;
                #[cfg(any(test, feature = "inject-bugs"))]
                if self.bugs.acknowledge_on_propose {
                    self.acknowledge_speculatively(index, speculative);
                }
            }
            Err(_) => self.mempool.restore(txs, self.now),
        }
    }

    /// The injected bug: apply a just-proposed block to a copy of the ledger and answer
    /// its waiters from that, before anything is durable.
    #[cfg(any(test, feature = "inject-bugs"))]
    fn acknowledge_speculatively(&mut self, index: u64, payload: Vec<u8>) {
        if self.raft.applied_index() + 1 != index {
            return;
        }
        let mut copy = self.app.clone();
        let entry = crate::raft::LogEntry {
            index,
            term: self.raft.term(),
            data: crate::raft::EntryData::Normal(payload.into()),
        };
        if let Ok(outcome) = copy.apply_entry(&entry, &self.verifier) {
            self.notify_waiters(index, &outcome.receipts);
        }
    }

    /// Leader: when the ledger's validators or weights differ from Raft's configuration,
    /// propose the joint change.
    pub(super) fn reconfigure(&mut self) {
        let target = raft_config_of(self.app.ledger().target_config());
        if target != self.raft.membership().incoming
            && !self.raft.config_change_in_flight()
            && target.validate().is_ok()
        {
            if let Ok(index) = self.raft.propose_config(target) {
                self.pending.notices.push(Notice::Reconfiguring { index });
            }
        }
    }

    /// Leader: its appends go out before its own write (see [`super::Actions::early`]),
    /// unless the commit index moved during this batch's ready handling. Everything before
    /// this batch is durable (the executor finished those writes before giving the replica
    /// new inputs), and a commit decided on receiving acknowledgements counts this node's
    /// entries only as far as they were durable; a commit that moved while this batch's
    /// `Ready`s were advanced may count entries only this batch writes (a leader whose own
    /// weight is a quorum commits alone), and an append carrying it waits for the write.
    pub(super) fn send_appends_early(&mut self, durable_commit: u64) {
        if self.raft.role() != Role::Leader || self.raft.commit_index() != durable_commit {
            return;
        }
        let (early, late): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending.messages)
            .into_iter()
            .partition(|message| {
                message.from == self.raft.id()
                    && message.term == self.raft.term()
                    && matches!(message.body, MessageBody::AppendEntries { .. })
            });
        self.pending.early = early;
        self.pending.messages = late;
    }
}
