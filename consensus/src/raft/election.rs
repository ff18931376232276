//! Leader election (§5.2) with pre-vote and check-quorum, the leader lease, leadership
//! transfer, and reputation: higher-weight voters time out earlier, and a leader that is
//! not the highest-weight healthy voter hands over (with hysteresis).

use crate::raft::core::Raft;
use crate::raft::crypto::VoteCrypto;
use crate::raft::message::MessageBody;
use crate::raft::progress::Progress;
use crate::raft::quorum::VoteResult;
use crate::raft::types::{EntryData, Index, NodeId, Role, Term};
use rand::Rng;

/// How many minimum election timeouts a member that did not take over a reputation
/// transfer is passed over by the next ones.
const DECLINED_TRANSFER_TIMEOUTS: u64 = 30;

impl<C: VoteCrypto> Raft<C> {
    pub(crate) fn tick_election(&mut self) {
        if self.rejoin.is_some() {
            self.election_elapsed += 1;
            if self.election_elapsed >= self.randomized_timeout {
                // Not heard from a leader for an election timeout: forget it (a follower
                // would campaign); a member that is asked names the leader it follows.
                self.leader = None;
                self.election_elapsed = 0;
            }
            if self.rejoin_probe_due() {
                self.probe_for_rejoin();
            }
            self.check_rejoined();
            return;
        }
        self.election_elapsed += 1;
        if self.election_elapsed >= self.randomized_timeout && self.can_campaign() {
            self.election_elapsed = 0;
            self.campaign_pre_vote();
        } else if self.election_elapsed >= self.randomized_timeout {
            // A node that may not campaign — a witness, a member standing aside, a node
            // outside its own configuration (one governance added, restarted from an empty
            // disk that knows only the genesis) — is never named a leader it cannot know
            // (one added after its log ends) by a refused pre-vote; it asks instead (see
            // `witness`). It forgets the leader it has not heard from, as a full member
            // would by campaigning: else it would keep refusing pre-votes in its name.
            self.leader = None;
            self.election_elapsed = 0;
            self.ask_for_leader();
        }
    }

    pub(crate) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_timeout_ticks_min {
            self.election_elapsed = 0;
            if !self.check_quorum_active() {
                // Check-quorum: a leader cut off from a quorum steps down, so a partitioned
                // leader cannot keep serving lease reads or stall clients forever.
                self.become_follower(self.term, None);
                return;
            }
            self.check_reputation_transfer();
        }
        if let Some((target, elapsed)) = self.transfer {
            if elapsed + 1 >= self.cfg.election_timeout_ticks_min {
                // The target did not take over in time: it may be unable to (a former
                // witness standing aside, a member whose clock or link is bad), so no
                // reputation transfer tries it again for a while, else every few checks
                // would pause proposals for a transfer that fails again.
                self.transfer = None;
                let now = self.now;
                self.transfer_declined.retain(|_, until| *until > now);
                self.transfer_declined.insert(
                    target,
                    now + DECLINED_TRANSFER_TIMEOUTS * self.cfg.election_timeout_ticks_min,
                );
            } else {
                self.transfer = Some((target, elapsed + 1));
            }
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_interval_ticks {
            self.heartbeat_elapsed = 0;
            // Leaving a joint configuration may wait on full members catching up, not
            // only on a commit.
            self.maybe_leave_joint();
            self.broadcast_heartbeat();
        }
    }

    fn can_campaign(&self) -> bool {
        let witness = self.membership.is_witness(&self.cfg.id);
        #[cfg(any(test, feature = "inject-bugs"))]
        let witness = witness && !self.cfg.bugs.witness_campaigns;
        self.membership.is_voter(&self.cfg.id)
            && !witness
            && !self.stands_aside
            && self.pending_install.is_none()
            && self.rejoin.is_none()
    }

    /// Whether this follower heard from a leader within the minimum election timeout, or
    /// started less than that long ago (it may have heard from one just before a crash and
    /// forgotten), in which case it refuses to help anyone else become leader. The leader
    /// lease, and so lease reads, rest on this promise.
    pub(crate) fn in_leader_lease(&self) -> bool {
        let heard_recently = self.leader.is_some()
            && self.role == Role::Follower
            && self.election_elapsed < self.cfg.election_timeout_ticks_min;
        heard_recently || self.now < self.cfg.election_timeout_ticks_min
    }

