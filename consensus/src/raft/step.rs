//! Messages in: every message from the network passes `step`, which drops what is stale,
//! malformed or unauthenticated, answers what needs an answer, and hands the rest to the
//! election, replication, read and rejoin handlers.

use crate::raft::core::{Raft, Vouched};
use crate::raft::crypto::VoteCrypto;
use crate::raft::message::{Message, MessageBody};
use crate::raft::types::{Index, ReadState, Role, Term};

impl<C: VoteCrypto> Raft<C> {
    /// Handles one message from the network. Malformed, stale, duplicated, reordered or
    /// unauthenticated messages are dropped or answered; none can panic the core.
    pub fn step(&mut self, message: Message) {
        self.assert_no_ready();
        if message.to != self.cfg.id {
            self.counters.dropped_misaddressed += 1;
            return;
        }
        if !is_well_formed(&message) {
            self.counters.dropped_malformed += 1;
            return;
        }
        // Rejoin traffic is looked at before membership: a node whose configuration is
        // out of date (or ours is) must still be answered, and may have to hear from
        // members it does not know yet (see the `rejoin` module).
        match message.body {
            MessageBody::RecoveryProbe {
                last_term,
                last_index,
            } => {
                self.answer_recovery_probe(message.from, (last_term, last_index));
                return;
            }
            MessageBody::RecoveryReport {
                last_term,
                last_index,
                members,
                config_index,
            } => {
                let report = (message.term, last_term, last_index);
                self.handle_recovery_report(message.from, report, (config_index, members));
                return;
            }
            _ => {}
        }
        if !self.accepts_from(&message) {
            self.counters.dropped_non_member += 1;
            return;
        }
        if message.body.is_vote() {
            let key = self
                .membership
                .public_key(&message.from)
                .unwrap_or_default();
            if !self
                .crypto
                .verify(key, &message.signing_bytes(), &message.signature)
            {
                self.counters.dropped_bad_vote_signature += 1;
                return;
            }
        }
        // A witness's relayed entries and their answers do not depend on terms: the entries
        // carry their own, and a member whose term moved past the witness's still needs
        // them (see the `witness` module).
        match message.body {
            MessageBody::WitnessEntries {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                self.handle_witness_entries(message.from, (prev_index, prev_term), entries, commit);
                return;
            }
            MessageBody::WitnessEntriesResponse {
                success,
                match_index,
                conflict_index,
                conflict_term,
            } => {
                self.handle_witness_entries_response(
                    message.from,
                    success,
                    match_index,
                    (conflict_index, conflict_term),
                );
                return;
            }
            _ => {}
        }
        if message.term > self.term {
            match &message.body {
                MessageBody::PreVote { .. } => {}
                MessageBody::PreVoteResponse { granted: true } => {}
                MessageBody::RequestVote { transfer, .. } => {
                    if self.in_leader_lease() && !transfer {
                        // A leader is alive: a disruptive candidate cannot raise our term.
                        return;
                    }
                    self.become_follower(message.term, None);
                }
                MessageBody::AppendEntries { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => {
                    self.become_follower(message.term, Some(message.from));
                }
                _ => self.become_follower(message.term, None),
            }
        } else if message.term < self.term {
            self.answer_stale(message);
            return;
        }
        self.dispatch(message);
        self.check_rejoined();
    }

    /// A message from an older term: tell stale leaders and pre-candidates the new term so
    /// they step down; drop the rest.
    fn answer_stale(&mut self, message: Message) {
        match message.body {
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                self.send(
                    message.from,
                    MessageBody::AppendEntriesResponse {
                        success: false,
                        match_index: 0,
                        conflict_index: 0,
                        conflict_term: None,
                        boot: self.boot,
                    },
                );
            }
            MessageBody::PreVote { .. } => self.send(
                message.from,
                MessageBody::PreVoteResponse { granted: false },
            ),
            MessageBody::RequestVote { .. } => self.send(
                message.from,
                MessageBody::RequestVoteResponse { granted: false },
            ),
            _ => {}
        }
    }

