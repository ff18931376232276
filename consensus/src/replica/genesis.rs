//! Where a replica starts: the Raft configuration a ledger asks for, and the snapshot of
//! the genesis that a node with empty storage starts from.

use crate::raft::{Config, Member, Membership, Snapshot, SnapshotMeta};
use agora_core::outcome::TargetConfig;
use agora_core::Ledger;

/// The Raft configuration a ledger target configuration asks for: its validators, and
/// its witnesses as witnesses. With witnesses, every member's peer goes with it (a witness
/// learns identities from the configuration, not from the ledger it does not execute).
pub fn raft_config_of(target: &TargetConfig) -> Config {
    let with_peers = !target.witnesses.is_empty();
    Config {
        members: target
            .members
            .iter()
            .chain(&target.witnesses)
            .map(|m| {
                (
                    m.validator,
                    Member {
                        weight: m.weight,
                        public_key: borsh::to_vec(&m.public_key).expect("in memory"),
                        peer: if with_peers {
                            m.peer.clone()
                        } else {
                            Vec::new()
                        },
                    },
                )
            })
            .collect(),
        witnesses: target.witnesses.iter().map(|w| w.validator).collect(),
    }
}

/// The snapshot a node with empty storage starts from: the genesis, at index 0.
pub fn genesis_snapshot(genesis: &Ledger) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index: 0,
            term: 0,
            membership: Membership::single(raft_config_of(genesis.target_config())),
            state_root: genesis.state_root().0,
        },
        data: std::sync::Arc::new(Vec::new()),
    }
}
