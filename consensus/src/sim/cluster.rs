//! A minimal in-process cluster of Raft cores with instant, controllable delivery and no
//! storage faults: for scenario tests and the core benchmark. Everything a `Ready` asks
//! to persist is kept in memory as "durable", so a node can be restarted from it.

use crate::raft::{
    Config, HardState, LogEntry, Member, Membership, Message, NodeId, Raft, RaftConfig, Recovered,
    Role, Snapshot, SnapshotMeta, StubVotes,
};
use agora_core::{AccountId, Hash32};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// Node `i`'s id in a test cluster.
pub fn node_id(i: usize) -> NodeId {
    AccountId(Hash32([i as u8 + 1; 32]))
}

/// The stand-in public key of node `i`.
pub fn node_key(i: usize) -> Vec<u8> {
    vec![i as u8 + 1; 8]
}

/// A configuration with the given weights, node `i` having weight `weights[i]`.
pub fn weighted_config(weights: &[u64]) -> Config {
    Config {
        members: weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                (
                    node_id(i),
                    Member {
                        weight: *w,
                        public_key: node_key(i),
                        peer: Vec::new(),
                    },
                )
            })
            .collect(),
        witnesses: Default::default(),
    }
}

/// The cluster.
pub struct Cluster {
    /// The cores (`None` while stopped).
    pub nodes: Vec<Option<Raft<StubVotes>>>,
    /// Entries each node applied, in order.
    pub applied: Vec<Vec<LogEntry>>,
    /// Read indexes each node was given, with their contexts.
    pub reads: Vec<Vec<(u64, Vec<u8>)>>,
    durable: Vec<Recovered>,
    configs: Vec<RaftConfig>,
    genesis: Snapshot,
    queue: VecDeque<Message>,
    /// Nodes whose messages are dropped in both directions.
    pub isolated: BTreeSet<usize>,
    /// Messages delivered so far.
    pub delivered: u64,
}

impl Cluster {
    /// A cluster of `weights.len()` nodes, all in one configuration.
    pub fn new(weights: &[u64]) -> Cluster {
        Self::with(weights, |_| {})
    }

    /// Like [`Cluster::new`], adjusting each node's [`RaftConfig`].
    pub fn with(weights: &[u64], adjust: impl Fn(&mut RaftConfig)) -> Cluster {
        Self::with_spares(weights, 0, adjust)
    }

    /// Like [`Cluster::with`], plus `spares` running nodes (ids after the members') that
    /// are in no configuration until one adds them.
    pub fn with_spares(
        weights: &[u64],
        spares: usize,
        adjust: impl Fn(&mut RaftConfig),
    ) -> Cluster {
        Self::build(weighted_config(weights), spares, adjust)
    }

    /// Like [`Cluster::with_spares`], with the nodes at `witnesses` witnesses.
    pub fn with_witnesses(weights: &[u64], witnesses: &[usize], spares: usize) -> Cluster {
        let mut config = weighted_config(weights);
        config.witnesses = witnesses.iter().map(|i| node_id(*i)).collect();
        Self::build(config, spares, |_| {})
    }

    /// A cluster of `config`'s members plus `spares`, each core's tunables adjusted.
    pub fn build(config: Config, spares: usize, adjust: impl Fn(&mut RaftConfig)) -> Cluster {
        let weights = &config.members;
        let membership = Membership::single(config.clone());
        let genesis = Snapshot {
            meta: SnapshotMeta {
                index: 0,
                term: 0,
                membership,
                state_root: [0; 32],
            },
            data: Arc::new(Vec::new()),
        };
        let count = weights.len() + spares;
        let configs: Vec<RaftConfig> = (0..count)
            .map(|i| {
                let mut cfg = RaftConfig::new(node_id(i));
                adjust(&mut cfg);
                cfg
            })
            .collect();
        let durable: Vec<Recovered> = (0..count)
            .map(|_| Recovered {
                // As `agora-node init` leaves a new node: it has voted nowhere.
                hard_state: HardState {
                    proven: true,
                    ..HardState::default()
                },
                snapshot: Some(genesis.clone()),
                ..Recovered::default()
            })
            .collect();
        let mut cluster = Cluster {
            nodes: (0..count).map(|_| None).collect(),
            applied: vec![Vec::new(); count],
            reads: vec![Vec::new(); count],
            durable,
            configs,
            genesis: genesis.clone(),
            queue: VecDeque::new(),
            isolated: BTreeSet::new(),
            delivered: 0,
        };
        for i in 0..count {
            cluster.start(i);
        }
        cluster
    }

