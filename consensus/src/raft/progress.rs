//! What the leader knows of each follower's log, and how it replicates to it.

use crate::raft::types::Index;
use std::collections::VecDeque;

/// How the leader is replicating to a follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Looking for the match point: one AppendEntries in flight at a time.
    Probe,
    /// Streaming: next index advanced optimistically, up to a bounded number in flight.
    Replicate,
    /// Sending a snapshot, one chunk in flight.
    Snapshot {
        /// The snapshot's index.
        index: Index,
        /// The next byte to send.
        offset: u64,
    },
}

/// One follower's replication state.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known to match the leader's log.
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    /// How to send.
    pub state: ProgressState,
    /// In `Probe`: a message is in flight, wait for an answer or a heartbeat.
    pub probe_sent: bool,
    /// In `Replicate`: last index of each AppendEntries in flight.
    pub inflight: VecDeque<Index>,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// The leader's tick when the match index last advanced (or streaming began).
    pub last_progress_tick: u64,
    /// Was active during the last complete check-quorum round.
    pub healthy: bool,
    /// The send tick of the newest heartbeat it acknowledged (for the leader lease).
    pub acked_heartbeat_tick: u64,
    /// The boot id of the follower process that last acknowledged entries.
    pub match_boot: Option<u64>,
}

impl Progress {
    /// A follower whose log the leader knows nothing about.
    pub fn new(next_index: Index) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: true,
            last_progress_tick: 0,
            healthy: false,
            acked_heartbeat_tick: 0,
            match_boot: None,
        }
    }

    /// Whether nothing more may be sent until an answer arrives.
    pub fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= max_inflight,
            ProgressState::Snapshot { .. } => true,
        }
    }

    /// Back to probing from `match_index + 1`.
    pub fn become_probe(&mut self) {
        if let ProgressState::Snapshot { index, .. } = self.state {
            self.next_index = (self.match_index + 1).max(index + 1);
        } else {
            self.next_index = self.match_index + 1;
        }
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Starts streaming.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Records a successful append up to `index`; returns whether the match advanced.
    pub fn update_match(&mut self, index: Index) -> bool {
        self.probe_sent = false;
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        if index > self.match_index {
            self.match_index = index;
            self.next_index = self.next_index.max(index + 1);
            return true;
        }
        false
    }
}