    /// The transport lost its connection to `peer`: its process died (the kernel closed
    /// its sockets) or the link broke. If `peer` is the leader we follow, this follower
    /// campaigns as soon as its promise to that leader ends — the minimum election timeout
    /// since it last heard from it, plus a few ticks of jitter (heavier voters first) —
    /// rather than after the random rest of its timeout. The promise itself is untouched:
    /// until it ends, this node still refuses pre-votes, so the leader's lease holds even
    /// when the alarm is false (the leader is alive and the link comes back, which restores
    /// the usual timeout).
    pub fn leader_unreachable(&mut self, peer: NodeId) {
        self.assert_no_ready();
        if self.role != Role::Follower || self.leader != Some(peer) {
            return;
        }
        #[cfg(any(test, feature = "inject-bugs"))]
        if self.cfg.bugs.disconnect_breaks_promise {
            self.leader = None;
            self.randomized_timeout = self.election_elapsed + 1;
            return;
        }
        if !self.can_campaign() {
            return;
        }
        let jitter = (self.cfg.election_timeout_jitter_ticks / 5).max(1);
        let prompt = self.cfg.election_timeout_ticks_min
            + self.rank_offset(jitter)
            + self.rng.random_range(0..=jitter);
        self.counters.leader_disconnects += 1;
        if prompt < self.randomized_timeout {
            self.randomized_timeout = prompt;
            self.leader_lost = true;
        }
    }

    /// This voter's place among the voters by weight (highest first), spread over
    /// `jitter / 2` ticks: rank `r` of `n` adds `r * jitter / (2n)`.
    fn rank_offset(&self, jitter: u64) -> u64 {
        let mut voters: Vec<(u64, NodeId)> = self
            .membership
            .incoming
            .voters()
            .map(|(id, w)| (w, *id))
            .collect();
        voters.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let count = voters.len().max(1) as u64;
        let rank = voters
            .iter()
            .position(|(_, id)| *id == self.cfg.id)
            .unwrap_or(voters.len()) as u64;
        rank * jitter / (2 * count)
    }