    /// Whether a message's sender may speak to us: a member of our configuration, or a
    /// vouched leader sending leader traffic of its term or later.
    fn accepts_from(&mut self, message: &Message) -> bool {
        if message.from == self.cfg.id {
            return false;
        }
        if self
            .vouched
            .as_ref()
            .is_some_and(|v| self.membership.contains(&v.leader))
        {
            self.vouched = None; // our configuration caught up with it
        }
        if self.membership.contains(&message.from) {
            return true;
        }
        // A removed member being told so answers this leader's appends and heartbeats (of
        // this term: one that moved past it is not told, rather than unseat the leader).
        if self.leaving.contains_key(&message.from)
            && message.term == self.term
            && matches!(
                message.body,
                MessageBody::AppendEntriesResponse { .. } | MessageBody::HeartbeatResponse { .. }
            )
        {
            return true;
        }
        let leader_traffic = matches!(
            message.body,
            MessageBody::AppendEntries { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. }
        );
        leader_traffic
            && self
                .vouched
                .as_ref()
                .is_some_and(|v| v.leader == message.from && message.term >= v.term)
    }

    fn dispatch(&mut self, message: Message) {
        let from = message.from;
        let term = message.term;
        match message.body {
            MessageBody::PreVote {
                last_index,
                last_term,
            } => self.handle_vote_request(from, term, last_index, last_term, true, false),
            MessageBody::RequestVote {
                last_index,
                last_term,
                transfer,
            } => self.handle_vote_request(from, term, last_index, last_term, false, transfer),
            MessageBody::PreVoteResponse { granted } => {
                self.handle_pre_vote_response(from, term, granted)
            }
            MessageBody::RequestVoteResponse { granted } => {
                self.handle_vote_response(from, term, granted)
            }
            MessageBody::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.handle_append(from, prev_index, prev_term, entries, commit),
            MessageBody::AppendEntriesResponse {
                success,
                match_index,
                conflict_index,
                conflict_term,
                boot,
            } => self.handle_append_response(
                from,
                success,
                match_index,
                conflict_index,
                conflict_term,
                boot,
            ),
            MessageBody::Heartbeat { commit, read_seq } => {
                self.handle_heartbeat(from, commit, read_seq)
            }
            MessageBody::HeartbeatResponse { read_seq } => {
                self.handle_heartbeat_response(from, read_seq)
            }
            MessageBody::InstallSnapshot {
                meta,
                offset,
                total_bytes,
                chunk,
            } => self.handle_snapshot_chunk(from, meta, offset, total_bytes, chunk),
            MessageBody::InstallSnapshotResponse {
                index,
                next_offset,
                done,
            } => self.handle_snapshot_response(from, index, next_offset, done),
            MessageBody::TimeoutNow => self.handle_timeout_now(),
            MessageBody::ReadIndex { context } => self.handle_read_index_request(from, context),
            MessageBody::ReadIndexResponse { context, index } => {
                if self.role == Role::Follower {
                    self.read_states.push(ReadState { index, context });
                }
            }
            // Handled in `step`, before terms are looked at.
            MessageBody::RecoveryProbe { .. } | MessageBody::RecoveryReport { .. } => {}
            // The replica's traffic; it never reaches a handler here.
            MessageBody::CommitSignatures { .. } => {}
            // Handled in `step`, before terms are looked at.
            MessageBody::WitnessEntries { .. } | MessageBody::WitnessEntriesResponse { .. } => {}
            MessageBody::Forgettable { index } => self.handle_forgettable(from, index),
            MessageBody::LeaderIs { leader, contact } => {
                let newer = self.vouched.as_ref().is_none_or(|v| term >= v.term);
                if leader != self.cfg.id && !self.membership.contains(&leader) && newer {
                    self.counters.leaders_vouched += 1;
                    self.vouched = Some(Vouched {
                        term,
                        leader,
                        contact,
                    });
                }
            }
        }
    }
}

/// Terms at or above this are refused: no honest cluster gets near it, and a term this
/// large from a faulty peer would overflow on the next election.
pub const MAX_TERM: Term = u64::MAX / 2;

/// Log indexes (and terms inside a message body) at or above this are refused, as terms
/// are: no log gets near it, and an index this large from a faulty peer would overflow the
/// next `index + 1` (found by the `peer` fuzz target: a snapshot at index `u64::MAX`).
pub const MAX_INDEX: Index = u64::MAX / 2;

