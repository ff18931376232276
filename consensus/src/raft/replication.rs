//! Log replication (§5.3): batched, pipelined AppendEntries with a bounded window,
//! fast backtracking on conflicts, heartbeats, commitment by weighted quorum of the
//! current term only (§5.4.2), and snapshots sent in bounded chunks (§7).

use crate::raft::core::{Raft, Regression};
use crate::raft::crypto::VoteCrypto;
use crate::raft::message::MessageBody;
use crate::raft::progress::ProgressState;
use crate::raft::types::{
    ConfigChange, EntryData, Index, LogEntry, NodeId, Role, Snapshot, SnapshotMeta, Term,
};
use std::sync::Arc;

impl<C: VoteCrypto> Raft<C> {
    pub(crate) fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for id in peers {
            self.send_append(id);
        }
    }

    /// Sends the next batch to `to` unless its window is full; a follower whose next
    /// entry was compacted away gets the snapshot instead.
    pub(crate) fn send_append(&mut self, to: NodeId) {
        self.send_append_to(to, false);
    }

    /// As [`Raft::send_append`]; with `send_if_empty`, a streaming follower with nothing
    /// new still gets an empty append, which carries the commit index.
    fn send_append_to(&mut self, to: NodeId, send_if_empty: bool) {
        let max_inflight = self.cfg.max_inflight_messages;
        let Some(progress) = self.progress.get(&to) else {
            return;
        };
        if progress.is_paused(max_inflight) {
            return;
        }
        let prev_index = progress.next_index - 1;
        let Some(prev_term) = self.log.term_at(prev_index) else {
            self.start_snapshot(to);
            return;
        };
        let entries = self
            .log
            .entries_from(progress.next_index, self.cfg.max_message_entry_bytes);
        let last = entries.last().map(|e| e.index);
        let state = progress.state.clone();
        if last.is_none() && state == ProgressState::Replicate && !send_if_empty {
            return;
        }
        let commit = self.log.committed();
        self.send(
            to,
            MessageBody::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
            },
        );
        let progress = self.progress.get_mut(&to).expect("checked");
        match (state, last) {
            (ProgressState::Replicate, Some(last)) => {
                progress.next_index = last + 1;
                progress.inflight.push_back(last);
            }
            (ProgressState::Replicate, None) => {}
            _ => progress.probe_sent = true,
        }
    }

    pub(crate) fn broadcast_heartbeat(&mut self) {
        self.retire_leaving();
        let read_seq = self.reads.next_round(self.now);
        let peers: Vec<(NodeId, Index)> = self
            .progress
            .iter()
            .map(|(id, p)| (*id, p.match_index))
            .collect();
        for (id, matched) in peers {
            let commit = self.log.committed().min(matched);
            self.note_leaving_heartbeat(id, commit);
            self.send(id, MessageBody::Heartbeat { commit, read_seq });
        }
        self.send_forgettable();
    }

    pub(crate) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<LogEntry>,
        commit: Index,
    ) {
        self.accept_leader(from);
        self.heard_commit(commit);
        let boot = self.boot;
        let reply = |success, match_index, conflict_index, conflict_term| {
            MessageBody::AppendEntriesResponse {
                success,
                match_index,
                conflict_index,
                conflict_term,
                boot,
            }
        };
        if prev_index < self.log.committed() {
            // Everything up to our commit index matches any leader's log.
            let committed = self.log.committed();
            self.send(from, reply(true, committed, 0, None));
            return;
        }
        let matches = self.log.term_at(prev_index) == Some(prev_term);
        #[cfg(any(test, feature = "inject-bugs"))]
        let matches = matches
            || (self.cfg.bugs.skip_log_consistency_check && prev_index <= self.log.last_index());
        if !matches {
            let (conflict_index, conflict_term) = self.conflict_hint(prev_index);
            self.send(
                from,
                reply(false, prev_index, conflict_index, conflict_term),
            );
            return;
        }
        let last_new = prev_index + entries.len() as u64;
        #[cfg(any(test, feature = "inject-bugs"))]
        let entries = if self.cfg.bugs.skip_log_consistency_check {
            // The broken follower overwrites whatever it had after prev_index.
            if prev_index < self.log.last_index() && prev_index >= self.log.committed() {
                self.untrack_config_from(prev_index + 1);
                self.log.truncate_from(prev_index + 1);
            }
            entries
        } else {
            entries
        };
        let taken = self.take_entries(&entries);
        assert!(
            taken.is_some(),
            "a leader's append conflicts with a committed entry"
        );
        self.verified = (self.term, last_new);
        self.log.commit_to(commit.min(last_new));
        self.send(from, reply(true, last_new, 0, None));
    }

    /// Where a log that does not hold the entry at `prev_index` with the sender's term
    /// could match: the first index of its conflicting term there, or one past its end.
    pub(crate) fn conflict_hint(&self, prev_index: Index) -> (Index, Option<Term>) {
        match self.log.term_at(prev_index) {
            None => (self.log.last_index() + 1, None),
            Some(term) => (self.log.first_index_of_term(prev_index, term), Some(term)),
        }
    }

    /// The sender's side: the index to send from after a rejection of `rejected` with
    /// those hints (skipping the receiver's whole conflicting term, or to its log's end).
    pub(crate) fn resume_from(
        &self,
        rejected: Index,
        conflict_index: Index,
        conflict_term: Option<Term>,
    ) -> Index {
        conflict_term
            .and_then(|term| self.log.last_index_of_term(term, rejected))
            .map_or(conflict_index, |index| index + 1)
    }

    /// Takes `entries`, which continue an entry this log holds: drops what conflicts with
    /// them and appends what it lacks. `None`, and nothing changes, if that would drop a
    /// committed entry; else whether anything changed.
    pub(crate) fn take_entries(&mut self, entries: &[LogEntry]) -> Option<bool> {
        let Some(position) = self.log.find_conflict(entries) else {
            return Some(false);
        };
        let fresh: Vec<LogEntry> = entries[position..].to_vec();
        let first = fresh[0].index;
        if first <= self.log.committed() {
            return None;
        }
        if first <= self.log.last_index() {
            self.untrack_config_from(first);
            self.log.truncate_from(first);
        }
        self.track_config(&fresh);
        self.log.append(fresh);
        Some(true)
    }

    /// The leader of this term has committed at least `index`.
    fn heard_commit(&mut self, index: Index) {
        let known = self.of_this_term(self.leader_commit);
        self.leader_commit = (self.term, known.max(index));
    }

    fn accept_leader(&mut self, from: NodeId) {
        if self.role != Role::Follower {
            self.become_follower(self.term, Some(from));
        }
        self.leader = Some(from);
        self.election_elapsed = 0;
        if self.leader_lost {
            // A false alarm (the link came back): the usual timeout again.
            self.reset_election_timeout();
        }
    }

    pub(crate) fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: Index,
        conflict_index: Index,
        conflict_term: Option<Term>,
        boot: u64,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let last_index = self.log.last_index();
        let Some(progress) = self.progress.get_mut(&from) else {
            return;
        };
        progress.recent_active = true;
        if !success
            && conflict_index <= progress.match_index
            && progress.match_boot.is_some_and(|acked_by| acked_by != boot)
        {
            // Another process than the one that acknowledged `match_index` says its log
            // ends (or differs) before it: the follower lost durable state (a wiped or
            // restored data directory). No reordering explains it, so it is not ignored as
            // stale: replication starts over from what it says it has, by snapshot if the
            // log no longer reaches back that far.
            let acknowledged = progress.match_index;
            progress.match_index = 0;
            progress.match_boot = None;
            progress.become_probe();
            progress.next_index = conflict_index.max(1);
            self.counters.follower_regressions += 1;
            self.regressions.push(Regression {
                node: from,
                acknowledged,
                has_before: conflict_index,
            });
            self.send_append(from);
            return;
        }
        if !success {
            // `match_index` carries the rejected prev_index. Fast backtracking: skip the
            // follower's whole conflicting term, or to its log's end, in one step.
            let rejected = match_index;
            let stale = rejected <= progress.match_index
                || (progress.state == ProgressState::Probe && rejected + 1 != progress.next_index);
            if stale {
                return;
            }
            let hint = self.resume_from(rejected, conflict_index, conflict_term);
            let progress = self.progress.get_mut(&from).expect("present");
            progress.become_probe();
            progress.next_index = hint.clamp(progress.match_index + 1, rejected);
            self.send_append(from);
            return;
        }
        if match_index > last_index {
            return; // from a log we no longer have (impossible unless messages are forged)
        }
        progress.match_boot = Some(boot);
        let advanced = progress.update_match(match_index);
        if advanced {
            progress.last_progress_tick = self.now;
        }
        match progress.state {
            ProgressState::Probe => {
                progress.become_replicate();
                progress.last_progress_tick = self.now;
            }
            ProgressState::Snapshot { index, .. } if progress.match_index >= index => {
                progress.become_probe()
            }
            _ => {}
        }
        if advanced && self.maybe_commit() {
            self.broadcast_append_commit();
        }
        self.send_append(from);
        if let Some((target, _)) = self.transfer {
            if target == from
                && self
                    .progress
                    .get(&from)
                    .is_some_and(|p| p.match_index == self.log.last_index())
            {
                self.send(from, MessageBody::TimeoutNow);
            }
        }
    }

    /// After the commit index moved: tell every follower, even those with nothing new to
    /// send (an empty append carries the new commit index).
    pub(crate) fn broadcast_append_commit(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for id in peers {
            self.send_append_to(id, true);
        }
    }

    /// Advances the commit index to what a weighted quorum of every configuration in force
    /// has durably matched, counting only entries of the current term. Returns whether it
    /// moved.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let own = self.log.persisted();
        let id = self.cfg.id;
        let matched = |n: &NodeId| {
            if *n == id {
                own
            } else {
                self.progress.get(n).map_or(0, |p| p.match_index)
            }
        };
        let index = self.membership.committed_index(matched);
        #[cfg(any(test, feature = "inject-bugs"))]
        let index = if self.cfg.bugs.commit_with_minority {
            self.progress
                .values()
                .map(|p| p.match_index)
                .max()
                .unwrap_or(0)
                .max(own)
                .min(self.log.last_index())
        } else {
            index
        };
        if index <= self.log.committed() || self.log.term_at(index) != Some(self.term) {
            return false;
        }
        self.log.commit_to(index);
        self.after_commit();
        true
    }

    fn after_commit(&mut self) {
        self.release_reads_after_commit();
        if self.maybe_leave_joint() {
            return;
        }
        // A leader that is not a voter of the committed configuration steps down.
        if !self.membership.is_joint()
            && !self.membership.is_voter(&self.cfg.id)
            && !self.config_change_in_flight()
        {
            self.become_follower(self.term, None);
        }
    }

    /// Joint consensus, second step: once C(old,new) is committed, the leader appends
    /// C(new). One change at a time: nothing else can start while this runs.
    ///
    /// With witnesses, it first waits until two full members of the incoming configuration
    /// (all, if fewer) hold the joint entry: witnesses may have forgotten, before it,
    /// entries that only two full members held, and leaving may drop one of them (the
    /// simulator found that: a holder voted out, the other's disk lost, and the full
    /// members left could catch up from nobody). During the joint step every forgetting
    /// already counts the incoming full members.
    pub(crate) fn maybe_leave_joint(&mut self) -> bool {
        // The joint entry: the newest configuration entry, or, with none in the log since
        // a snapshot, the snapshot point (the snapshot holds the joint membership).
        let joint = self
            .config_history
            .last()
            .map_or(self.log.snapshot().index, |(index, _)| *index);
        if !self.membership.is_joint() || joint > self.log.committed() {
            return false;
        }
        let (own, id) = (self.log.persisted(), self.cfg.id);
        let held = !self.membership.has_witnesses()
            || self.membership.incoming.full_members_hold(joint, |n| {
                if *n == id {
                    own
                } else {
                    self.progress.get(n).map_or(0, |p| p.match_index)
                }
            });
        if !held {
            return false;
        }
        let new = self.membership.incoming.clone();
        self.append_entry(EntryData::Config(ConfigChange::Final(new)));
        true
    }

    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, commit: Index, read_seq: u64) {
        self.accept_leader(from);
        self.heard_commit(commit);
        let mut last_index = self.log.last_index();
        if self.rejoin.is_some() {
            // The leader caps the commit index at what we acknowledged — in a life we may
            // have forgotten: a restored older log can hold other entries at those
            // indexes. Only what this leader's appends checked in this life counts.
            let verified = self.of_this_term(self.verified);
            last_index = last_index.min(verified.max(self.log.committed()));
        }
        if commit > last_index {
            // The leader sends a commit index capped at what we acknowledged: our log is
            // shorter than that (or not checked that far, rejoining) only if we lost state.
            // Say so, or an idle leader, which sends nothing else, would never repair us.
            self.send(
                from,
                MessageBody::AppendEntriesResponse {
                    success: false,
                    match_index: commit,
                    conflict_index: last_index + 1,
                    conflict_term: None,
                    boot: self.boot,
                },
            );
        }
        self.log.commit_to(commit.min(last_index));
        self.send(from, MessageBody::HeartbeatResponse { read_seq });
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, read_seq: u64) {
        if self.role != Role::Leader {
            return;
        }
        let sent_tick = self.reads.heartbeat_tick(read_seq);
        let Some(progress) = self.progress.get_mut(&from) else {
            return;
        };
        progress.recent_active = true;
        if let Some(tick) = sent_tick {
            progress.acked_heartbeat_tick = progress.acked_heartbeat_tick.max(tick);
        }
        match progress.state {
            ProgressState::Probe => progress.probe_sent = false,
            // A lost chunk is resent from the follower's last acknowledged offset.
            ProgressState::Snapshot { .. } => {}
            // Appends in flight but no progress for two election timeouts: they were lost
            // (a lost append is never answered), so the window would stay full forever.
            ProgressState::Replicate => {
                let stalled = self.now.saturating_sub(progress.last_progress_tick)
                    >= 2 * self.cfg.election_timeout_ticks_min;
                if !progress.inflight.is_empty() && stalled {
                    progress.become_probe();
                    progress.last_progress_tick = self.now;
                }
            }
        }
        let behind = progress.match_index < self.log.last_index();
        let snapshotting = matches!(progress.state, ProgressState::Snapshot { .. });
        if snapshotting {
            self.send_snapshot_chunk(from);
        } else if behind {
            self.send_append(from);
        }
        self.ack_read(from, read_seq);
    }

    fn start_snapshot(&mut self, to: NodeId) {
        if self.leaving.remove(&to).is_some() {
            // A removed member too far behind for the log: a whole snapshot is not worth
            // sending to a node that has left, and would not tell it so (see `leaving`).
            self.progress.remove(&to);
            return;
        }
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        let index = snapshot.meta.index;
        let progress = self.progress.get_mut(&to).expect("present");
        progress.state = ProgressState::Snapshot { index, offset: 0 };
        progress.inflight.clear();
        self.send_snapshot_chunk(to);
    }

    fn send_snapshot_chunk(&mut self, to: NodeId) {
        let Some(snapshot) = self.snapshot.clone() else {
            return;
        };
        let Some(progress) = self.progress.get_mut(&to) else {
            return;
        };
        let ProgressState::Snapshot { index, offset } = progress.state else {
            return;
        };
        if index != snapshot.meta.index {
            // A newer snapshot replaced the one being sent: start over with it.
            progress.state = ProgressState::Snapshot {
                index: snapshot.meta.index,
                offset: 0,
            };
            return self.send_snapshot_chunk(to);
        }
        // A witness does not execute the log: it gets the snapshot's metadata only.
        let data: &[u8] = if self.membership.is_witness(&to) {
            &[]
        } else {
            &snapshot.data
        };
        let total = data.len() as u64;
        let end = (offset + self.cfg.snapshot_chunk_bytes).min(total);
        let chunk = data[offset.min(total) as usize..end as usize].to_vec();
        self.send(
            to,
            MessageBody::InstallSnapshot {
                meta: snapshot.meta.clone(),
                offset,
                total_bytes: total,
                chunk,
            },
        );
    }

    pub(crate) fn handle_snapshot_chunk(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        total: u64,
        chunk: Vec<u8>,
    ) {
        self.accept_leader(from);
        self.heard_commit(meta.index);
        let index = meta.index;
        let reply = |next_offset, done| MessageBody::InstallSnapshotResponse {
            index,
            next_offset,
            done,
        };
        if index <= self.log.committed() {
            // We have all of it already.
            self.incoming_snapshot = None;
            self.send(from, reply(total, true));
            return;
        }
        if total > self.cfg.max_snapshot_bytes {
            self.send(from, reply(0, false));
            return;
        }
        if offset == 0
            && self
                .incoming_snapshot
                .as_ref()
                .is_none_or(|(m, t, _)| *m != meta || *t != total)
        {
            self.incoming_snapshot = Some((meta.clone(), total, Vec::new()));
        }
        let Some((expected_meta, expected_total, buffer)) = &mut self.incoming_snapshot else {
            self.send(from, reply(0, false));
            return;
        };
        if *expected_meta != meta
            || *expected_total != total
            || offset != buffer.len() as u64
            || buffer.len() as u64 + chunk.len() as u64 > total
        {
            let next = if *expected_meta == meta {
                buffer.len() as u64
            } else {
                0
            };
            self.send(from, reply(next, false));
            return;
        }
        buffer.extend_from_slice(&chunk);
        let received = buffer.len() as u64;
        if received < total {
            self.send(from, reply(received, false));
            return;
        }
        let (meta, _, data) = self.incoming_snapshot.take().expect("present");
        self.install_snapshot(Snapshot {
            meta,
            data: Arc::new(data),
        });
        self.send(from, reply(total, true));
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.meta.clone();
        self.verified = (self.term, meta.index);
        self.log.restore(meta.clone());
        self.config_history.clear();
        self.set_membership(meta.membership.clone());
        // Configuration entries kept after the snapshot point still count.
        let kept: Vec<LogEntry> = self.log.entries_from(meta.index + 1, u64::MAX);
        self.track_config(&kept);
        self.pending_install = Some(snapshot);
    }

    pub(crate) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        index: Index,
        next_offset: u64,
        done: bool,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let Some(progress) = self.progress.get_mut(&from) else {
            return;
        };
        progress.recent_active = true;
        let ProgressState::Snapshot { index: sending, .. } = progress.state else {
            return;
        };
        if index != sending {
            return;
        }
        if done {
            progress.update_match(index);
            progress.become_probe();
            self.send_append(from);
        } else {
            progress.state = ProgressState::Snapshot {
                index,
                offset: next_offset,
            };
            self.send_snapshot_chunk(from);
        }
    }
}
