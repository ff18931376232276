//! Rejoining after lost state: a node whose storage holds no promise record (a wiped data
//! directory, or a copy of one restored from elsewhere) may have voted, or acknowledged
//! entries, in a life it forgot. Raft's safety argument assumes it did not, so such a node
//! takes no part in elections until it is safe again:
//!
//! 1. It asks every other member of its configuration for its term, the end of its log and
//!    its configuration (`RecoveryProbe`, answered by `RecoveryReport` whatever the
//!    answerer's role or term), until every member of the newest configuration it knows
//!    of (its own, or one reported: its own may be long out of date) has answered. A vote it forgot was for a candidate
//!    that had stored that term, and terms never go back, so the highest term reported,
//!    `M`, is at least every term in which it could have voted. (A quorum of answers
//!    would not do: the candidate it voted for may be outside that quorum and still win
//!    its term afterwards, with the forgotten vote.) It moves to `M` and counts its vote
//!    in `M` as cast, for itself, so it votes again only in a later term.
//! 2. Any entry committed with its acknowledgement is on a quorum, which meets the members
//!    that answered in another node: the most up-to-date log reported, `L`, holds every
//!    committed entry (the election restriction's argument), and so does any log at least
//!    as up to date as `L`. It votes (in terms after `M`) only for candidates whose log is
//!    at least as up to date as `L` — so a cluster that needs its weight for a quorum can
//!    still elect — and takes entries from the leader as any follower does: its
//!    acknowledgements are of entries it holds durably, so they count. Once its own log
//!    is at least as up to date as `L`, the ordinary rule implies the extra one.
//!
//! Then the hard state records the promise (`HardState::proven`) and the node is an
//! ordinary voter. Until then it never campaigns. A node with
//! no other member is proven at once. `agora-node init` creates a new node's store with the
//! promise (a new node has voted nowhere); the simulator's nodes start the same way.

use crate::raft::core::Raft;
use crate::raft::crypto::VoteCrypto;
use crate::raft::message::MessageBody;
use crate::raft::types::{Index, NodeId, Role, Term};
use std::collections::{BTreeMap, BTreeSet};

/// A report: (the member's term, its last log term, its last log index).
pub(crate) type Report = (Term, Term, Index);

/// A rejoin in progress.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rejoin {
    /// Reports so far, with each reporter's configuration: (its index, its members).
    reports: BTreeMap<NodeId, (Report, (Index, Vec<NodeId>))>,
    /// Once every member required has reported: the log (last term, last index) to reach.
    target: Option<(Term, Index)>,
    /// Ticks since the last round of probes.
    since_probe: u64,
}

impl<C: VoteCrypto> Raft<C> {
    /// Whether this node is rejoining after lost state (no votes, no campaigns).
    pub fn is_rejoining(&self) -> bool {
        self.rejoin.is_some()
    }

    /// The log this rejoining node must reach before it votes again, once known.
    pub fn rejoin_target(&self) -> Option<(Term, Index)> {
        self.rejoin.as_ref().and_then(|r| r.target)
    }

    /// At start and at every election timeout while rejoining: ask the members that have
    /// not answered yet (reports are kept, so lost messages only delay it); once all have,
    /// and while no leader is heard, ask again only so that a member names its leader.
    pub(crate) fn probe_for_rejoin(&mut self) {
        let Some(rejoin) = self.rejoin.as_ref() else {
            return;
        };
        let concluded = rejoin.target.is_some();
        if concluded && self.leader.is_some() {
            return;
        }
        let me = self.cfg.id;
        let ask: Vec<NodeId> = if concluded {
            let mut all = self.required_reporters();
            all.remove(&me);
            all.into_iter().collect()
        } else {
            self.unreported()
        };
        if ask.is_empty() {
            self.conclude_reports();
            return;
        }
        for id in ask {
            self.send_recovery_probe(id);
        }
    }

    /// The required members (but us) that have not reported yet.
    fn unreported(&self) -> Vec<NodeId> {
        let me = self.cfg.id;
        let reported = |id: &NodeId| {
            self.rejoin
                .as_ref()
                .is_some_and(|r| r.reports.contains_key(id))
        };
        self.required_reporters()
            .into_iter()
            .filter(|id| *id != me && !reported(id))
            .collect()
    }

    /// Answered for any sender the transport let through: a report tells little, and the
    /// prober's configuration (or ours) may be out of date.
    pub(crate) fn answer_recovery_probe(
        &mut self,
        from: NodeId,
        (prober_term, prober_index): (Term, Index),
    ) {
        // A prober whose log ends before our leader was added would drop its messages.
        self.name_leader_to(from, prober_index);
        let (last_term, last_index) = (self.log.last_term(), self.log.last_index());
        let members = self.membership.all_members().into_iter().collect();
        let config_index = self.membership_index();
        self.send(
            from,
            MessageBody::RecoveryReport {
                last_term,
                last_index,
                members,
                config_index,
            },
        );
        // A member that never leads may hold entries no leader can bring the prober (see
        // `relay_to_behind_member`); sent after the report, which a rejoining prober needs
        // before it takes them.
        self.relay_to_behind_member(from, prober_index, prober_term);
    }