    /// Draws the next election timeout. Voters are ranked by weight (highest first); rank
    /// `r` of `n` adds `r * jitter / (2n)` ticks, so heavier voters tend to time out, and
    /// win, first while the random part keeps the windows overlapping.
    pub(crate) fn reset_election_timeout(&mut self) {
        let jitter = self.cfg.election_timeout_jitter_ticks;
        self.leader_lost = false;
        self.randomized_timeout = self.cfg.election_timeout_ticks_min
            + self.rank_offset(jitter)
            + self.rng.random_range(0..jitter);
    }

    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term, "term only moves forward");
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.reset_role_state();
    }

    fn reset_role_state(&mut self) {
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.votes.clear();
        self.progress.clear();
        self.leaving.clear();
        self.transfer = None;
        self.transfer_streak = 0;
        self.reads.clear();
        self.reset_election_timeout();
    }

    fn campaign_pre_vote(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id, true);
        if self.membership.vote_result(&self.votes) == VoteResult::Won {
            self.campaign(false);
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let next_term = self.term + 1;
        for id in self.membership.all_members() {
            if id != self.cfg.id && self.membership.is_voter(&id) {
                self.send_with_term(
                    id,
                    next_term,
                    MessageBody::PreVote {
                        last_index,
                        last_term,
                    },
                );
            }
        }
    }

    pub(crate) fn campaign(&mut self, transfer: bool) {
        self.counters.elections += 1;
        let term = self.term + 1;
        self.become_follower(term, None);
        self.role = Role::Candidate;
        self.vote = Some(self.cfg.id);
        self.votes.insert(self.cfg.id, true);
        if self.membership.vote_result(&self.votes) == VoteResult::Won {
            self.become_leader();
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for id in self.membership.all_members() {
            if id != self.cfg.id && self.membership.is_voter(&id) {
                self.send(
                    id,
                    MessageBody::RequestVote {
                        last_index,
                        last_term,
                        transfer,
                    },
                );
            }
        }
    }

    pub(crate) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: Index,
        last_term: Term,
        pre_vote: bool,
        transfer: bool,
    ) {
        if pre_vote && term > self.term && self.in_leader_lease() {
            self.send_with_term(
                from,
                self.term,
                MessageBody::PreVoteResponse { granted: false },
            );
            self.name_leader_to(from, last_index);
            return;
        }
        let unvoted = self.vote.is_none() && (self.leader.is_none() || transfer);
        let can_vote = self.vote == Some(from) || unvoted || (pre_vote && term > self.term);
        // A node rejoining after lost state votes only for a log that holds everything
        // committed (see the `rejoin` module).
        let can_vote = can_vote && self.rejoin_allows_vote(last_term, last_index);
        #[cfg(any(test, feature = "inject-bugs"))]
        let can_vote = can_vote || (self.cfg.bugs.grant_two_votes && !pre_vote);
        // Whether the candidate votes in *our* view of the configuration does not matter:
        // our view may be stale, and safety comes from quorum intersection in the
        // candidate's configuration (§6). Only the log decides (§5.4.1) — and a witness,
        // which has no state to lead with, never gets a vote.
        let witness = self.membership.is_witness(&from);
        #[cfg(any(test, feature = "inject-bugs"))]
        let witness = witness && !self.cfg.bugs.witness_campaigns;
        let up_to_date = self.log.is_up_to_date(last_index, last_term);
        let grant = can_vote && up_to_date && !witness;
        if !up_to_date {
            self.relay_to_behind_member(from, last_index, last_term);
        }
        if pre_vote {
            // A granted pre-vote answers in the candidate's proposed term.
            let reply_term = if grant { term } else { self.term };
            self.send_with_term(
                from,
                reply_term,
                MessageBody::PreVoteResponse { granted: grant },
            );
            if !grant {
                self.name_leader_to(from, last_index);
            }
            return;
        }
        if grant {
            self.election_elapsed = 0;
            self.vote = Some(from);
        }
        self.send(from, MessageBody::RequestVoteResponse { granted: grant });
    }

    /// A node that tries to elect itself while we follow a live leader cannot know that
    /// leader if its log ends before the configuration entry that added it: name it.
    pub(crate) fn name_leader_to(&mut self, candidate: NodeId, candidate_last_index: Index) {
        let Some(leader) = self.leader.filter(|l| *l != candidate) else {
            return;
        };
        if candidate_last_index >= self.member_since(&leader) {
            return;
        }
        let Some(contact) = self.contacts.get(&leader).cloned() else {
            return;
        };
        self.send(candidate, MessageBody::LeaderIs { leader, contact });
    }

    /// The index from which every configuration in our log contains `id`: the entry that
    /// added it, or our snapshot's index if it was a member then (0 for a genesis member;
    /// conservative otherwise, since the snapshot forgot when it joined).
    fn member_since(&self, id: &NodeId) -> Index {
        let mut since = None;
        for (index, membership) in self.config_history.iter().rev() {
            if !membership.contains(id) {
                return since.unwrap_or(Index::MAX);
            }
            since = Some(*index);
        }
        let snapshot = self.log.snapshot();
        if snapshot.membership.contains(id) {
            return snapshot.index;
        }
        since.unwrap_or(Index::MAX)
    }

    pub(crate) fn handle_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role != Role::PreCandidate || term != self.term + 1 {
            return;
        }
        self.votes.insert(from, granted);
        match self.membership.vote_result(&self.votes) {
            VoteResult::Won => self.campaign(false),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    pub(crate) fn handle_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role != Role::Candidate || term != self.term {
            return;
        }
        self.votes.insert(from, granted);
        match self.membership.vote_result(&self.votes) {
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    fn become_leader(&mut self) {
        assert_eq!(self.role, Role::Candidate);
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.votes.clear();
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        let next = self.log.last_index() + 1;
        self.progress = self
            .membership
            .all_members()
            .into_iter()
            .filter(|id| *id != self.cfg.id)
            .map(|id| (id, Progress::new(next)))
            .collect();
        self.leaving_from_log();
        // A new leader commits entries of earlier terms only by committing one of its own
        // term (§5.4.2): the no-op.
        if self.cfg.election_noop {
            self.append_entry(EntryData::Noop);
        }
    }

    fn check_quorum_active(&mut self) -> bool {
        let id = self.cfg.id;
        let active = self
            .membership
            .is_quorum(|n| *n == id || self.progress.get(n).is_some_and(|p| p.recent_active));
        for progress in self.progress.values_mut() {
            progress.healthy = progress.recent_active;
            progress.recent_active = false;
        }
        active
    }

    /// Whether a quorum acknowledged a heartbeat sent within the last `lease_ticks`.
    pub(crate) fn lease_valid(&self) -> bool {
        if self.role != Role::Leader {
            return false;
        }
        if self.transfer.is_some() || self.now < self.lease_blocked_until {
            // Voters of a handover ignore their promise to this leader.
            return false;
        }
        let since = self.now.saturating_sub(self.cfg.lease_ticks);
        let id = self.cfg.id;
        self.membership.is_quorum(|n| {
            *n == id
                || self
                    .progress
                    .get(n)
                    .is_some_and(|p| p.acked_heartbeat_tick >= since && p.acked_heartbeat_tick > 0)
        })
    }

    pub(crate) fn start_transfer(&mut self, to: NodeId) {
        self.counters.transfers += 1;
        // The target's election may outlive the transfer timeout; no lease until it surely ended.
        self.lease_blocked_until = self.now + 2 * self.cfg.election_timeout_ticks_min;
        self.transfer = Some((to, 0));
        let caught_up = self
            .progress
            .get(&to)
            .is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            self.send(to, MessageBody::TimeoutNow);
        } else {
            self.send_append(to);
        }
    }

    pub(crate) fn handle_timeout_now(&mut self) {
        if self.role != Role::Leader && self.can_campaign() {
            self.campaign(true);
        }
    }

    /// Spreading leaders across a node's zones: each zone is its own group, and with the
    /// same members in several, nothing else keeps every zone's leader off the same node.
    /// `load(n)` is how many of this node's zones `n` leads, as this node sees them (the
    /// driver gathers it). A leader that leads at least two zones more than a healthy,
    /// caught-up full voter within the leadership margin of the top weight — the only ones
    /// reputation would not hand leadership away from, so the two rules never pull against
    /// each other — hands this zone's leadership to the least loaded one. Each hand-over
    /// lowers the sum of squared loads, so the moves end. Returns the target, if a
    /// transfer started.
    pub fn balance_leadership(&mut self, load: impl Fn(&NodeId) -> u64) -> Option<NodeId> {
        self.assert_no_ready();
        if self.role != Role::Leader || self.transfer.is_some() || self.membership.is_joint() {
            return None;
        }
        let last = self.log.last_index();
        let me = self.cfg.id;
        let eligible: Vec<(NodeId, u64)> = self
            .membership
            .incoming
            .voters()
            .filter(|(id, _)| !self.membership.is_witness(id))
            .filter(|(id, _)| {
                **id == me
                    || self.progress.get(id).is_some_and(|p| {
                        p.healthy
                            && p.match_index + 1 >= last
                            && self
                                .transfer_declined
                                .get(id)
                                .is_none_or(|until| *until <= self.now)
                    })
            })
            .map(|(id, weight)| (*id, weight))
            .collect();
        let top = eligible.iter().map(|(_, w)| *w).max()?;
        if self.clearly_outweighs(top, self.membership.incoming.weight(&me)) {
            return None; // reputation moves this leadership; it is not ours to balance
        }
        // Only voters reputation would not take the leadership back from: within the
        // margin of the top weight. Least loaded first, then the heavier, then by id.
        let (target, target_load, _) = eligible
            .iter()
            .filter(|(id, weight)| *id != me && !self.clearly_outweighs(top, *weight))
            .map(|(id, weight)| (*id, load(id), *weight))
            .min_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)))?;
        if load(&me) < target_load.saturating_add(2) {
            return None;
        }
        self.counters.balance_transfers += 1;
        self.start_transfer(target);
        Some(target)
    }

    /// Whether `heavier` exceeds `lighter` by more than the leadership margin
    /// ([`crate::raft::RaftConfig::leadership_margin_percent`]).
    fn clearly_outweighs(&self, heavier: u64, lighter: u64) -> bool {
        let margin = u128::from(self.cfg.leadership_margin_percent);
        u128::from(heavier) * 100 > u128::from(lighter) * (100 + margin)
    }

    /// Reputation-aware leadership: if a healthy voter clearly outweighs this leader (by
    /// more than the leadership margin) for `transfer_hysteresis_checks` checks in a row,
    /// hand over to the heaviest one.
    fn check_reputation_transfer(&mut self) {
        if !self.cfg.reputation_transfer || self.transfer.is_some() || self.membership.is_joint() {
            self.transfer_streak = 0;
            return;
        }
        let own = self.membership.incoming.weight(&self.cfg.id);
        let last = self.log.last_index();
        let best = self
            .membership
            .incoming
            .voters()
            .filter(|(id, _)| !self.membership.is_witness(id))
            .filter(|(id, _)| {
                self.transfer_declined
                    .get(id)
                    .is_none_or(|until| *until <= self.now)
            })
            .filter(|(id, _)| {
                self.progress
                    .get(id)
                    .is_some_and(|p| p.healthy && p.match_index + 1 >= last)
            })
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(id, w)| (*id, w));
        match best {
            Some((target, weight)) if self.clearly_outweighs(weight, own) => {
                self.transfer_streak += 1;
                if self.transfer_streak >= self.cfg.transfer_hysteresis_checks {
                    self.transfer_streak = 0;
                    self.start_transfer(target);
                }
            }
            _ => self.transfer_streak = 0,
        }
    }
}
