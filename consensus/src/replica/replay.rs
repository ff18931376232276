//! Replay mode: a client (`agora vectors check --node`) appends a test vector's entries at
//! the vector's own indexes, through the leader, and is answered with what each produced.

use super::{Answer, Replica, RequestId};
use crate::raft::{EntryData, LogEntry, Role, VoteCrypto};
use agora_api::{ApiError, ReplayResponse};
use agora_core::block::{Entry, EntryPayload};
use agora_core::Outcome;
use std::collections::BTreeMap;

/// Clients waiting for a replayed entry to apply: index -> (the payload each replayed,
/// request).
#[derive(Default)]
pub(super) struct Replays {
    by_index: BTreeMap<u64, Vec<(EntryData, RequestId)>>,
    count: usize,
}

impl<C: VoteCrypto> Replica<C> {
    pub(super) fn replay(&mut self, id: RequestId, entry: Entry) {
        match self.append_replayed(&entry) {
            Ok(data) => {
                self.replays
                    .by_index
                    .entry(entry.index)
                    .or_default()
                    .push((data, id));
                self.replays.count += 1;
            }
            Err(error) => self.reply(id, Err(error)),
        }
    }

    /// Appends `entry` at its index (or, when a retry finds it there already, leaves it);
    /// the caller then waits for it to apply. Refuses gaps, conflicts and membership
    /// entries.
    fn append_replayed(&mut self, entry: &Entry) -> Result<EntryData, ApiError> {
        if !self.config.replay {
            return Err(ApiError::new(404, "not_replay_mode", "this node is not a replay node: start it with replay = true (agora-node devnet --vector FILE)"));
        }
        let data =
            match &entry.payload {
                EntryPayload::Noop => EntryData::Noop,
                EntryPayload::Block(bytes) => EntryData::Normal(std::sync::Arc::new(bytes.clone())),
                EntryPayload::Membership(_) => return Err(ApiError::new(
                    400,
                    "membership_entry",
                    "membership entries cannot be replayed: a cluster's configuration is its own",
                )),
            };
        if self.raft.role() != Role::Leader {
            let leader = self
                .raft
                .leader()
                .map(|l| l.to_string())
                .unwrap_or_default();
            return Err(ApiError::new(
                421,
                "not_leader",
                format!("replay to the leader ({leader})"),
            ));
        }
        if self.replays.count >= self.config.max_replay_waiters {
            return Err(ApiError::busy("too many replays are waiting; retry later"));
        }
        let last = self.raft.last_index();
        if entry.index <= self.raft.applied_index() {
            return Err(ApiError::new(
                409,
                "already_applied",
                format!(
                    "index {} is applied already; read it at /v1/blocks/{}",
                    entry.index, entry.index
                ),
            ));
        }
        if entry.index > last + 1 {
            return Err(ApiError::new(
                409,
                "gap",
                format!("the log ends at {last}; replay entry {} first", last + 1),
            ));
        }
        if entry.index == last + 1 {
            let proposed = match &data {
                EntryData::Normal(bytes) => self.raft.propose(bytes.to_vec()),
                _ => self.raft.propose_noop(),
            };
            if let Err(error) = proposed {
                return Err(ApiError::busy(format!("not appended: {error}")));
            }
        }
        Ok(data)
    }

    /// Answers the clients waiting for `entry`'s index.
    pub(super) fn answer_replays(&mut self, entry: &LogEntry, outcome: &Outcome) {
        let waiting = self
            .replays
            .by_index
            .remove(&entry.index)
            .unwrap_or_default();
        self.replays.count -= waiting.len();
        for (wanted, id) in waiting {
            let answer = if wanted == entry.data {
                Ok(Answer::Replayed(ReplayResponse {
                    index: entry.index,
                    state_root: outcome.state_root,
                    receipts: outcome.receipts.clone(),
                    events: outcome.events.clone(),
                }))
            } else {
                Err(ApiError::new(
                    409,
                    "conflict",
                    format!("another entry was committed at index {}", entry.index),
                ))
            };
            self.reply(id, answer);
        }
    }

    /// The entry may still commit under the next leader; the client retries there and is
    /// told what happened.
    pub(super) fn fail_replays(&mut self, message: &str) {
        if self.replays.count == 0 {
            return;
        }
        let waiting = std::mem::take(&mut self.replays.by_index);
        self.replays.count = 0;
        for (_, id) in waiting.into_values().flatten() {
            self.reply(id, Err(ApiError::busy(message)));
        }
    }
}
