//! What this replica answers from its own state, at once: its status, whether it holds a
//! transaction, and the weights it recorded when each epoch ended.

use super::{queries, Replica};
use crate::raft::{Role, VoteCrypto};
use agora_api::{At, StatusResponse, WeightHistoryResponse, WeightPoint, WEIGHT_HISTORY_EPOCHS};
use agora_core::{Event, Hash32};

/// A Raft role as the API names it.
pub fn role_name(role: Role) -> agora_api::RoleName {
    match role {
        Role::Follower => agora_api::RoleName::Follower,
        Role::PreCandidate => agora_api::RoleName::Precandidate,
        Role::Candidate => agora_api::RoleName::Candidate,
        Role::Leader => agora_api::RoleName::Leader,
    }
}

impl<C: VoteCrypto> Replica<C> {
    pub(super) fn status(&self) -> StatusResponse {
        let ledger = self.app.ledger();
        StatusResponse {
            node: self.raft.id(),
            role: role_name(self.raft.role()),
            term: self.raft.term(),
            leader: self.raft.leader(),
            commit_index: self.raft.commit_index(),
            applied_index: self.raft.applied_index(),
            leader_commit_index: self.raft.leader_commit(),
            last_index: self.raft.last_index(),
            height: ledger.height(),
            state_root: ledger.state_root(),
            chain_id: ledger.chain_id(),
            mempool: self.mempool.len() as u64,
            membership: self
                .raft
                .membership()
                .incoming
                .members
                .iter()
                .map(|(node, member)| agora_api::MemberWeight {
                    node: *node,
                    weight: member.weight,
                })
                .collect(),
            joint: self.raft.membership().is_joint(),
            replay: self.config.replay,
            rejoining: self.raft.is_rejoining(),
            certified_height: ledger.state().globals.certified_height,
            witness: self.is_witness(),
        }
    }

    /// The weights at the last epochs applied, oldest first.
    pub(super) fn weight_history(&self) -> WeightHistoryResponse {
        let ledger = self.app.ledger();
        WeightHistoryResponse {
            points: self.weight_history.iter().cloned().collect(),
            at: At {
                height: ledger.height(),
                state_root: ledger.state_root(),
            },
        }
    }

    /// Whether the transaction `hash` is accepted here and not yet applied: queued, in a
    /// block in flight, or forwarded to the leader.
    pub(super) fn holds(&self, hash: &Hash32) -> bool {
        self.mempool.holds(hash) || self.forwarded.holds(hash)
    }

    /// Records every validator's weights if applying the entry at `index` ended an epoch
    /// (at most [`WEIGHT_HISTORY_EPOCHS`] kept).
    pub(super) fn record_weights(&mut self, index: u64, events: &[Event]) {
        for event in events {
            if let Event::EpochEnded { epoch } = event {
                if self.weight_history.len() == WEIGHT_HISTORY_EPOCHS {
                    self.weight_history.pop_front();
                }
                self.weight_history.push_back(WeightPoint {
                    height: index,
                    epoch: *epoch,
                    weights: queries::weights(self.app.ledger()),
                });
            }
        }
    }
}
