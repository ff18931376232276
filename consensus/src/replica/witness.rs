//! A witness replica: it keeps the Raft log and votes, but does not execute the ledger,
//! serves no reads or transactions, signs no certificate and needs no state snapshot. Its
//! ledger stays at the genesis; it compacts its log behind what a quorum of the full
//! members holds (see `raft::witness`).

use super::{Replica, Request, Write};
use crate::raft::{Snapshot, VoteCrypto};
use agora_api::ApiError;

/// The answer to any request but `Status` of a replica that does not execute the ledger:
/// a witness, or a former witness whose ledger lags its log.
pub(super) fn witness_refusal(request: &Request, witness: bool) -> Option<ApiError> {
    (!matches!(request, Request::Status)).then(|| {
        let text = if witness {
            "this node is a witness: it keeps the log and votes, but does not execute the ledger; send reads and transactions to a full member"
        } else {
            "this node was a witness and did not execute the ledger, so its state lags its log; send reads and transactions to a full member (to serve them itself, restart it with an empty data directory)"
        };
        ApiError::new(421, "witness", text)
    })
}

impl<C: VoteCrypto> Replica<C> {
    /// Whether this replica is a witness in the configuration in force.
    pub fn is_witness(&self) -> bool {
        self.raft.is_witness()
    }

    /// Whether this replica executes the log: its ledger holds everything its log has
    /// applied. A witness's does not, nor a former witness's (it skipped entries, and
    /// governance then removed it, or removed it and made it a validator): it cannot
    /// execute entries on a ledger that skipped some. Such a replica keeps voting and
    /// keeping the log, but serves nothing, applies nothing and never leads, until a
    /// leader sends it a full snapshot; an empty data directory makes it a full member
    /// again (it rejoins as a member that lost its disk, by snapshot).
    pub fn executes(&self) -> bool {
        !self.is_witness() && !self.unexecuted
    }

    /// A full member or outsider that does not execute the log (see [`Self::executes`]):
    /// it stands aside in the core.
    pub fn is_former_witness(&self) -> bool {
        !self.is_witness() && self.unexecuted
    }

    /// Witness: a snapshot from the leader carries its metadata only; nothing to restore.
    pub(super) fn witness_install(&mut self, snapshot: &Snapshot) {
        self.unexecuted = true;
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
