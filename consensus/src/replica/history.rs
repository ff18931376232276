//! Proofs at a past height: the state at the nearest stored base at or below it (the
//! genesis or the latest snapshot) is rebuilt, the archived entries up to the height
//! replayed (each root checked against the archive), and the value proved. The replica
//! decides whether and from where ([`HistoryJob`]); the executor reads the archive and
//! runs the job off its event loop.

use super::{queries, Answer, Replica, RequestId};
use crate::raft::VoteCrypto;
use agora_api::{ApiError, ProofResponse};
use agora_core::block::{Entry, EntryPayload};
use agora_core::{Hash32, Ledger, StateKey};
use std::sync::Arc;

/// Past-height proofs replay at most this many archived entries.
pub const MAX_PROOF_REPLAY: u64 = 2_000;

/// Where a past-height proof starts.
#[derive(Clone, Debug)]
enum Base {
    Genesis(Box<Ledger>),
    Snapshot(Arc<Vec<u8>>, Hash32),
}

/// One archived height, as the executor reads it back.
#[derive(Clone, Debug)]
pub struct ArchivedEntry {
    /// The height.
    pub height: u64,
    /// The block's canonical bytes; none for a no-op or configuration entry.
    pub block: Option<Vec<u8>>,
    /// The state root recorded after it.
    pub state_root: Hash32,
}

/// A past-height proof to build: read the archive for [`HistoryJob::heights`], then
/// [`HistoryJob::run`].
#[derive(Clone, Debug)]
pub struct HistoryJob {
    base: Base,
    base_index: u64,
    height: u64,
    key: StateKey,
}

impl HistoryJob {
    /// The archived heights the job replays.
    pub fn heights(&self) -> std::ops::RangeInclusive<u64> {
        self.base_index + 1..=self.height
    }

    /// Rebuilds the state at the height from `archive` (one entry per height of
    /// [`HistoryJob::heights`], in order) and proves the key there.
    pub fn run(self, archive: Vec<ArchivedEntry>) -> Result<ProofResponse, ApiError> {
        let mut expected = self.heights();
        let mut ledger = match self.base {
            Base::Genesis(ledger) => *ledger,
            Base::Snapshot(data, root) => Ledger::restore(&data, &root)
                .map_err(|e| ApiError::new(500, "internal", format!("snapshot: {e}")))?,
        };
        for archived in archive {
            if expected.next() != Some(archived.height) {
                return Err(ApiError::new(
                    500,
                    "internal",
                    "the archive read back out of order",
                ));
            }
            let payload = match archived.block {
                Some(bytes) => EntryPayload::Block(bytes),
                // No-ops and membership entries only advance the height.
                None => EntryPayload::Noop,
            };
            let h = archived.height;
            let outcome = ledger
                .apply(&Entry {
                    index: h,
                    term: 0,
                    payload,
                })
                .map_err(|e| {
                    ApiError::new(500, "internal", format!("replaying height {h}: {e}"))
                })?;
            if outcome.state_root != archived.state_root {
                return Err(ApiError::new(
                    500,
                    "archive_mismatch",
                    format!("replaying the archive gives another root at height {h}; this node's archive is damaged"),
                ));
            }
        }
        if expected.next().is_some() {
            return Err(ApiError::new(
                500,
                "internal",
                "the archive read back incomplete",
            ));
        }
        match queries::answer(&ledger, &queries::Query::Proof(self.key))? {
            Answer::Proof(proof) => Ok(*proof),
            _ => unreachable!("a proof query answers with a proof"),
        }
    }
}

impl<C: VoteCrypto> Replica<C> {
    /// Answers at once for the current height, refuses future and too-distant heights,
    /// and otherwise hands a [`HistoryJob`] to the executor.
    pub(super) fn proof_at(&mut self, id: RequestId, key: StateKey, height: u64) {
        let current = self.app.ledger().height();
        if height >= current {
            let answer = if height == current {
                queries::answer(self.app.ledger(), &queries::Query::Proof(key))
            } else {
                Err(ApiError::not_found(format!(
                    "height {height} is not applied here yet (at {current})"
                )))
            };
            return self.reply(id, answer);
        }
        // From the snapshot if it is at or below the height, else from the genesis (a node
        // that caught up by snapshot lacks the archive for that and says so).
        let (base_index, base) = match self.raft.latest_snapshot() {
            Some(s) if s.meta.index > 0 && s.meta.index <= height => (
                s.meta.index,
                Base::Snapshot(s.data.clone(), Hash32(s.meta.state_root)),
            ),
            _ => (0, Base::Genesis(Box::new(self.genesis.clone()))),
        };
        if height - base_index > MAX_PROOF_REPLAY {
            let error = ApiError::new(
                404,
                "too_far_back",
                format!(
                    "a proof at height {height} needs {} archived entries replayed from height {base_index}; this node serves past proofs within {MAX_PROOF_REPLAY} entries of a stored state",
                    height - base_index
                ),
            );
            return self.reply(id, Err(error));
        }
        self.pending.jobs.push((
            id,
            HistoryJob {
                base,
                base_index,
                height,
                key,
            },
        ));
    }
}