/// The log indexes and terms a message body carries, for [`is_well_formed`].
fn numbers(body: &MessageBody) -> (Vec<Index>, Vec<Term>) {
    match body {
        MessageBody::PreVote {
            last_index,
            last_term,
        }
        | MessageBody::RequestVote {
            last_index,
            last_term,
            ..
        } => (vec![*last_index], vec![*last_term]),
        MessageBody::AppendEntries {
            prev_index,
            prev_term,
            entries,
            commit,
        }
        | MessageBody::WitnessEntries {
            prev_index,
            prev_term,
            entries,
            commit,
        } => {
            let mut indexes = vec![*prev_index, *commit];
            indexes.extend(entries.last().map(|e| e.index));
            (indexes, vec![*prev_term])
        }
        MessageBody::AppendEntriesResponse {
            match_index,
            conflict_index,
            conflict_term,
            ..
        }
        | MessageBody::WitnessEntriesResponse {
            match_index,
            conflict_index,
            conflict_term,
            ..
        } => (
            vec![*match_index, *conflict_index],
            conflict_term.iter().copied().collect(),
        ),
        MessageBody::Heartbeat { commit, .. } => (vec![*commit], vec![]),
        MessageBody::InstallSnapshot { meta, .. } => (vec![meta.index], vec![meta.term]),
        MessageBody::InstallSnapshotResponse { index, .. }
        | MessageBody::ReadIndexResponse { index, .. } => (vec![*index], vec![]),
        MessageBody::RecoveryProbe {
            last_term,
            last_index,
        } => (vec![*last_index], vec![*last_term]),
        MessageBody::Forgettable { index } => (vec![*index], vec![]),
        MessageBody::CommitSignatures { signatures } => (
            signatures.iter().map(|(height, _)| *height).collect(),
            vec![],
        ),
        MessageBody::RecoveryReport {
            last_term,
            last_index,
            config_index,
            ..
        } => (vec![*last_index, *config_index], vec![*last_term]),
        MessageBody::PreVoteResponse { .. }
        | MessageBody::RequestVoteResponse { .. }
        | MessageBody::HeartbeatResponse { .. }
        | MessageBody::TimeoutNow
        | MessageBody::ReadIndex { .. }
        | MessageBody::LeaderIs { .. } => (vec![], vec![]),
    }
}

/// The longest transport identity a [`MessageBody::LeaderIs`] may carry (a libp2p peer id
/// is 38 bytes for an ed25519 key, at most a few hundred for an inlined RSA key).
pub const MAX_CONTACT_BYTES: usize = 1024;

/// The most members a recovery report may name (a configuration far larger than any a
/// ledger runs).
pub const MAX_REPORTED_MEMBERS: usize = 1024;

/// Structural checks on a message before it reaches any handler, so a faulty or hostile
/// member cannot trip an assertion: a sane term, and appended entries that continue
/// `prev_index` one by one with terms that never decrease and never exceed the message's.
fn is_well_formed(message: &Message) -> bool {
    if message.term >= MAX_TERM {
        return false;
    }
    let (indexes, terms) = numbers(&message.body);
    if indexes.iter().any(|i| *i >= MAX_INDEX) || terms.iter().any(|t| *t >= MAX_TERM) {
        return false;
    }
    match &message.body {
        MessageBody::AppendEntries {
            prev_index,
            prev_term,
            entries,
            ..
        }
        | MessageBody::WitnessEntries {
            prev_index,
            prev_term,
            entries,
            ..
        } => {
            let mut expected_index = prev_index.checked_add(1);
            let mut previous_term = *prev_term;
            entries.iter().all(|entry| {
                let ok = Some(entry.index) == expected_index
                    && entry.term >= previous_term
                    && entry.term <= message.term;
                expected_index = entry.index.checked_add(1);
                previous_term = entry.term;
                ok
            }) && *prev_term <= message.term
        }
        MessageBody::InstallSnapshot {
            meta,
            offset,
            total_bytes,
            chunk,
        } => {
            meta.term <= message.term
                && offset
                    .checked_add(chunk.len() as u64)
                    .is_some_and(|end| end <= *total_bytes)
        }
        MessageBody::LeaderIs { contact, .. } => contact.len() <= MAX_CONTACT_BYTES,
        MessageBody::RecoveryReport {
            last_term, members, ..
        } => *last_term <= message.term && members.len() <= MAX_REPORTED_MEMBERS,
        MessageBody::CommitSignatures { signatures } => {
            signatures.len() <= crate::raft::message::MAX_COMMIT_SIGNATURES
                && signatures.iter().all(|(_, bytes)| bytes.len() <= 8 * 1024)
        }
        _ => true,
    }
}
