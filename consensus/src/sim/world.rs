//! The simulated cluster. One seed drives everything: the node count and weights, the
//! network's delays and faults, partitions, crashes (which lose what a `Ready` had not made
//! durable), clock skew, configuration changes, snapshots, client proposals and reads.
//! A safety phase with faults is followed by a liveness phase with faults healed, which
//! must converge within a bound.

use crate::app::LedgerApp;
use crate::raft::{
    Config, Index, LogEntry, Member, Membership, Message, MessageBody, MlDsaVotes, NodeId, Raft,
    RaftConfig, Role, Snapshot, SnapshotMeta, StubVotes, VoteCrypto,
};
use crate::sim::checker::{entry_digest, Checker, Violation};
use crate::sim::network::{Network, NetworkFaults};
use crate::sim::{SimOptions, SimReport};
use crate::storage::memory::MemoryStore;
use agora_core::encoding::Canonical;
use agora_core::genesis::{Genesis, GenesisAccount, GenesisValidator};
use agora_core::tx::{Action, Sender, Transaction};
use agora_core::vectors::seeded_key;
use agora_core::{AccountId, Amount, Hash32, KeyKind, Ledger, Params, SecretKey};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha3::{Digest, Sha3_256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Entries between local snapshots (small, so snapshots and compaction happen often).
const SNAPSHOT_INTERVAL_ENTRIES: u64 = 150;
/// A term no honest node reaches in a run; the outsider uses it.
const OUTSIDER_TERM: u64 = 1_000_000;

type Core = Raft<Box<dyn VoteCrypto>>;

struct SimNode {
    id: NodeId,
    key: SecretKey,
    public_key: Vec<u8>,
    clock_rate_percent: u64,
    local_ticks: u64,
    raft: Option<Core>,
    app: Option<LedgerApp>,
    store: MemoryStore,
    restart_at: u64,
    incarnation: u64,
    last_term: u64,
    last_commit: Index,
    led_term: Option<u64>,
    /// This incarnation's own proposals awaiting apply: index -> digest.
    proposals: BTreeMap<Index, Hash32>,
    /// Read states received, awaiting apply: (read id, index).
    reads: Vec<(u64, Index)>,
}

pub(crate) struct World {
    opts: SimOptions,
    rng: ChaCha8Rng,
    now: u64,
    nodes: Vec<SimNode>,
    network: Network,
    checker: Checker,
    genesis_ledger: Ledger,
    client: SecretKey,
    reads: BTreeMap<u64, Index>,
    next_read_id: u64,
    trace: Sha3_256,
    faults_on: bool,
    outsider: SecretKey,
    next_partition_change: u64,
    next_config_change: u64,
    lease_reads: bool,
    pub(crate) report: SimReport,
}

fn fail(property: &'static str, detail: String) -> Violation {
    Violation { property, detail }
}

impl World {
    pub(crate) fn new(opts: SimOptions) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let count = opts.node_count.unwrap_or_else(|| rng.random_range(3..=7));
        let mut weights: Vec<u64> = if opts.distinct_weights {
            let mut w: Vec<u64> = (1..=count as u64).map(|i| i * 10).collect();
            w.shuffle(&mut rng);
            w
        } else {
            (0..count).map(|_| rng.random_range(1..=10)).collect()
        };
        if weights.iter().all(|w| *w == 0) {
            weights[0] = 1;
        }
        let keys: Vec<SecretKey> = (0..count)
            .map(|i| seeded_key(KeyKind::MlDsa44, &format!("sim-{}-{i}", opts.seed)))
            .collect();
        let client = seeded_key(KeyKind::MlDsa44, &format!("sim-client-{}", opts.seed));
        let genesis = Genesis {
            chain_name: format!("agora-sim-{}", opts.seed),
            params: Params::default(),
            accounts: vec![GenesisAccount {
                account: AccountId::from_public_key(client.public_key()),
                balance: Amount(1 << 60),
                staked: Amount::ZERO,
            }],
            validators: keys
                .iter()
                .zip(&weights)
                .map(|(k, w)| GenesisValidator {
                    public_key: k.public_key().clone(),
                    peer: vec![],
                    base_reputation: *w,
                })
                .collect(),
            treasury: Amount::ZERO,
        }
        .normalized()
        .expect("simulated genesis is valid");
        let genesis_ledger = Ledger::from_genesis(&genesis);
        let config = Config {
            members: keys
                .iter()
                .zip(&weights)
                .map(|(k, w)| {
                    (
                        AccountId::from_public_key(k.public_key()),
                        Member {
                            weight: *w,
                            public_key: borsh::to_vec(k.public_key()).unwrap(),
                        },
                    )
                })
                .collect(),
        };
        let genesis_snapshot = Snapshot {
            meta: SnapshotMeta {
                index: 0,
                term: 0,
                membership: Membership::single(config),
                state_root: genesis_ledger.state_root().0,
            },
            data: Arc::new(Vec::new()),
        };
        let faults = if opts.faults {
            let max_delay = rng.random_range(1..=8);
            NetworkFaults {
                loss_per_mille: rng.random_range(0..=50),
                duplicate_per_mille: rng.random_range(0..=30),
                min_delay_ticks: 1,
                max_delay_ticks: max_delay,
            }
        } else {
            NetworkFaults::HEALTHY
        };
        let nodes = keys
            .into_iter()
            .map(|key| SimNode {
                id: AccountId::from_public_key(key.public_key()),
                public_key: borsh::to_vec(key.public_key()).unwrap(),
                clock_rate_percent: if opts.faults {
                    rng.random_range(80..=120)
                } else {
                    100
                },
                local_ticks: 0,
                raft: None,
                app: None,
                store: MemoryStore::new(genesis_snapshot.clone()),
                restart_at: 0,
                incarnation: 0,
                last_term: 0,
                last_commit: 0,
                led_term: None,
                proposals: BTreeMap::new(),
                reads: Vec::new(),
                key,
            })
            .collect();
        let lease_reads = rng.random_bool(0.5);
        let report = SimReport {
            seed: opts.seed,
            nodes: count,
            ..SimReport::default()
        };
        let mut world = World {
            rng,
            now: 0,
            nodes,
            network: Network::new(faults),
            checker: Checker::default(),
            genesis_ledger,
            client,
            reads: BTreeMap::new(),
            next_read_id: 0,
            trace: Sha3_256::new(),
            faults_on: opts.faults,
            outsider: seeded_key(KeyKind::MlDsa44, "sim-outsider"),
            next_partition_change: 300,
            next_config_change: 1_000,
            lease_reads,
            report,
            opts,
        };
        for i in 0..world.nodes.len() {
            world.start(i);
        }
        world
    }

    fn raft_config(&self, id: NodeId) -> RaftConfig {
        let mut cfg = RaftConfig::new(id);
        cfg.lease_reads = self.lease_reads;
        cfg.snapshot_chunk_bytes = 4 << 10;
        cfg.election_noop = self.opts.election_noop;
        #[cfg(any(test, feature = "inject-bugs"))]
        {
            cfg.bugs = self.opts.bugs;
        }
        cfg
    }

    fn start(&mut self, i: usize) {
        let seed = self.rng.random::<u64>();
        let cfg = self.raft_config(self.nodes[i].id);
        let node = &mut self.nodes[i];
        let crypto: Box<dyn VoteCrypto> = if self.opts.real_crypto {
            Box::new(MlDsaVotes::new(node.key.clone()))
        } else {
            Box::new(StubVotes::new(node.public_key.clone()))
        };
        let recovered = node.store.recover();
        let snapshot = node.store.snapshot().expect("genesis at least").clone();
        let ledger = if snapshot.meta.index == 0 {
            self.genesis_ledger.clone()
        } else {
            Ledger::restore(&snapshot.data, &Hash32(snapshot.meta.state_root))
                .expect("a durable snapshot restores")
        };
        let raft = Raft::restart(cfg, crypto, seed, recovered);
        node.last_term = raft.term();
        node.last_commit = raft.commit_index();
        node.raft = Some(raft);
        node.app = Some(LedgerApp::new(ledger));
        node.incarnation += 1;
        node.led_term = None;
        node.proposals.clear();
        node.reads.clear();
    }

    fn crash(&mut self, i: usize) {
        let downtime = self.rng.random_range(20..=400);
        let node = &mut self.nodes[i];
        node.raft = None;
        node.app = None;
        node.restart_at = self.now + downtime;
        self.report.crashes += 1;
    }

    /// Runs both phases.
    pub(crate) fn run(&mut self) -> Result<(), Violation> {
        for _ in 0..self.opts.safety_ticks {
            self.now += 1;
            if self.faults_on {
                self.inject_faults();
            }
            self.step()?;
            self.observe_leadership();
        }
        self.liveness()
    }

    fn step(&mut self) -> Result<(), Violation> {
        // Clocks: each node ticks at its own rate (skew).
        for i in 0..self.nodes.len() {
            let target = self.now * self.nodes[i].clock_rate_percent / 100;
            let node = &mut self.nodes[i];
            if let Some(raft) = node.raft.as_mut() {
                while node.local_ticks < target {
                    node.local_ticks += 1;
                    raft.tick();
                }
            } else {
                node.local_ticks = target;
            }
        }
        for message in self.network.due(self.now) {
            let Some(i) = self.nodes.iter().position(|n| n.id == message.to) else {
                continue;
            };
            if let Some(raft) = self.nodes[i].raft.as_mut() {
                self.trace.update(self.now.to_le_bytes());
                self.trace.update(message.signing_bytes());
                raft.step(message);
            }
        }
        self.clients()?;
        for i in 0..self.nodes.len() {
            self.drain_ready(i)?;
            self.check_node(i)?;
        }
        if self.now % 10 == 0 {
            let logs: Vec<(NodeId, &crate::raft::log::RaftLog)> = self
                .nodes
                .iter()
                .filter_map(|n| n.raft.as_ref().map(|r| (n.id, r.log())))
                .collect();
            self.checker.check_log_prefixes(&logs)?;
        }
        Ok(())
    }

    fn drain_ready(&mut self, i: usize) -> Result<(), Violation> {
        for _ in 0..8 {
            let Some(raft) = self.nodes[i].raft.as_mut() else {
                return Ok(());
            };
            if !raft.has_ready() {
                break;
            }
            let ready = raft.ready();
            // A crash in the middle of handling a Ready: before the sync nothing is durable
            // and nothing was sent; after it, the messages may still be lost.
            let crash_point = if self.faults_on && self.rng.random_range(0..20_000) == 0 {
                Some(self.rng.random_bool(0.5))
            } else {
                None
            };
            if crash_point == Some(false) {
                self.crash(i);
                return Ok(());
            }
            let id = self.nodes[i].id;
            let node = &mut self.nodes[i];
            if let Some(snapshot) = &ready.snapshot {
                node.store.save_snapshot(snapshot.clone());
            }
            if let Some(hard_state) = ready.hard_state {
                node.store.save_hard_state(hard_state);
            }
            node.store
                .append(&ready.entries)
                .expect("the core hands out contiguous entries");
            self.checker.on_append(id, &ready.entries)?;
            if crash_point == Some(true) {
                self.crash(i);
                return Ok(());
            }
            for message in &ready.messages {
                self.send(message.clone());
            }
            if let Some(snapshot) = &ready.snapshot {
                let ledger = Ledger::restore(&snapshot.data, &Hash32(snapshot.meta.state_root))
                    .map_err(|e| {
                        fail(
                            "snapshot root checked before install",
                            format!("{id:?}: {e}"),
                        )
                    })?;
                self.nodes[i].app = Some(LedgerApp::new(ledger));
                self.report.snapshots_installed += 1;
            }
            for entry in &ready.committed_entries {
                self.apply(i, entry)?;
            }
            let node = &mut self.nodes[i];
            for read in &ready.read_states {
                let read_id =
                    u64::from_le_bytes(read.context.as_slice().try_into().expect("8-byte context"));
                node.reads.push((read_id, read.index));
            }
            let raft = node.raft.as_mut().expect("alive");
            raft.advance(ready);
            self.serve_reads(i)?;
            self.after_advance(i)?;
        }
        Ok(())
    }

    fn apply(&mut self, i: usize, entry: &LogEntry) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        let id = node.id;
        let app = node.app.as_mut().expect("alive");
        let root = app.apply(entry).map_err(|halt| {
            fail(
                "ledger did not halt",
                format!("{id:?} halted at index {}: {halt}", entry.index),
            )
        })?;
        self.trace.update(entry.index.to_le_bytes());
        self.trace.update(root.0);
        self.checker.on_apply(id, entry, root)?;
        let digest = entry_digest(entry);
        if self.nodes[i].proposals.remove(&entry.index) == Some(digest) {
            self.checker.on_acknowledge(entry.index, digest)?;
            self.report.acknowledged += 1;
        }
        Ok(())
    }

    fn serve_reads(&mut self, i: usize) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        let applied = node.raft.as_ref().map_or(0, |r| r.applied_index());
        let (ready, waiting): (Vec<_>, Vec<_>) = node
            .reads
            .drain(..)
            .partition(|(_, index)| *index <= applied);
        node.reads = waiting;
        let id = node.id;
        for (read_id, index) in ready {
            if let Some(acknowledged) = self.reads.remove(&read_id) {
                self.checker.on_read_served(id, index, acknowledged)?;
                self.report.reads_served += 1;
            }
        }
        Ok(())
    }

    fn after_advance(&mut self, i: usize) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        let raft = node.raft.as_mut().expect("alive");
        let commit = raft.commit_index();
        if commit > node.last_commit {
            self.checker
                .on_commit(node.id, raft.log(), node.last_commit + 1, commit)?;
        }
        let applied = raft.applied_index();
        if applied >= raft.log().snapshot().index + SNAPSHOT_INTERVAL_ENTRIES {
            let ledger = node.app.as_ref().expect("alive").ledger();
            assert_eq!(
                ledger.height(),
                applied,
                "the ledger has applied what Raft handed out"
            );
            raft.compact(
                applied,
                ledger.state_root().0,
                ledger.snapshot().to_canonical_bytes(),
            );
            node.store
                .save_snapshot(raft.latest_snapshot().expect("just taken").clone());
        }
        Ok(())
    }

    fn send(&mut self, mut message: Message) {
        if self.faults_on && message.body.is_vote() && self.rng.random_range(0..200) == 0 {
            // A corrupted or forged vote must be dropped by its receiver.
            match message.signature.first_mut() {
                Some(byte) => *byte ^= 0x55,
                None => message.signature.push(1),
            }
        }
        self.network.send(&mut self.rng, self.now, message);
    }

    fn check_node(&mut self, i: usize) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        let Some(raft) = node.raft.as_ref() else {
            return Ok(());
        };
        Checker::check_monotonic(node.id, "term", node.last_term, raft.term())?;
        Checker::check_monotonic(
            node.id,
            "commit index",
            node.last_commit,
            raft.commit_index(),
        )?;
        if raft.term() >= OUTSIDER_TERM {
            return Err(fail(
                "outsiders cannot influence consensus",
                format!("{:?} adopted the outsider's term", node.id),
            ));
        }
        node.last_term = raft.term();
        node.last_commit = raft.commit_index();
        if raft.role() == Role::Leader && node.led_term != Some(raft.term()) {
            node.led_term = Some(raft.term());
            let (id, term) = (node.id, raft.term());
            self.checker.on_leader(term, id)?;
            self.checker
                .check_leader_completeness(id, term, raft.log())?;
            self.trace.update(b"leader");
            self.trace.update(id.0.as_bytes());
            self.trace.update(term.to_le_bytes());
        }
        if raft.role() == Role::Leader && self.now % 50 == 0 {
            Checker::check_single_config_change(node.id, raft.log())?;
        }
        Ok(())
    }

    // ---- clients --------------------------------------------------------------------

    fn clients(&mut self) -> Result<(), Violation> {
        if self.rng.random_range(0..8) == 0 {
            let i = self.rng.random_range(0..self.nodes.len());
            self.propose_block(i);
        }
        if self.rng.random_range(0..10) == 0 {
            let i = self.rng.random_range(0..self.nodes.len());
            self.read(i);
        }
        Ok(())
    }

    fn propose_block(&mut self, i: usize) -> Option<Index> {
        let with_tx = self.rng.random_range(0..4) == 0;
        let randomness = self.rng.random::<[u8; 32]>();
        let node = &self.nodes[i];
        let (raft, app) = (node.raft.as_ref()?, node.app.as_ref()?);
        let index = raft.next_proposal_index()?;
        let txs = if with_tx {
            vec![self.client_transfer(app.ledger(), randomness)]
        } else {
            vec![]
        };
        let payload = app.build_block(raft.log(), index, &node.key, txs, randomness)?;
        let node = &mut self.nodes[i];
        let raft = node.raft.as_mut()?;
        let term = raft.term();
        let index = raft.propose(payload.clone()).ok()?;
        let entry = LogEntry {
            index,
            term,
            data: crate::raft::EntryData::Normal(payload),
        };
        node.proposals.insert(index, entry_digest(&entry));
        Some(index)
    }

    fn client_transfer(&self, ledger: &Ledger, randomness: [u8; 32]) -> Vec<u8> {
        let id = AccountId::from_public_key(self.client.public_key());
        let state = ledger.state();
        let sender = if state.account_keys.contains_key(&id) {
            Sender::Account(id)
        } else {
            Sender::Register(self.client.public_key().clone())
        };
        let nonce = state.accounts.get(&id).map_or(0, |a| a.nonce);
        let to = AccountId(Hash32([(randomness[0] % 16) + 1; 32]));
        Transaction {
            chain_id: ledger.chain_id(),
            sender,
            nonce,
            action: Action::Transfer {
                to,
                amount: Amount(1),
            },
        }
        .sign(&self.client, randomness)
        .to_canonical_bytes()
    }

    fn read(&mut self, i: usize) {
        let read_id = self.next_read_id;
        let acknowledged = self.checker.highest_acknowledged();
        let Some(raft) = self.nodes[i].raft.as_mut() else {
            return;
        };
        if raft.read_index(read_id.to_le_bytes().to_vec()).is_ok() {
            self.next_read_id += 1;
            self.reads.insert(read_id, acknowledged);
        }
    }

    // ---- faults ---------------------------------------------------------------------

    fn inject_faults(&mut self) {
        let count = self.nodes.len();
        for i in 0..count {
            if self.nodes[i].raft.is_none() && self.now >= self.nodes[i].restart_at {
                self.start(i);
            }
        }
        if self.rng.random_range(0..1_500) == 0 {
            let i = self.rng.random_range(0..count);
            if self.nodes[i].raft.is_some() {
                self.crash(i);
            }
        }
        if self.now >= self.next_partition_change {
            self.next_partition_change = self.now + self.rng.random_range(200..=1_500);
            self.change_partitions();
        }
        if self.now >= self.next_config_change && self.opts.config_changes {
            self.next_config_change = self.now + self.rng.random_range(500..=2_000);
            self.change_config();
        }
        if self.rng.random_range(0..2_000) == 0 {
            self.outsider_attack();
        }
    }

    fn change_partitions(&mut self) {
        self.network.heal();
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        match self.rng.random_range(0..4) {
            0 | 1 => {} // healed
            2 => {
                let mut shuffled = ids.clone();
                shuffled.shuffle(&mut self.rng);
                let cut = self.rng.random_range(1..shuffled.len());
                self.network.partition(&shuffled[..cut], &shuffled[cut..]);
            }
            _ => {
                for _ in 0..self.rng.random_range(1..=ids.len()) {
                    let from = ids[self.rng.random_range(0..ids.len())];
                    let to = ids[self.rng.random_range(0..ids.len())];
                    self.network.block(from, to);
                }
            }
        }
        self.report.partitions += 1;
    }

    /// Reweights the current members (some become learners) and sometimes removes one.
    /// A removed node is never re-added under the same id (see `Raft::propose_config`).
    fn change_config(&mut self) {
        let Some(leader) = self
            .nodes
            .iter()
            .position(|n| n.raft.as_ref().is_some_and(|r| r.role() == Role::Leader))
        else {
            return;
        };
        let current = self.nodes[leader]
            .raft
            .as_ref()
            .expect("leader is alive")
            .membership()
            .incoming
            .clone();
        let mut members = BTreeMap::new();
        let mut removals_left = current.members.len().saturating_sub(3);
        for (id, member) in &current.members {
            let roll = self.rng.random_range(0..20);
            let weight = match roll {
                0 if removals_left > 0 => {
                    removals_left -= 1;
                    continue; // removed from the configuration for good
                }
                1 | 2 => 0, // learner
                _ => self.rng.random_range(1..=10),
            };
            members.insert(
                *id,
                Member {
                    weight,
                    public_key: member.public_key.clone(),
                },
            );
        }
        if !members.values().any(|m| m.weight > 0) {
            let first = members
                .values_mut()
                .next()
                .expect("at least one member stays");
            first.weight = 1;
        }
        let raft = self.nodes[leader].raft.as_mut().expect("leader is alive");
        if raft.propose_config(Config { members }).is_ok() {
            self.report.config_changes += 1;
        }
    }

    /// A peer outside the configuration, with a valid key of its own, tries to take over.
    fn outsider_attack(&mut self) {
        let outsider = AccountId::from_public_key(self.outsider.public_key());
        let target = self.nodes[self.rng.random_range(0..self.nodes.len())].id;
        let mut message = Message {
            from: outsider,
            to: target,
            term: OUTSIDER_TERM,
            body: MessageBody::RequestVote {
                last_index: u64::MAX / 2,
                last_term: OUTSIDER_TERM,
                transfer: true,
            },
            signature: Vec::new(),
        };
        message.signature = StubVotes::new(borsh::to_vec(self.outsider.public_key()).unwrap())
            .sign(&message.signing_bytes(), [0; 32]);
        self.network.send(&mut self.rng, self.now, message);
        let append = Message {
            from: outsider,
            to: target,
            term: OUTSIDER_TERM,
            body: MessageBody::AppendEntries {
                prev_index: 0,
                prev_term: 0,
                entries: vec![],
                commit: u64::MAX / 2,
            },
            signature: Vec::new(),
        };
        self.network.send(&mut self.rng, self.now, append);
    }

    fn observe_leadership(&mut self) {
        let leader = self
            .nodes
            .iter()
            .filter_map(|n| {
                n.raft
                    .as_ref()
                    .filter(|r| r.role() == Role::Leader)
                    .map(|r| (r.term(), r))
            })
            .max_by_key(|(term, _)| *term)
            .map(|(_, r)| r);
        let Some(raft) = leader else { return };
        self.report.leader_ticks += 1;
        let top = raft
            .membership()
            .incoming
            .voters()
            .max_by(|a, b| a.1.cmp(&b.1))
            .map(|(id, w)| (*id, w));
        if top.is_some_and(|(_, w)| raft.membership().incoming.weight(&raft.id()) == w) {
            self.report.top_weight_leader_ticks += 1;
        }
    }

    // ---- liveness ---------------------------------------------------------------------

    /// Heal everything, then the cluster must elect a leader, commit a new proposal and
    /// bring every member to the same applied index and root within the bound.
    fn liveness(&mut self) -> Result<(), Violation> {
        self.faults_on = false;
        self.network.heal();
        self.network.faults = NetworkFaults::HEALTHY;
        for i in 0..self.nodes.len() {
            if self.nodes[i].raft.is_none() {
                self.start(i);
            }
        }
        let start = self.now;
        let mut marker: Option<Index> = None;
        while self.now < start + self.opts.liveness_bound_ticks {
            self.now += 1;
            self.step()?;
            let Some(leader) = self
                .nodes
                .iter()
                .position(|n| n.raft.as_ref().is_some_and(|r| r.role() == Role::Leader))
            else {
                continue;
            };
            match marker {
                Some(index)
                    if self.nodes[leader].raft.as_ref().is_some_and(|r| {
                        r.log().term_at(index).is_none_or(|t| t != r.term())
                            && r.commit_index() < index
                    }) =>
                {
                    marker = None;
                }
                None => marker = self.propose_block(leader),
                Some(_) => {}
            }
            if let Some(index) = marker {
                if self.converged(leader, index) {
                    self.report.liveness_ticks = self.now - start;
                    self.report.committed_index = self.nodes[leader]
                        .raft
                        .as_ref()
                        .map_or(0, |r| r.commit_index());
                    self.report.trace_hash = Hash32(self.trace.clone().finalize().into());
                    return Ok(());
                }
            }
        }
        Err(fail(
            "liveness",
            format!(
                "no convergence within {} ticks of healing (marker proposed: {marker:?}); cluster:\n{}",
                self.opts.liveness_bound_ticks,
                self.describe()
            ),
        ))
    }

    /// One line per node, for failure reports.
    fn describe(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match &node.raft {
                None => out.push_str(&format!("  {:?}: down\n", node.id)),
                Some(r) => out.push_str(&format!(
                    "  {:?}: {:?} term {} leader {:?} last {} commit {} applied {} snapshot {} joint {} member {} voter {} weight {} ledger {}\n",
                    node.id,
                    r.role(),
                    r.term(),
                    r.leader(),
                    r.last_index(),
                    r.commit_index(),
                    r.applied_index(),
                    r.log().snapshot().index,
                    r.membership().is_joint(),
                    r.membership().contains(&node.id),
                    r.membership().is_voter(&node.id),
                    r.membership().incoming.weight(&node.id),
                    node.app.as_ref().map_or(0, |a| a.ledger().height()),
                )),
            }
            if let Some(r) = node.raft.as_ref().filter(|r| r.role() == Role::Leader) {
                for (id, p) in r.progress() {
                    out.push_str(&format!("    -> {id:?}: {:?} match {} next {} probe_sent {} inflight {} active {}\n", p.state, p.match_index, p.next_index, p.probe_sent, p.inflight.len(), p.recent_active));
                }
            }
        }
        out
    }

    fn converged(&self, leader: usize, marker: Index) -> bool {
        let raft = self.nodes[leader].raft.as_ref().expect("leader alive");
        let commit = raft.commit_index();
        if commit < marker || raft.membership().is_joint() {
            return false;
        }
        let root = self.nodes[leader]
            .app
            .as_ref()
            .map(|a| a.ledger().state_root());
        self.nodes
            .iter()
            .filter(|n| raft.membership().contains(&n.id))
            .all(|n| {
                n.raft.as_ref().is_some_and(|r| r.applied_index() == commit)
                    && n.app.as_ref().map(|a| a.ledger().state_root()) == root
            })
    }

    pub(crate) fn finish_report(&mut self) {
        let counters = self
            .nodes
            .iter()
            .filter_map(|n| n.raft.as_ref())
            .map(|r| r.counters().clone());
        for c in counters {
            self.report.dropped_bad_vote_signature += c.dropped_bad_vote_signature;
            self.report.dropped_non_member += c.dropped_non_member;
            self.report.elections += c.elections;
        }
        self.report.ticks = self.now;
        self.report.messages = self.network.sent;
    }

    pub(crate) fn now(&self) -> u64 {
        self.now
    }
}
