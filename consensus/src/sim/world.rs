//! The simulated cluster. One seed drives everything: the node count and weights, the
//! network's delays and faults, partitions, crashes, the disk (slow writes, a crash that
//! keeps only a prefix of a batch's writes, a failed fsync), clock skew, clients that
//! submit transactions and wait for their commit, and linearizable reads. Every node is
//! the real [`Replica`] — the same code `agora-node` runs — and the world carries out its
//! [`Actions`] as the node's shell does, against simulated storage and network. A safety
//! phase with faults is followed by a liveness phase with faults healed, which must
//! converge within a bound.

use crate::raft::{Membership, MlDsaVotes, NodeId, RaftConfig, Role, StubVotes, VoteCrypto};
use crate::replica::{
    genesis_snapshot, Actions, Notice, Replica, ReplicaConfig, ReplicaParts, Request, RequestId,
    VerifyId, Write,
};
use crate::sim::checker::{Checker, Violation};
use crate::sim::clients::Outstanding;
use crate::sim::network::{Network, NetworkFaults, SimMessage};
use crate::sim::{SimOptions, SimReport};
use crate::storage::memory::MemoryStore;
use agora_api::ApiError;
use agora_core::genesis::{Genesis, GenesisAccount, GenesisValidator, GenesisWitness};
use agora_core::{AccountId, Amount, KeyKind, Ledger, Params, ProposalKind, SecretKey};
use agora_testkit::seeded_key;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha3::{Digest, Sha3_256};

mod faults;
mod liveness;
use std::collections::{BTreeMap, VecDeque};

/// Entries between local snapshots (small, so snapshots and compaction happen often).
const SNAPSHOT_INTERVAL_ENTRIES: u64 = 150;
/// A term no honest node reaches in a run; the outsider uses it.
const OUTSIDER_TERM: u64 = 1_000_000;
/// Client accounts, each with at most one transaction outstanding.
const CLIENTS: usize = 4;
/// The client that holds the stake and makes governance proposals.
pub(super) const GOVERNOR: usize = 0;
/// Inputs a node whose disk is busy buffers, at most (a full channel in the shell).
const MAX_INBOX: usize = 4_096;

type SimReplica = Replica<Box<dyn VoteCrypto>>;

/// What reaches a node.
pub(super) enum Input {
    Message(Box<SimMessage>),
    Request(RequestId, Request),
    Verified(VerifyId, bool),
    /// The transport's connection to this validator closed.
    Disconnected(NodeId),
}

pub(super) struct SimNode {
    pub(super) id: NodeId,
    /// A witness at some point of the run (of the genesis, or added by governance):
    /// clients never send it requests (it serves none, nor does it once removed).
    pub(super) witness: bool,
    pub(super) key: SecretKey,
    public_key: Vec<u8>,
    pub(super) clock_rate_percent: u64,
    pub(super) local_ticks: u64,
    pub(super) replica: Option<SimReplica>,
    /// What survives a crash.
    pub(super) store: MemoryStore,
    /// A copy of `store` taken earlier, which an operator may restore after a disk loss.
    pub(super) backup: Option<MemoryStore>,
    /// A batch whose writes the disk is still carrying out, and when it finishes.
    pub(super) disk: Option<(u64, Actions)>,
    /// Inputs that arrived while the disk was busy.
    pub(super) inbox: VecDeque<Input>,
    /// Signature checks running on the node's crypto threads: (done at, id, result).
    pub(super) verifying: Vec<(u64, VerifyId, bool)>,
    pub(super) restart_at: u64,
    pub(super) last_term: u64,
    pub(super) last_commit: u64,
    pub(super) led_term: Option<u64>,
}

/// The governance changes a run makes, in order, and the vote it owes.
pub(super) struct Governance {
    /// (not before this tick, the proposal).
    pub(super) plan: VecDeque<(u64, ProposalKind)>,
    /// A proposal of the governor's waiting for its vote.
    pub(super) vote_due: Option<u64>,
}

