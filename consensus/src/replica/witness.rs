//! A witness replica: it keeps the Raft log and votes, but does not execute the ledger,
//! serves no reads or transactions, signs no certificate and needs no state snapshot. Its
//! ledger stays at the genesis; it compacts its log behind what a quorum of the full
//! members holds (see `raft::witness`).

use super::{Replica, Request, Write};
use crate::raft::{Snapshot, VoteCrypto};
use agora_api::ApiError;

/// A witness's answer to any request but `Status`.
pub(super) fn witness_refusal(request: &Request) -> Option<ApiError> {
    (!matches!(request, Request::Status)).then(|| {
        ApiError::new(
            421,
            "witness",
            "this node is a witness: it keeps the log and votes, but does not execute the ledger; send reads and transactions to a full member",
        )
    })
}

impl<C: VoteCrypto> Replica<C> {
    /// Whether this replica is a witness in the configuration in force.
    pub fn is_witness(&self) -> bool {
        self.raft.is_witness()
    }

    /// Witness: a snapshot from the leader carries its metadata only; nothing to restore.
    pub(super) fn witness_install(&mut self, snapshot: &Snapshot) {
        self.counters.snapshots_installed += 1;
        self.pending.notices.push(super::Notice::SnapshotInstalled {
            index: snapshot.meta.index,
        });
    }

    /// Witness: forget the log up to what a quorum of the full members holds, once that
    /// is a snapshot interval past the last point.
    pub(super) fn witness_compact(&mut self) {
        let index = self
            .raft
            .witness_forgettable()
            .min(self.raft.applied_index());
        if index < self.raft.log().snapshot().index + self.config.snapshot_interval_entries {
            return;
        }
        self.raft.compact(index, [0; 32], Vec::new());
        let snapshot = self.raft.latest_snapshot().expect("just taken").clone();
        self.pending
            .notices
            .push(super::Notice::SnapshotTaken { index, bytes: 0 });
        self.pending.writes.push(Write::Log {
            hard_state: None,
            snapshot: Some(snapshot),
            entries: Vec::new(),
        });
    }
}
