//! Linearizable reads (§8 of the paper, "ReadIndex" in Ongaro's thesis §6.4): the leader
//! notes its commit index, confirms it is still leader with a round of heartbeats
//! acknowledged by a quorum, and then the read may be served once that index is applied.
//! With `lease_reads`, a leader whose lease (a quorum acknowledged a heartbeat sent within
//! `lease_ticks`) is valid skips the round.

use crate::raft::core::{ProposeError, Raft};
use crate::raft::crypto::VoteCrypto;
use crate::raft::message::MessageBody;
use crate::raft::types::{Index, NodeId, ReadState, Role};
use std::collections::{BTreeSet, VecDeque};

/// How many heartbeat rounds' send ticks are remembered for the lease.
const HEARTBEAT_ROUNDS_KEPT: usize = 256;

#[derive(Clone, Debug)]
struct PendingRead {
    round: u64,
    index: Index,
    context: Vec<u8>,
    requester: Option<NodeId>,
    acks: BTreeSet<NodeId>,
}

/// The leader's reads awaiting confirmation.
#[derive(Clone, Debug, Default)]
pub struct ReadQueue {
    round: u64,
    rounds: VecDeque<(u64, u64)>,
    pending: VecDeque<PendingRead>,
    /// Reads that arrived before this leader committed an entry of its own term: its
    /// commit index might still lag what earlier leaders acknowledged.
    waiting_for_commit: VecDeque<(Vec<u8>, Option<NodeId>)>,
}

impl ReadQueue {
    /// Starts a heartbeat round sent at `tick`; returns its number.
    pub fn next_round(&mut self, tick: u64) -> u64 {
        self.round += 1;
        self.rounds.push_back((self.round, tick));
        if self.rounds.len() > HEARTBEAT_ROUNDS_KEPT {
            self.rounds.pop_front();
        }
        self.round
    }

    /// When round `round` was sent, if remembered.
    pub fn heartbeat_tick(&self, round: u64) -> Option<u64> {
        self.rounds
            .iter()
            .find(|(r, _)| *r == round)
            .map(|(_, t)| *t)
    }

    fn len(&self) -> usize {
        self.pending.len() + self.waiting_for_commit.len()
    }

    /// Forgets every read (on losing leadership; clients retry).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.waiting_for_commit.clear();
    }
}

impl<C: VoteCrypto> Raft<C> {
    /// Requests a linearizable read. The answer arrives as a [`ReadState`] in a later
    /// `Ready` carrying `context`; serve the read once applied up to its index.
    pub fn read_index(&mut self, context: Vec<u8>) -> Result<(), ProposeError> {
        match self.role {
            Role::Leader => self.queue_read(context, None),
            Role::Follower => match self.leader {
                Some(leader) => {
                    self.send(leader, MessageBody::ReadIndex { context });
                    Ok(())
                }
                None => Err(ProposeError::NoLeader),
            },
            _ => Err(ProposeError::NoLeader),
        }
    }

    pub(crate) fn handle_read_index_request(&mut self, from: NodeId, context: Vec<u8>) {
        if self.role == Role::Leader {
            // A full queue drops the request; the follower's client retries.
            let _ = self.queue_read(context, Some(from));
        }
    }

    pub(crate) fn committed_in_current_term(&self) -> bool {
        self.log.term_at(self.log.committed()) == Some(self.term)
    }

    fn queue_read(
        &mut self,
        context: Vec<u8>,
        requester: Option<NodeId>,
    ) -> Result<(), ProposeError> {
        if self.reads.len() >= self.cfg.max_pending_reads {
            return Err(ProposeError::TooManyReads);
        }
        if !self.committed_in_current_term() {
            self.reads
                .waiting_for_commit
                .push_back((context, requester));
            return Ok(());
        }
        let index = self.log.committed();
        let id = self.cfg.id;
        if (self.cfg.lease_reads && self.lease_valid()) || self.membership.is_quorum(|n| *n == id) {
            self.answer_read(index, context, requester);
            return Ok(());
        }
        let round = self.reads.round + 1;
        self.reads.pending.push_back(PendingRead {
            round,
            index,
            context,
            requester,
            acks: BTreeSet::new(),
        });
        self.heartbeat_elapsed = 0;
        self.broadcast_heartbeat();
        Ok(())
    }

    fn answer_read(&mut self, index: Index, context: Vec<u8>, requester: Option<NodeId>) {
        match requester {
            None => self.read_states.push(ReadState { index, context }),
            Some(to) => self.send(to, MessageBody::ReadIndexResponse { context, index }),
        }
    }

    /// A heartbeat round `round` was acknowledged by `from`.
    pub(crate) fn ack_read(&mut self, from: NodeId, round: u64) {
        for read in self.reads.pending.iter_mut().filter(|r| r.round <= round) {
            read.acks.insert(from);
        }
        let id = self.cfg.id;
        while let Some(read) = self.reads.pending.front() {
            if !self
                .membership
                .is_quorum(|n| *n == id || read.acks.contains(n))
            {
                break;
            }
            let read = self.reads.pending.pop_front().expect("front exists");
            self.answer_read(read.index, read.context, read.requester);
        }
    }

    /// Once the leader has committed an entry of its term, queued reads may proceed.
    pub(crate) fn release_reads_after_commit(&mut self) {
        if !self.committed_in_current_term() || self.reads.waiting_for_commit.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.reads.waiting_for_commit);
        for (context, requester) in waiting {
            let _ = self.queue_read(context, requester);
        }
    }
}
