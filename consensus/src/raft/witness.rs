//! Witnesses: members that vote and keep the log but never lead and do not execute it.
//!
//! A witness never campaigns and no node votes for one, so every leader is a full member.
//! That alone would cost liveness: in a configuration of two full members and a witness,
//! the leader can commit an entry with the witness's acknowledgement alone; if it then
//! dies, the surviving full member lacks that entry, the witness (rightly) refuses it its
//! vote, and nobody can be elected. So a witness that refuses a full member's (pre-)vote
//! because the candidate's log is less up to date than its own sends the candidate the
//! entries it lacks ([`MessageBody::WitnessEntries`]), batch by batch, backing off on a
//! mismatch as a leader does.
//!
//! Why the receiver may take them although no leader sent them: the witness's log is a
//! prefix of the log of the leader of its last entry's term (it took those entries from
//! that leader's appends, whose `prev` check makes everything before them match), so the
//! entries are exactly what that leader's append would have carried. The receiver takes
//! them only if they make its log strictly more up to date (a later last term, or the
//! same last term and a longer log), so it never replaces an entry of a term at or above
//! its own last term: what it drops is an entry of an older term, at an index where a
//! later leader's log holds another entry, which no leader can commit any more (a leader
//! commits only entries of its own term, and the leader of the relayed term, or a later
//! one, holds every entry committed before it). It never drops a committed entry either
//! (checked: a relay that would is ignored). And it moves to the relayed term if that is
//! newer, as that leader's append would have made it, so an older leader cannot overwrite
//! what it took.
//!
//! A witness needs no state snapshot (a leader sends it the snapshot's metadata only) and
//! may forget entries that a quorum of the full members' weight holds, and at least two
//! full members ([`MessageBody::Forgettable`]): any full member that could be elected
//! without it has them, and one full member losing its disk does not take the last copy
//! (the simulator found that: a heavy full member was a quorum alone, lost its disk, and
//! the entries it had committed with the witness were nowhere).

use crate::raft::core::Raft;
use crate::raft::crypto::VoteCrypto;
use crate::raft::message::MessageBody;
use crate::raft::types::{Index, LogEntry, NodeId, Role, Term};

impl<C: VoteCrypto> Raft<C> {
    /// Whether this node is a witness in the configuration in force.
    pub fn is_witness(&self) -> bool {
        self.membership.is_witness(&self.cfg.id)
    }

    /// The index up to which this witness may drop its log: what a quorum of the full
    /// members holds (as the leader last said), and never past its commit index.
    pub fn witness_forgettable(&self) -> Index {
        self.forgettable.min(self.log.committed())
    }

    /// Witness: a full member asked for a vote, or probed us while rejoining, with a log
    /// ending at (`last_index`, `last_term`), less up to date than ours: send it what it
    /// lacks, from where its log may match ours (our last entry at or below its end whose
    /// term is at most its last). A member standing aside (a former witness made a
    /// validator) relays too: it holds the log a witness would, and may be the last holder
    /// of entries a witness forgot (the simulator found a cluster that could elect nobody
    /// otherwise). A rejoining member never campaigns, so its probes are the only sign
    /// that it is behind; it may be the only full member left that could lead, once it
    /// holds what we hold (the simulator found that too: `--nodes 2 --witnesses 1`, seed
    /// 21042).
    pub(crate) fn relay_to_behind_member(
        &mut self,
        to: NodeId,
        last_index: Index,
        last_term: Term,
    ) {
        if !self.never_leads() || self.membership.is_witness(&to) || !self.membership.contains(&to)
        {
            return;
        }
        if (last_term, last_index) >= (self.log.last_term(), self.log.last_index()) {
            return;
        }
        let mut prev = last_index.min(self.log.last_index());
        while self.log.term_at(prev).is_some_and(|term| term > last_term) {
            if prev <= self.log.snapshot().index {
                return;
            }
            prev -= 1;
        }
        self.relay_from(to, prev);
    }

    /// A witness, or a member standing aside: it never campaigns, and relays its log.
    fn never_leads(&self) -> bool {
        self.is_witness() || self.stands_aside
    }

    /// Sends `to` our entries after `prev`, one bounded batch.
    fn relay_from(&mut self, to: NodeId, prev: Index) {
        let Some(prev_term) = self.log.term_at(prev) else {
            return; // compacted away: a full member that needs these has a snapshot source
        };
        let entries = self
            .log
            .entries_from(prev + 1, self.cfg.max_message_entry_bytes);
        if entries.is_empty() {
            return;
        }
        self.counters.witness_relays += 1;
        let commit = self.log.committed();
        self.send(
            to,
            MessageBody::WitnessEntries {
                prev_index: prev,
                prev_term,
                entries,
                commit,
            },
        );
    }