    /// (Re)starts node `i` from its durable state; it re-applies committed entries.
    pub fn start(&mut self, i: usize) {
        let raft = Raft::restart(
            self.configs[i].clone(),
            StubVotes::new(node_key(i)),
            // A new seed per start, as a real process draws one (its boot id with it).
            7 + i as u64 + self.delivered.wrapping_mul(1_000_003),
            self.durable[i].clone(),
        );
        self.applied[i].retain(|e| e.index <= raft.applied_index());
        self.nodes[i] = Some(raft);
    }

    /// Node `i` loses its storage: it will restart from the genesis snapshot alone, with
    /// no promise record.
    pub fn lose_storage(&mut self, i: usize) {
        self.durable[i] = Recovered {
            snapshot: Some(self.genesis.clone()),
            ..Recovered::default()
        };
    }

    /// Stops node `i` (its durable state stays).
    pub fn stop(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Node `i`'s core.
    pub fn node(&mut self, i: usize) -> &mut Raft<StubVotes> {
        self.nodes[i].as_mut().expect("node is running")
    }

    /// Index of the node that leads the highest term, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|i| {
                self.nodes[*i]
                    .as_ref()
                    .is_some_and(|r| r.role() == Role::Leader)
            })
            .max_by_key(|i| self.nodes[*i].as_ref().map(|r| r.term()))
    }

    /// One tick on every running node, then everything is delivered and processed.
    pub fn tick(&mut self) {
        for raft in self.nodes.iter_mut().flatten() {
            raft.tick();
        }
        self.settle();
    }

    /// Ticks until `done` holds; returns the ticks taken, or panics after `max`.
    pub fn tick_until(&mut self, max: u64, done: impl Fn(&Cluster) -> bool) -> u64 {
        for ticks in 0..max {
            if done(self) {
                return ticks;
            }
            self.tick();
        }
        assert!(done(self), "condition not reached within {max} ticks");
        max
    }

    /// Ticks until some node leads; returns it.
    pub fn elect(&mut self) -> usize {
        self.tick_until(500, |c| c.leader().is_some());
        self.leader().expect("elected")
    }

    /// Processes every node's `Ready` and delivers messages until nothing moves.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                moved |= self.process_ready(i);
            }
            while let Some(message) = self.queue.pop_front() {
                moved = true;
                // A message to a node that does not exist is lost, as on a network (a
                // fuzzed or forged message may name anyone).
                let Some(to) = (0..self.nodes.len()).find(|i| node_id(*i) == message.to) else {
                    continue;
                };
                let from = (0..self.nodes.len()).find(|i| node_id(*i) == message.from);
                if self.isolated.contains(&to) || from.is_some_and(|f| self.isolated.contains(&f)) {
                    continue;
                }
                if let Some(raft) = self.nodes[to].as_mut() {
                    self.delivered += 1;
                    raft.step(message);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Compacts every running node's log at its applied index and forgets the applied
    /// entries kept for inspection (so long benchmarks stay bounded).
    pub fn compact_all(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(raft) = self.nodes[i].as_mut() else {
                continue;
            };
            let applied = raft.applied_index();
            if applied > raft.log().snapshot().index {
                raft.compact(applied, [0; 32], Vec::new());
                let snapshot = raft.latest_snapshot().expect("just taken").clone();
                self.durable[i].entries.retain(|e| e.index > applied);
                self.durable[i].snapshot = Some(snapshot);
            }
            self.applied[i].clear();
        }
    }

    /// Delivers a message as if it came from the network.
    pub fn inject(&mut self, message: Message) {
        self.queue.push_back(message);
        self.settle();
    }

    fn process_ready(&mut self, i: usize) -> bool {
        let Some(raft) = self.nodes[i].as_mut() else {
            return false;
        };
        if !raft.has_ready() {
            return false;
        }
        let ready = raft.ready();
        let durable = &mut self.durable[i];
        if let Some(snapshot) = &ready.snapshot {
            durable.entries.retain(|e| e.index > snapshot.meta.index);
            durable.snapshot = Some(snapshot.clone());
            self.applied[i].clear();
        }
        if let Some(hard_state) = ready.hard_state {
            durable.hard_state = hard_state;
        }
        if let Some(first) = ready.entries.first() {
            durable.entries.retain(|e| e.index < first.index);
            durable.entries.extend(ready.entries.iter().cloned());
        }
        self.queue.extend(ready.messages.iter().cloned());
        self.applied[i].extend(ready.committed_entries.iter().cloned());
        for read in &ready.read_states {
            self.reads[i].push((read.index, read.context.clone()));
        }
        raft.advance(ready);
        true
    }
}
