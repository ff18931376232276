//! Reads: linearizable ones wait for Raft's ReadIndex and for the ledger to apply that far;
//! local ones are answered from this replica's state at once. A submission refused for a
//! reason fresher state could undo is checked again the same way (see `admission`).

use super::{queries, Query, Replica, RequestId};
use crate::raft::VoteCrypto;
use agora_api::{ApiError, Consistency};
use std::collections::BTreeMap;

/// What waits for a confirmed index.
enum Waiting {
    /// A linearizable query.
    Query(Query),
    /// A submission to check again on fresh state.
    Recheck { bytes: Vec<u8>, wait: bool },
}

struct PendingRead {
    what: Waiting,
    /// The index confirmed by ReadIndex, once it is.
    index: Option<u64>,
    /// The tick after which the client is told to retry.
    deadline: u64,
}

/// Reads waiting, by request id (which is also the ReadIndex context).
#[derive(Default)]
pub(super) struct Reads {
    pending: BTreeMap<RequestId, PendingRead>,
    /// A leader became known: unconfirmed reads are asked of it once the Ready that told
    /// of it is advanced.
    reask: bool,
}

impl Reads {
    /// ReadIndex confirmed the read whose context is `context` at `index`.
    pub(super) fn confirm(&mut self, context: &[u8], index: u64) {
        let Ok(id) = <[u8; 8]>::try_from(context).map(u64::from_le_bytes) else {
            return;
        };
        if let Some(read) = self.pending.get_mut(&id) {
            read.index = Some(index);
        }
    }

    fn remove_where(
        &mut self,
        keep: impl Fn(&PendingRead) -> bool,
    ) -> Vec<(RequestId, PendingRead)> {
        let (gone, kept): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(_, r)| !keep(r));
        self.pending = kept;
        gone.into_iter().collect()
    }
}

impl<C: VoteCrypto> Replica<C> {
    pub(super) fn query(&mut self, id: RequestId, query: Query, consistency: Consistency) {
        if consistency == Consistency::Local {
            let answer = queries::answer(self.app.ledger(), &query);
            return self.reply(id, answer);
        }
        self.read_linearizably(id, Waiting::Query(query));
    }

    /// Checks submission `id` again once this replica has applied everything the leader
    /// had committed when asked (a linearizable read of the state admission uses).
    pub(super) fn recheck_when_fresh(&mut self, id: RequestId, bytes: Vec<u8>, wait: bool) {
        self.read_linearizably(id, Waiting::Recheck { bytes, wait });
    }

    fn read_linearizably(&mut self, id: RequestId, what: Waiting) {
        if self.reads.pending.len() >= self.config.max_pending_reads {
            return self.reply(
                id,
                Err(ApiError::busy("too many reads are waiting; retry later")),
            );
        }
        match self.ask_to_confirm(id) {
            Ok(()) => {
                let deadline = self.now + self.config.read_timeout_ticks;
                self.reads.pending.insert(
                    id,
                    PendingRead {
                        what,
                        index: None,
                        deadline,
                    },
                );
            }
            Err(error) => self.reply(id, Err(error)),
        }
    }

    /// Asks Raft's ReadIndex to confirm read `id` (its id is the context).
    fn ask_to_confirm(&mut self, id: RequestId) -> Result<(), ApiError> {
        self.raft
            .read_index(id.to_le_bytes().to_vec())
            .map_err(|error| {
                ApiError::busy(format!(
                    "cannot confirm a linearizable read: {error}; retry, or pass consistency=local"
                ))
            })
    }

    /// Serves the confirmed reads whose index is applied.
    pub(super) fn serve_reads(&mut self) {
        let applied = self.raft.applied_index();
        for (id, read) in self
            .reads
            .remove_where(|r| r.index.is_none_or(|index| index > applied))
        {
            match read.what {
                Waiting::Query(query) => {
                    let answer = queries::answer(self.app.ledger(), &query);
                    self.reply(id, answer);
                }
                Waiting::Recheck { bytes, wait } => {
                    self.submit_checked(id, bytes, None, wait, true)
                }
            }
        }
    }

    pub(super) fn expire_reads(&mut self) {
        let now = self.now;
        for (id, _) in self.reads.remove_where(|r| r.deadline > now) {
            self.reply(
                id,
                Err(ApiError::busy(
                    "the read could not be confirmed in time (no leader?); retry",
                )),
            );
        }
    }

    /// The leader changed: reads not yet confirmed were asked of one that may be gone.
    /// Once a leader is known they are asked of it (see [`Replica::reask_reads`]); until
    /// then, and until their deadline, they wait.
    pub(super) fn reask_reads_when_led(&mut self, leader_known: bool) {
        self.reads.reask |= leader_known;
    }

    /// Asks the leader now known to confirm every read not yet confirmed, and the client
    /// waits for that answer instead of being told to retry (`bench/failover.sh` found
    /// the CLI's retry pause, 100 ms, in every fail-over: its first read had gone to the
    /// killed leader). An answer the old leader still sends is as good: it confirmed its
    /// leadership after the read began. Called between Readys (Raft takes no request
    /// while one is outstanding).
    pub(super) fn reask_reads(&mut self) {
        if !std::mem::take(&mut self.reads.reask) {
            return;
        }
        let unconfirmed: Vec<RequestId> = self
            .reads
            .pending
            .iter()
            .filter(|(_, read)| read.index.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in unconfirmed {
            if let Err(error) = self.ask_to_confirm(id) {
                self.reads.pending.remove(&id);
                self.reply(id, Err(error));
            }
        }
    }
}