    /// A full member receives entries from a witness (or a member standing aside; it
    /// cannot tell which, and the argument above holds for any member's log).
    pub(crate) fn handle_witness_entries(
        &mut self,
        from: NodeId,
        (prev_index, prev_term): (Index, Term),
        entries: Vec<LogEntry>,
        commit: Index,
    ) {
        // A rejoining node takes relayed entries once it knows the log it must reach: it
        // has then moved past every term it could have voted in, so moving to the relayed
        // term below cannot let it vote twice; and the entries acknowledge nothing to a
        // leader. Before that, it waits for the reports.
        let rejoin_waits = self.rejoin.is_some() && self.rejoin_target().is_none();
        if !self.membership.contains(&from)
            || self.is_witness()
            || self.role == Role::Leader
            || rejoin_waits
            || self.pending_install.is_some()
        {
            return;
        }
        let Some(last) = entries.last() else {
            return;
        };
        let (last_index, last_term) = (last.index, last.term);
        let more_up_to_date =
            (last_term, last_index) > (self.log.last_term(), self.log.last_index());
        if !more_up_to_date {
            return;
        }
        let answer = |success, match_index, conflict_index, conflict_term| {
            MessageBody::WitnessEntriesResponse {
                success,
                match_index,
                conflict_index,
                conflict_term,
            }
        };
        let committed = self.log.committed();
        if prev_index < committed {
            // Everything up to our commit index matches any log worth relaying.
            self.send(from, answer(true, committed, 0, None));
            return;
        }
        if self.log.term_at(prev_index) != Some(prev_term) {
            let (conflict_index, conflict_term) = self.conflict_hint(prev_index);
            self.send(
                from,
                answer(false, prev_index, conflict_index, conflict_term),
            );
            return;
        }
        match self.take_entries(&entries) {
            None => return, // it would drop a committed entry: never
            Some(true) => self.counters.witness_entries_taken += 1,
            Some(false) => {}
        }
        if last_term > self.term {
            // As the append of that term's leader would: an older leader's appends, which
            // could overwrite these entries, are refused from now on.
            self.become_follower(last_term, None);
        }
        self.log.commit_to(commit.min(last_index));
        self.send(from, answer(true, last_index, 0, None));
        self.check_rejoined();
    }

    /// Witness (or a member standing aside): the member's answer. Continue until it holds
    /// our whole log, or back off to where it may match.
    pub(crate) fn handle_witness_entries_response(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: Index,
        (conflict_index, conflict_term): (Index, Option<Term>),
    ) {
        if !self.never_leads() || !self.membership.contains(&from) {
            return;
        }
        if success {
            if match_index < self.log.last_index() {
                self.relay_from(from, match_index);
            }
            return;
        }
        let rejected = match_index;
        let prev = self
            .resume_from(rejected, conflict_index, conflict_term)
            .saturating_sub(1);
        if prev < rejected {
            self.relay_from(from, prev);
        }
    }

    /// Witness: the leader says a quorum of the full members holds entries up to `index`.
    pub(crate) fn handle_forgettable(&mut self, from: NodeId, index: Index) {
        if self.leader == Some(from) && self.is_witness() {
            self.forgettable = self.forgettable.max(index);
        }
    }

    /// Whether this member must not lead although it is a full member: its driver's
    /// state machine does not hold what its log has applied (a witness that governance
    /// removed, or later made a validator, executed none of it). It then votes and keeps
    /// the log as a witness does, and never campaigns or takes a transfer.
    pub fn set_stands_aside(&mut self, stands_aside: bool) {
        self.stands_aside = stands_aside;
    }

    /// A node that may not campaign (a witness, a member standing aside, a node outside its
    /// own configuration), no leader heard for an election timeout: ask every member of
    /// its configuration for its log end
    /// ([`MessageBody::RecoveryProbe`], which changes nothing at the answerer). A member
    /// following a leader that our log does not know yet names it (`LeaderIs`), as it
    /// would to a full member's pre-vote; without this a witness that missed the entry
    /// adding a new leader would drop that leader's messages forever.
    pub(crate) fn ask_for_leader(&mut self) {
        let me = self.cfg.id;
        for id in self.membership.all_members() {
            if id != me {
                self.send_recovery_probe(id);
            }
        }
    }

    /// Leader: tell each witness what it may forget.
    pub(crate) fn send_forgettable(&mut self) {
        if !self.membership.has_witnesses() {
            return;
        }
        let own = self.log.persisted();
        let id = self.cfg.id;
        let index = self.membership.full_members_matched(|n| {
            if *n == id {
                own
            } else {
                self.progress.get(n).map_or(0, |p| p.match_index)
            }
        });
        let witnesses: Vec<NodeId> = self
            .progress
            .keys()
            .filter(|n| self.membership.is_witness(n))
            .copied()
            .collect();
        for witness in witnesses {
            self.send(witness, MessageBody::Forgettable { index });
        }
    }
}
