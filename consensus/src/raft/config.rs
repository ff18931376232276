//! Configurations: who votes, with what weight, under which key.

use crate::raft::quorum;
use crate::raft::types::NodeId;
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, BTreeSet};

/// A member of a configuration.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Member {
    /// Consensus weight; 0 makes a learner (replicates, never votes or counts).
    pub weight: u64,
    /// The canonical bytes of its ML-DSA validator key; votes are verified against it.
    pub public_key: Vec<u8>,
}

/// A configuration: `NodeId -> (weight, key)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Config {
    /// The members, by id.
    pub members: BTreeMap<NodeId, Member>,
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No member has weight.
    #[error("a configuration needs at least one member with weight above 0")]
    NoVoters,
    /// The weights would overflow.
    #[error("total weight overflows u64")]
    Overflow,
}

impl Config {
    /// Checks that the configuration can decide anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let total = self
            .members
            .values()
            .try_fold(0u64, |sum, m| sum.checked_add(m.weight));
        match total {
            None => Err(ConfigError::Overflow),
            Some(0) => Err(ConfigError::NoVoters),
            Some(_) => Ok(()),
        }
    }

    /// Sum of all weights.
    pub fn total_weight(&self) -> u64 {
        self.members.values().map(|m| m.weight).sum()
    }

    /// The weight of `id` (0 if absent).
    pub fn weight(&self, id: &NodeId) -> u64 {
        self.members.get(id).map_or(0, |m| m.weight)
    }

    /// Members with weight above zero.
    pub fn voters(&self) -> impl Iterator<Item = (&NodeId, u64)> {
        self.members
            .iter()
            .filter(|(_, m)| m.weight > 0)
            .map(|(id, m)| (id, m.weight))
    }

    /// Whether `acks` hold strictly more than half of the weight.
    pub fn is_quorum(&self, acks: &BTreeSet<NodeId>) -> bool {
        quorum::is_quorum(self, |id| acks.contains(id))
    }
}

/// The configuration in force: one, or two during joint consensus.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Membership {
    /// The configuration being entered (or the only one).
    pub incoming: Config,
    /// During joint consensus, the configuration being left.
    pub outgoing: Option<Config>,
}

impl Membership {
    /// A membership of one configuration.
    pub fn single(config: Config) -> Membership {
        Membership {
            incoming: config,
            outgoing: None,
        }
    }

    /// Whether a joint change is under way.
    pub fn is_joint(&self) -> bool {
        self.outgoing.is_some()
    }

    /// Whether `id` belongs to either configuration.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.incoming.members.contains_key(id)
            || self
                .outgoing
                .as_ref()
                .is_some_and(|c| c.members.contains_key(id))
    }

    /// Whether `id` votes in either configuration.
    pub fn is_voter(&self, id: &NodeId) -> bool {
        self.incoming.weight(id) > 0 || self.outgoing.as_ref().is_some_and(|c| c.weight(id) > 0)
    }

    /// The validator key of `id`, from the incoming configuration first.
    pub fn public_key(&self, id: &NodeId) -> Option<&[u8]> {
        self.incoming
            .members
            .get(id)
            .or_else(|| self.outgoing.as_ref().and_then(|c| c.members.get(id)))
            .map(|m| m.public_key.as_slice())
    }

    /// Every member of either configuration.
    pub fn all_members(&self) -> BTreeSet<NodeId> {
        let mut ids: BTreeSet<NodeId> = self.incoming.members.keys().copied().collect();
        if let Some(old) = &self.outgoing {
            ids.extend(old.members.keys().copied());
        }
        ids
    }

    /// Whether the nodes for which `acked` is true form a quorum of every configuration
    /// in force (both, during joint consensus).
    pub fn is_quorum(&self, acked: impl Fn(&NodeId) -> bool) -> bool {
        quorum::is_quorum(&self.incoming, &acked)
            && self
                .outgoing
                .as_ref()
                .is_none_or(|old| quorum::is_quorum(old, &acked))
    }

    /// The highest index that a quorum of every configuration has matched.
    pub fn committed_index(&self, matched: impl Fn(&NodeId) -> u64) -> u64 {
        let incoming = quorum::committed_index(&self.incoming, &matched);
        match &self.outgoing {
            Some(old) => incoming.min(quorum::committed_index(old, &matched)),
            None => incoming,
        }
    }

    /// The outcome of an election given the votes so far.
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> quorum::VoteResult {
        let incoming = quorum::vote_result(&self.incoming, votes);
        match &self.outgoing {
            None => incoming,
            Some(old) => quorum::combine(incoming, quorum::vote_result(old, votes)),
        }
    }
}
