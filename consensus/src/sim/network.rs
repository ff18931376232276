//! The simulated network: per-message delay, loss, duplication (and so reordering), and
//! symmetric or asymmetric partitions, all drawn from the run's seeded RNG.

use crate::raft::{Message, NodeId};

/// What travels between simulated nodes: Raft messages and forwarded transactions.
#[derive(Clone, Debug)]
pub enum SimMessage {
    /// A Raft message.
    Raft(Message),
    /// A transaction a follower forwards to the leader.
    Forward {
        /// The follower.
        from: NodeId,
        /// The leader.
        to: NodeId,
        /// Canonical signed bytes.
        tx: Vec<u8>,
    },
}

impl SimMessage {
    /// The sender.
    pub fn from(&self) -> NodeId {
        match self {
            SimMessage::Raft(message) => message.from,
            SimMessage::Forward { from, .. } => *from,
        }
    }

    /// The receiver.
    pub fn to(&self) -> NodeId {
        match self {
            SimMessage::Raft(message) => message.to,
            SimMessage::Forward { to, .. } => *to,
        }
    }
}
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Fault rates, in parts per thousand, and delays in ticks.
#[derive(Clone, Copy, Debug)]
pub struct NetworkFaults {
    /// Chance a message is lost.
    pub loss_per_mille: u32,
    /// Chance a message is delivered twice.
    pub duplicate_per_mille: u32,
    /// Shortest delay.
    pub min_delay_ticks: u64,
    /// Longest delay (different delays reorder messages).
    pub max_delay_ticks: u64,
}

impl NetworkFaults {
    /// A healthy network: no loss, no duplicates, short delays.
    pub const HEALTHY: NetworkFaults = NetworkFaults {
        loss_per_mille: 0,
        duplicate_per_mille: 0,
        min_delay_ticks: 1,
        max_delay_ticks: 2,
    };
}

/// Messages in flight, ordered by delivery time then send order.
#[derive(Debug)]
pub struct Network {
    in_flight: BTreeMap<(u64, u64), SimMessage>,
    sequence: u64,
    /// Directed links that drop everything: (from, to).
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Current rates.
    pub faults: NetworkFaults,
    /// Messages dropped by loss or partition.
    pub dropped: u64,
    /// Messages sent.
    pub sent: u64,
}

/// Bound on messages in flight: a sender past it loses messages (as a full socket
/// buffer would), so a fault schedule cannot make the simulator's memory grow without limit.
pub const MAX_IN_FLIGHT: usize = 100_000;

impl Network {
    /// An empty network with `faults`.
    pub fn new(faults: NetworkFaults) -> Network {
        Network {
            in_flight: BTreeMap::new(),
            sequence: 0,
            blocked: BTreeSet::new(),
            faults,
            dropped: 0,
            sent: 0,
        }
    }

    /// Sends `message` at `now`.
    pub fn send(&mut self, rng: &mut ChaCha8Rng, now: u64, message: SimMessage) {
        self.sent += 1;
        if self.blocked.contains(&(message.from(), message.to()))
            || rng.random_range(0..1000) < self.faults.loss_per_mille
            || self.in_flight.len() >= MAX_IN_FLIGHT
        {
            self.dropped += 1;
            return;
        }
        let copies = if rng.random_range(0..1000) < self.faults.duplicate_per_mille {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = rng.random_range(self.faults.min_delay_ticks..=self.faults.max_delay_ticks);
            self.sequence += 1;
            self.in_flight
                .insert((now + delay, self.sequence), message.clone());
        }
    }

    /// Takes every message due at or before `now`, in delivery order.
    pub fn due(&mut self, now: u64) -> Vec<SimMessage> {
        let later = self.in_flight.split_off(&(now + 1, 0));
        std::mem::replace(&mut self.in_flight, later)
            .into_values()
            .collect()
    }

    /// Blocks the directed link `from -> to`.
    pub fn block(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// The links cut now: (from, to).
    pub fn blocked(&self) -> &BTreeSet<(NodeId, NodeId)> {
        &self.blocked
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Splits `nodes` into two sides that cannot talk (symmetric partition).
    pub fn partition(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
        for a in side_a {
            for b in side_b {
                self.block(*a, *b);
                self.block(*b, *a);
            }
        }
    }

    /// Messages currently in flight.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}