    pub(crate) fn handle_recovery_report(
        &mut self,
        from: NodeId,
        report: Report,
        config: (Index, Vec<NodeId>),
    ) {
        if self.rejoin.as_ref().is_none_or(|r| r.target.is_some()) {
            return;
        }
        // Only members of our configuration, or of the newest one they reported, count:
        // an outsider's report could hold the rejoin up forever.
        if !self.required_reporters().contains(&from) && !self.membership.contains(&from) {
            self.counters.dropped_non_member += 1;
            return;
        }
        let rejoin = self.rejoin.as_mut().expect("rejoining");
        rejoin.reports.insert(from, (report, config));
        if self.unreported().is_empty() {
            self.conclude_reports();
        }
    }

    /// Asks `to` for its term, log end and configuration, telling it where our log ends.
    pub(crate) fn send_recovery_probe(&mut self, to: NodeId) {
        let (last_term, last_index) = (self.log.last_term(), self.log.last_index());
        self.send(
            to,
            MessageBody::RecoveryProbe {
                last_term,
                last_index,
            },
        );
    }

    /// Whom a rejoining node must hear from: every member of the newest configuration it
    /// knows of, its own or one reported (its own may be long out of date). That suffices:
    /// a configuration entry is joint first, naming the old members with the new, and a
    /// later one is appended only once the joint one committed on a quorum of the new
    /// members, which hold everything committed before it; what commits later commits on
    /// a quorum of the new members too.
    fn required_reporters(&self) -> BTreeSet<NodeId> {
        let own = (self.membership_index(), self.membership.all_members());
        let Some(rejoin) = &self.rejoin else {
            return own.1;
        };
        let newest = rejoin
            .reports
            .values()
            .map(|(_, (index, _))| *index)
            .chain([own.0])
            .max()
            .unwrap_or(0);
        let mut required = BTreeSet::new();
        if own.0 == newest {
            required.extend(own.1);
        }
        for (_, (index, members)) in rejoin.reports.values() {
            if *index == newest {
                required.extend(members.iter().copied());
            }
        }
        required
    }

    /// Every other member answered: move past every term we could have voted in, and set
    /// the log to reach.
    fn conclude_reports(&mut self) {
        let me = self.cfg.id;
        let Some(rejoin) = self.rejoin.as_mut() else {
            return;
        };
        let highest_term = rejoin.reports.values().map(|(r, _)| r.0).max().unwrap_or(0);
        let longest = rejoin
            .reports
            .values()
            .map(|(r, _)| (r.1, r.2))
            .max()
            .unwrap_or((0, 0));
        rejoin.target = Some(longest);
        if highest_term > self.term {
            self.become_follower(highest_term, None);
        }
        if self.term > 0 && self.vote.is_none() {
            // Our vote in this term may already have been cast in the forgotten life.
            self.vote = Some(me);
        }
        self.check_rejoined();
    }

    /// Ticks a round of probes on the first tick and every minimum election timeout after
    /// (whether or not a leader is heard: its heartbeats say nothing of the reports).
    pub(crate) fn rejoin_probe_due(&mut self) -> bool {
        let interval = self.cfg.election_timeout_ticks_min;
        let first = self.now == 1;
        let Some(rejoin) = self.rejoin.as_mut() else {
            return false;
        };
        rejoin.since_probe += 1;
        if first || rejoin.since_probe >= interval {
            rejoin.since_probe = 0;
            return true;
        }
        false
    }

    /// Whether a rejoining node may vote for a candidate whose log ends at
    /// (`last_term`, `last_index`): only once every member has reported, and only for a
    /// log at least as up to date as the most up-to-date one reported — such a log holds
    /// every committed entry, including any we acknowledged and forgot. So the node helps
    /// elect a leader even while its own log is behind (a cluster where it is needed for a
    /// quorum can still elect), never one that lacks a committed entry.
    pub(crate) fn rejoin_allows_vote(&self, last_term: Term, last_index: Index) -> bool {
        match &self.rejoin {
            None => true,
            Some(rejoin) => rejoin
                .target
                .is_some_and(|target| (last_term, last_index) >= target),
        }
    }

    /// Proven once our log is at least as up to date as the target.
    pub(crate) fn check_rejoined(&mut self) {
        let Some((last_term, last_index)) = self.rejoin.as_ref().and_then(|r| r.target) else {
            return;
        };
        if (self.log.last_term(), self.log.last_index()) >= (last_term, last_index) {
            self.finish_rejoin();
        }
    }

    fn finish_rejoin(&mut self) {
        self.rejoin = None;
        self.counters.rejoins += 1;
        if self.role == Role::Follower {
            self.election_elapsed = 0;
        }
    }
}