pub(crate) struct World {
    pub(super) opts: SimOptions,
    pub(super) rng: ChaCha8Rng,
    pub(super) now: u64,
    pub(super) nodes: Vec<SimNode>,
    pub(super) network: Network,
    pub(super) checker: Checker,
    pub(super) genesis_ledger: Ledger,
    /// What a node that lost its disk starts from: the genesis snapshot, no promise.
    pub(super) empty_store: MemoryStore,
    pub(super) clients: Vec<SecretKey>,
    /// Clients with a submission outstanding.
    pub(super) busy_clients: Vec<bool>,
    /// Whether clients read at random (tests that count reads turn it off).
    pub(super) random_reads: bool,
    /// Requests clients are waiting on, with the node each went to.
    pub(super) outstanding: BTreeMap<RequestId, (usize, Outstanding)>,
    pub(super) next_request: RequestId,
    pub(super) trace: Sha3_256,
    pub(super) faults_on: bool,
    pub(super) outsider: SecretKey,
    pub(super) next_partition_change: u64,
    pub(super) lease_reads: bool,
    /// Governance changes still to make.
    pub(super) governance: Governance,
    /// When the liveness phase healed every fault.
    pub(super) healed_at: Option<u64>,
    /// The latest acknowledgement of a commit to a client: (tick, height).
    pub(super) latest_ack: Option<(u64, u64)>,
    pub(crate) report: SimReport,
    /// Node faults this world decided, for the other zones to share (the first zone's,
    /// with several zones).
    pub(super) fault_log: Option<Vec<NodeFault>>,
    /// Another zone decides this world's crashes, backups and partitions.
    pub(super) shares_faults: bool,
    /// A node whose every write is slow (tests of what may not wait on a disk).
    pub(super) slow_disk: Option<usize>,
}

/// A fault that strikes a node, not a zone: every zone it serves suffers it at once.
#[derive(Clone, Debug)]
pub(super) enum NodeFault {
    /// The process crashed for `downtime` ticks; `disk` is the draw that decided its disk.
    Crash {
        node: usize,
        downtime: u64,
        disk: u32,
    },
    /// An operator copied the node's data directory.
    Backup { node: usize },
    /// The links now cut.
    Partition(std::collections::BTreeSet<(NodeId, NodeId)>),
}

pub(super) fn fail(property: &'static str, detail: String) -> Violation {
    Violation { property, detail }
}

impl World {
    pub(crate) fn new(opts: SimOptions) -> World {
        // Zone k > 0 of a seed draws from a stream of its own; its nodes' keys are the
        // first zone's (the same validators serve every zone).
        let mut rng = ChaCha8Rng::seed_from_u64(
            opts.seed ^ (opts.zone as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let count = opts.node_count.unwrap_or_else(|| rng.random_range(3..=7));
        let weights: Vec<u64> = if opts.distinct_weights {
            let mut w: Vec<u64> = (1..=count as u64).map(|i| i * 10).collect();
            w.shuffle(&mut rng);
            w
        } else {
            (0..count).map(|_| rng.random_range(1..=10)).collect()
        };
        let keys: Vec<SecretKey> = (0..count)
            .map(|i| seeded_key(KeyKind::MlDsa44, &format!("sim-{}-{i}", opts.seed)))
            .collect();
        // With faults on, governance changes the validator set during the run: a spare
        // node, running from the start but in no configuration, is voted in; a validator
        // is voted out; a reputation is set.
        let governance = opts.governance && opts.faults && opts.election_noop;
        let spare =
            governance.then(|| seeded_key(KeyKind::MlDsa44, &format!("sim-{}-spare", opts.seed)));
        let witness_keys: Vec<SecretKey> = (0..opts.witnesses)
            .map(|j| seeded_key(KeyKind::MlDsa44, &format!("sim-{}-witness-{j}", opts.seed)))
            .collect();
        let witness_weights: Vec<u64> = witness_keys
            .iter()
            .map(|_| rng.random_range(1..=10))
            .collect();
        // With witnesses, governance also adds a witness (a second spare) and later removes
        // it: it keeps running, a non-member whose ledger lags its log. (Not a genesis
        // witness: a genesis member is how a member that lost its disk, and restarts
        // knowing only the genesis configuration, finds the current leader.)
        let spare_witness = (governance && opts.witnesses > 0).then(|| {
            seeded_key(
                KeyKind::MlDsa44,
                &format!("sim-{}-spare-witness", opts.seed),
            )
        });
        let clients: Vec<SecretKey> = (0..CLIENTS)
            .map(|i| seeded_key(KeyKind::MlDsa44, &format!("sim-client-{}-{i}", opts.seed)))
            .collect();
        let genesis = Genesis {
            witnesses: witness_keys
                .iter()
                .zip(&witness_weights)
                .map(|(k, w)| GenesisWitness {
                    public_key: k.public_key().clone(),
                    peer: vec![],
                    weight: *w,
                })
                .collect(),
            chain_name: if opts.zone == 0 {
                format!("agora-sim-{}", opts.seed)
            } else {
                format!("agora-sim-{}-zone-{}", opts.seed, opts.zone)
            },
            params: Params::default(),
            accounts: clients
                .iter()
                .enumerate()
                .map(|(i, client)| GenesisAccount {
                    account: AccountId::from_public_key(client.public_key()),
                    balance: Amount(1 << 60),
                    // Client 0 holds all the stake: its proposals pass by its vote alone.
                    staked: if i == GOVERNOR {
                        Amount(1 << 40)
                    } else {
                        Amount::ZERO
                    },
                })
                .collect(),
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
        let start = genesis_snapshot(&genesis_ledger);
        let mut plan = VecDeque::new();
        if let Some(spare) = &spare {
            let ids: Vec<AccountId> = keys
                .iter()
                .map(|k| AccountId::from_public_key(k.public_key()))
                .collect();
            plan.push_back((
                1_500,
                ProposalKind::AddValidator {
                    public_key: spare.public_key().clone(),
                    peer: vec![],
                    base_reputation: rng.random_range(1..=10),
                },
            ));
            if let Some(witness) = &spare_witness {
                plan.push_back((
                    2_000,
                    ProposalKind::AddWitness {
                        public_key: witness.public_key().clone(),
                        peer: vec![],
                        weight: rng.random_range(1..=10),
                    },
                ));
            }
            plan.push_back((
                3_000,
                ProposalKind::RemoveValidator {
                    validator: ids[rng.random_range(0..ids.len())],
                },
            ));
            if let Some(witness) = &spare_witness {
                plan.push_back((
                    3_800,
                    ProposalKind::RemoveWitness {
                        witness: AccountId::from_public_key(witness.public_key()),
                    },
                ));
                // And makes it a validator: its ledger lags its log, so it stands aside.
                plan.push_back((
                    4_200,
                    ProposalKind::AddValidator {
                        public_key: witness.public_key().clone(),
                        peer: vec![],
                        base_reputation: rng.random_range(1..=10),
                    },
                ));
            }
            plan.push_back((
                4_500,
                ProposalKind::SetReputation {
                    validator: AccountId::from_public_key(spare.public_key()),
                    base_reputation: rng.random_range(1..=20),
                },
            ));
        }
        let witness_ids: Vec<NodeId> = witness_keys
            .iter()
            .chain(&spare_witness)
            .map(|k| AccountId::from_public_key(k.public_key()))
            .collect();
        let nodes = keys
            .into_iter()
            .chain(witness_keys)
            .chain(spare)
            .chain(spare_witness)
            .map(|key| SimNode {
                witness: witness_ids.contains(&AccountId::from_public_key(key.public_key())),
                id: AccountId::from_public_key(key.public_key()),
                public_key: borsh::to_vec(key.public_key()).unwrap(),
                clock_rate_percent: if opts.faults {
                    rng.random_range(80..=120)
                } else {
                    100
                },
                local_ticks: 0,
                replica: None,
                store: MemoryStore::initialized(start.clone()),
                backup: None,
                disk: None,
                inbox: VecDeque::new(),
                verifying: Vec::new(),
                restart_at: 0,
                last_term: 0,
                last_commit: 0,
                led_term: None,
                key,
            })
            .collect();
        let lease_reads = rng.random_bool(0.5);
        let report = SimReport {
            seed: opts.seed,
            nodes: count
                + opts.witnesses
                + usize::from(governance)
                + usize::from(governance && opts.witnesses > 0),
            ..SimReport::default()
        };
        let mut world = World {
            rng,
            now: 0,
            nodes,
            network: Network::new(faults),
            checker: Checker::new(Membership::single(start.meta.membership.incoming.clone())),
            genesis_ledger,
            empty_store: MemoryStore::new(start.clone()),
            busy_clients: vec![false; clients.len()],
            clients,
            random_reads: true,
            outstanding: BTreeMap::new(),
            next_request: 0,
            trace: Sha3_256::new(),
            faults_on: opts.faults,
            outsider: seeded_key(KeyKind::MlDsa44, "sim-outsider"),
            next_partition_change: 300,
            fault_log: None,
            shares_faults: false,
            slow_disk: None,
            lease_reads,
            healed_at: None,
            latest_ack: None,
            governance: Governance {
                plan,
                vote_due: None,
            },
            report,
            opts,
        };
        for i in 0..world.nodes.len() {
            world.start(i);
        }
        world
    }

    /// Checks here finish 0 to 3 ticks after they start: with 2, some holds expire, so
    /// applies both wait for pre-checks and give up waiting.
    fn apply_hold_ticks(&self) -> u64 {
        #[cfg(any(test, feature = "inject-bugs"))]
        if let Some(ticks) = self.opts.apply_hold_ticks {
            return ticks;
        }
        2
    }

    fn replica_config(&self) -> ReplicaConfig {
        ReplicaConfig {
            snapshot_interval_entries: SNAPSHOT_INTERVAL_ENTRIES,
            mempool_capacity: 1_000,
            // Scaled down with the mempool. (Clients here sign the nonce their node
            // believes is next, so two may meet on one nonce: `nonce_pending`.)
            max_nonce_ahead: 8,
            mempool_hold_ticks: 600,
            max_block_txs: 64,
            max_block_bytes: 1 << 20,
            max_uncommitted_blocks: 8,
            max_commit_waiters: 1_000,
            max_pending_reads: 1_000,
            max_replay_waiters: 1_000,
            read_timeout_ticks: 200,
            resend_interval_ticks: 40,
            // What agora-node's 30 s are to its 100 ms tick: a client waiting at a node that
            // governance removed while it was cut off (it hears no leader again, so it never
            // learns its waiters' fate) is answered 504 within the liveness bound. The
            // liveness phase counts such an answer to a submission made after healing as a
            // bug; before, it is counted in the report.
            commit_wait_limit_ticks: 2_000,
            empty_block_interval_ticks: Some(15),
            // Small, so that verdicts are evicted and applies also verify inline.
            verdict_cache_entries: 256,
            max_verifying: 64,
            apply_hold_ticks: self.apply_hold_ticks(),
            replay: false,
        }
    }

    /// Starts (or restarts) node `i` from what its storage holds, as `agora-node` does.
    fn start(&mut self, i: usize) {
        let seed: [u8; 32] = self.rng.random();
        let mut raft = RaftConfig::new(self.nodes[i].id);
        raft.lease_reads = self.lease_reads;
        raft.snapshot_chunk_bytes = 4 << 10;
        raft.max_apply_batch_bytes = 64 << 10;
        #[cfg(any(test, feature = "inject-bugs"))]
        {
            raft.bugs = self.opts.bugs;
        }
        let config = ReplicaConfig {
            replay: !self.opts.election_noop,
            ..self.replica_config()
        };
        let node = &mut self.nodes[i];
        let crypto: Box<dyn VoteCrypto> = if self.opts.real_crypto {
            Box::new(MlDsaVotes::new(node.key.clone()))
        } else {
            Box::new(StubVotes::new(node.public_key.clone()))
        };
        let replica = Replica::new(ReplicaParts {
            raft,
            config,
            key: node.key.clone(),
            crypto,
            genesis: self.genesis_ledger.clone(),
            recovered: node.store.recover(),
            seed,
        })
        .expect("a durable snapshot restores");
        #[cfg(any(test, feature = "inject-bugs"))]
        let replica = {
            let mut replica = replica;
            replica.inject_bugs(self.opts.replica_bugs);
            replica
        };
        node.last_term = replica.raft().term();
        node.last_commit = replica.raft().commit_index();
        node.replica = Some(replica);
        node.led_term = None;
        node.disk = None;
        node.inbox.clear();
        node.verifying.clear();
    }

    /// Node `i` stops: whatever its disk had not finished is lost, and so is everything
    /// in memory.
    fn crash(&mut self, i: usize) {
        let downtime = self.rng.random_range(20..=400);
        let disk = self.rng.random_range(0..8);
        if let Some(log) = &mut self.fault_log {
            log.push(NodeFault::Crash {
                node: i,
                downtime,
                disk,
            });
        }
        self.crash_with(i, downtime, disk);
    }

    /// Node `i` crashes for `downtime` ticks; `disk` 0 loses its disk, 1 restores an older
    /// copy, others keep it — where that is survivable in this zone (below).
    pub(super) fn crash_with(&mut self, i: usize, downtime: u64, disk: u32) {
        // Sometimes the disk goes with it: the node comes back with an empty store, or
        // with an older copy of it that an operator restored. Either way it has no promise
        // record and rejoins before it votes. One disk at a time: while another node is
        // still rejoining, a second loss could take every copy of a committed entry (two
        // holders of a two-node quorum), which no protocol survives.
        let others_proven = (0..self.nodes.len())
            .filter(|j| *j != i)
            .all(|j| self.nodes[j].store.hard_state().proven);
        // Nor the disk of the last full member: a witness keeps no state, so with one full
        // member left (two validators and a witness, one voted out) its disk is the only
        // copy of the ledger, which no protocol survives losing.
        let id = self.nodes[i].id;
        let another_full_member = self.nodes[i].replica.as_ref().is_none_or(|r| {
            let membership = r.raft().membership();
            std::iter::once(&membership.incoming)
                .chain(&membership.outgoing)
                .all(|config| {
                    config
                        .voters()
                        .any(|(other, _)| *other != id && !config.is_witness(other))
                })
        });
        // Nor the disk of the only node that stores the newest committed entry: where one
        // member's weight is a quorum of its configuration, it commits alone, and losing
        // its disk loses what it committed, which no protocol survives either.
        let stored_elsewhere = self.checker.last_committed().is_none_or(|(index, term)| {
            (0..self.nodes.len()).filter(|j| *j != i).any(|j| {
                let stored = self.nodes[j].store.recover();
                stored
                    .snapshot
                    .as_ref()
                    .is_some_and(|s| s.meta.index >= index)
                    || stored
                        .entries
                        .iter()
                        .any(|e| e.index == index && e.term == term)
            })
        });
        match disk {
            _ if !others_proven || !another_full_member || !stored_elsewhere => {}
            0 => {
                self.nodes[i].store = self.empty_store.clone();
                self.report.disks_lost += 1;
            }
            1 => {
                if let Some(backup) = &self.nodes[i].backup {
                    self.nodes[i].store = backup.restored_copy();
                    self.report.older_copies_restored += 1;
                }
            }
            _ => {}
        }
        let node = &mut self.nodes[i];
        node.replica = None;
        node.disk = None;
        node.inbox.clear();
        node.verifying.clear();
        node.restart_at = self.now + downtime;
        self.report.crashes += 1;
        self.drop_requests_to(i);
        // The kernel closes a dead process's sockets: its peers see the connections end.
        for j in 0..self.nodes.len() {
            self.input(j, Input::Disconnected(id));
        }
    }

    /// Runs both phases.
    pub(crate) fn run(&mut self) -> Result<(), Violation> {
        for _ in 0..self.opts.safety_ticks {
            self.now += 1;
            if self.faults_on {
                self.inject_faults();
            }
            self.step()?;
            self.check_leases()?;
            self.observe_leadership();
        }
        self.liveness()
    }

    pub(super) fn step(&mut self) -> Result<(), Violation> {
        // Clocks: each node ticks at its own rate (skew); a node waiting on its disk does
        // not tick (the shell's loop is inside the write).
        for i in 0..self.nodes.len() {
            let target = self.now * self.nodes[i].clock_rate_percent / 100;
            let node = &mut self.nodes[i];
            match node.replica.as_mut() {
                Some(replica) if node.disk.is_none() => {
                    while node.local_ticks < target {
                        node.local_ticks += 1;
                        replica.tick();
                    }
                }
                _ => node.local_ticks = target,
            }
        }
        for message in self.network.due(self.now) {
            let Some(i) = self.nodes.iter().position(|n| n.id == message.to()) else {
                continue;
            };
            self.trace.update(self.now.to_le_bytes());
            if let SimMessage::Raft(raft) = &message {
                self.trace.update(raft.signing_bytes());
            }
            self.input(i, Input::Message(Box::new(message)));
        }
        for i in 0..self.nodes.len() {
            let now = self.now;
            let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.nodes[i].verifying)
                .into_iter()
                .partition(|(at, _, _)| *at <= now);
            self.nodes[i].verifying = running;
            for (_, id, ok) in done {
                self.input(i, Input::Verified(id, ok));
            }
        }
        self.clients();
        for i in 0..self.nodes.len() {
            self.drain(i)?;
            self.check_node(i)?;
        }
        if self.now.is_multiple_of(10) {
            let logs: Vec<(NodeId, &crate::raft::log::RaftLog)> = self
                .nodes
                .iter()
                .filter_map(|n| n.replica.as_ref().map(|r| (n.id, r.raft().log())))
                .collect();
            self.checker.check_log_prefixes(&logs)?;
        }
        Ok(())
    }

    /// Hands an input to node `i`, or buffers it while its disk is busy.
    pub(super) fn input(&mut self, i: usize, input: Input) {
        let node = &mut self.nodes[i];
        let Some(replica) = node.replica.as_mut() else {
            return;
        };
        if node.disk.is_some() {
            if node.inbox.len() < MAX_INBOX {
                node.inbox.push_back(input);
            }
            return;
        }
        match input {
            Input::Message(message) => match *message {
                SimMessage::Raft(message) => replica.receive(message),
                SimMessage::Forward { tx, .. } => {
                    // The shell numbers a forward like any request; nothing answers the
                    // follower (the node logs a refusal).
                    let id = self.next_request;
                    self.next_request += 1;
                    replica.forwarded(vec![(id, tx)]);
                }
            },
            Input::Request(id, request) => replica.request(id, request),
            Input::Verified(id, ok) => replica.verified(id, ok),
            Input::Disconnected(peer) => replica.peer_unreachable(peer),
        }
    }

    /// Takes node `i`'s actions and starts carrying them out: at once, or after a slow
    /// write.
    pub(super) fn drain(&mut self, i: usize) -> Result<(), Violation> {
        if self.nodes[i].replica.is_none() {
            return Ok(());
        }
        if let Some((done, _)) = &self.nodes[i].disk {
            if *done > self.now {
                return Ok(());
            }
            let (_, actions) = self.nodes[i].disk.take().expect("checked");
            self.complete(i, actions)?;
            // What arrived meanwhile goes in now.
            let inbox = std::mem::take(&mut self.nodes[i].inbox);
            for input in inbox {
                self.input(i, input);
            }
        }
        let id = self.nodes[i].id;
        let Some(replica) = self.nodes[i].replica.as_mut() else {
            return Ok(());
        };
        let mut actions = replica.actions().map_err(|halt| {
            fail(
                "the ledger never halts on committed entries",
                format!("{id:?}: {halt}"),
            )
        })?;
        if actions.is_empty() {
            return Ok(());
        }
        // A leader's appends, forwards and signature checks leave before the write, slow
        // or not, and a crash during the write does not take them back.
        for message in std::mem::take(&mut actions.early) {
            self.send(SimMessage::Raft(message));
        }
        for (leader, tx) in std::mem::take(&mut actions.forwards) {
            self.send(SimMessage::Forward {
                from: id,
                to: leader,
                tx,
            });
        }
        // Signature checks finish out of order, up to a few ticks later (a busy pool).
        for (check, job) in std::mem::take(&mut actions.verify) {
            let done = self.now + self.rng.random_range(0..=3);
            self.nodes[i].verifying.push((done, check, job.run()));
        }
        let slow = !actions.writes.is_empty()
            && (self.slow_disk == Some(i) || (self.faults_on && self.rng.random_range(0..25) == 0));
        if slow {
            let done = self.now + self.rng.random_range(1..=15);
            self.nodes[i].disk = Some((done, actions));
            return Ok(());
        }
        self.complete(i, actions)
    }

    /// Carries out `actions` as the shell does (its sends before the write already
    /// went): writes, then messages, then replies.
    fn complete(&mut self, i: usize, actions: Actions) -> Result<(), Violation> {
        let Actions {
            early,
            writes,
            messages,
            forwards,
            replies,
            jobs,
            verify,
            peers: _,
            notices,
        } = actions;
        assert!(
            early.is_empty() && forwards.is_empty() && verify.is_empty(),
            "sent and started when the actions were taken"
        );
        // A crash in the middle of the writes keeps a prefix of them (a torn batch), a
        // failed fsync stops the node the same way; a crash after them loses the sends.
        let roll = if self.faults_on {
            self.rng.random_range(0..20_000)
        } else {
            u32::MAX
        };
        let kept = if roll < 2 {
            self.rng.random_range(0..=writes.len())
        } else {
            writes.len()
        };
        for write in &writes[..kept] {
            self.persist(i, write)?;
        }
        if roll < 3 {
            // With several zones this is the zone's own database failing: its driver
            // stops (and is restarted), the node's other zones go on, as in agora-node.
            let downtime = self.rng.random_range(20..=400);
            let disk = self.rng.random_range(0..8);
            self.crash_with(i, downtime, disk);
            return Ok(());
        }
        for message in messages {
            self.send(SimMessage::Raft(message));
        }
        for (request, result) in replies {
            self.on_reply(i, request, result)?;
        }
        for (request, _) in jobs {
            // No archive reads in the simulator: a past-height proof is refused as busy.
            self.on_reply(i, request, Err(ApiError::busy("no archive here")))?;
        }
        for notice in notices {
            if let Notice::SnapshotInstalled { .. } = notice {
                self.report.snapshots_installed += 1;
            }
            if let Notice::Reconfiguring { .. } = notice {
                self.report.config_changes += 1;
            }
            if matches!(notice, Notice::SnapshotTaken { .. }) && self.nodes[i].witness {
                self.report.witness_compactions += 1;
            }
        }
        Ok(())
    }

    fn persist(&mut self, i: usize, write: &Write) -> Result<(), Violation> {
        let id = self.nodes[i].id;
        match write {
            Write::Log {
                hard_state,
                snapshot,
                entries,
            } => {
                if let Err(error) =
                    self.nodes[i]
                        .store
                        .save_now(*hard_state, snapshot.as_ref(), entries)
                {
                    return Err(fail(
                        "log matching (§5.3): writes continue the stored log",
                        format!("{id:?}: {error}"),
                    ));
                }
                self.checker.on_append(id, entries)
            }
            Write::Archive {
                entry,
                receipts,
                events,
                traces,
                state_root,
            } => {
                let traced: usize = traces.iter().map(|t| t.events as usize).sum();
                if traces.len() != receipts.len() || traced > events.len() {
                    return Err(fail(
                        "archive: one trace per receipt, naming no more events than there are",
                        format!(
                            "{id:?} at {}: {} traces, {} receipts, {traced} of {} events",
                            entry.index,
                            traces.len(),
                            receipts.len(),
                            events.len()
                        ),
                    ));
                }
                self.trace.update(entry.index.to_le_bytes());
                self.trace.update(state_root.0);
                self.checker
                    .on_apply(id, entry, *state_root, (receipts, events))
            }
        }
    }

    fn send(&mut self, mut message: SimMessage) {
        if let SimMessage::Raft(raft) = &mut message {
            if self.faults_on && raft.body.is_vote() && self.rng.random_range(0..200) == 0 {
                // A corrupted or forged vote must be dropped by its receiver.
                match raft.signature.first_mut() {
                    Some(byte) => *byte ^= 0x55,
                    None => raft.signature.push(1),
                }
            }
        }
        self.network.send(&mut self.rng, self.now, message);
    }

    fn check_node(&mut self, i: usize) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        let Some(replica) = node.replica.as_ref() else {
            return Ok(());
        };
        let raft = replica.raft();
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
        if raft.commit_index() > node.last_commit {
            self.checker.on_commit(
                node.id,
                raft.log(),
                node.last_commit + 1,
                raft.commit_index(),
            )?;
        }
        node.last_term = raft.term();
        node.last_commit = raft.commit_index();
        if raft.role() == Role::Leader && raft.membership().is_witness(&node.id) {
            return Err(fail(
                "a witness never leads",
                format!("{:?} leads term {} as a witness", node.id, raft.term()),
            ));
        }
        if raft.role() == Role::Leader && !replica.executes() {
            return Err(fail(
                "a witness never leads",
                format!(
                    "{:?} leads term {} with a ledger at height {} behind its applied index {} (a former witness)",
                    node.id,
                    raft.term(),
                    replica.ledger().height(),
                    raft.applied_index()
                ),
            ));
        }
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
        if raft.role() == Role::Leader && self.now.is_multiple_of(50) {
            crate::sim::checker::Checker::check_single_config_change(node.id, raft.log())?;
        }
        Ok(())
    }
}
