//! The deterministic simulator. One seed drives a whole cluster of replicas — the node's
//! own state machine, Raft and the real ledger inside — through network faults,
//! partitions, crashes, disk faults, clock skew, reconfiguration driven by the ledger, and
//! clients that submit, wait for commits and read; checkers verify the Raft safety
//! properties and what clients were promised after every step, and a liveness phase must
//! converge once faults heal. A failure prints the seed and the command that replays it;
//! the same seed always produces the same trace.

pub mod checker;
mod clients;
pub mod cluster;
pub mod network;
mod world;
mod zones;

pub use checker::Violation;

#[cfg(any(test, feature = "inject-bugs"))]
use crate::raft::Bugs;
#[cfg(any(test, feature = "inject-bugs"))]
use crate::replica::ReplicaBugs;
use agora_core::Hash32;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// The seed everything derives from.
    pub seed: u64,
    /// Ticks of the safety phase (with faults, if enabled).
    pub safety_ticks: u64,
    /// Ticks the liveness phase may take to converge.
    pub liveness_bound_ticks: u64,
    /// Inject faults (network, partitions, crashes, slow and failing disks, skew,
    /// corrupted votes, outsiders).
    pub faults: bool,
    /// Give every node a different weight.
    pub distinct_weights: bool,
    /// Sign votes with ML-DSA instead of the fast stand-in.
    pub real_crypto: bool,
    /// Node count (3 to 7 drawn from the seed if `None`).
    pub node_count: Option<usize>,
    /// New leaders append the election no-op (off: the replay-cluster mode).
    pub election_noop: bool,
    /// With faults: governance votes a spare node in, a validator out and a reputation
    /// change during the run.
    pub governance: bool,
    /// Witnesses in the genesis, besides the validators (each with a weight drawn from
    /// the seed): they vote and keep the log, never lead, do not execute the ledger.
    pub witnesses: usize,
    /// Zones every node serves (see `zones`): each a cluster of its own with its own
    /// genesis, weights, clients, governance and checkers, on the same nodes, whose
    /// crashes, disk losses and partitions strike every zone at once.
    pub zones: usize,
    /// Which zone this world is (0: the only one, or the one whose faults every zone
    /// shares); set by the zones runner.
    pub zone: usize,
    /// Deliberate bugs in the Raft core (checker tests only).
    #[cfg(any(test, feature = "inject-bugs"))]
    pub bugs: Bugs,
    /// Deliberate bugs in the replica (checker tests only).
    #[cfg(any(test, feature = "inject-bugs"))]
    pub replica_bugs: ReplicaBugs,
    /// How long a committed entry waits for its signature pre-checks (tests only; the
    /// default, 2 ticks, is shorter than the 0 to 3 ticks a check takes here, so applies
    /// both wait and give up waiting).
    #[cfg(any(test, feature = "inject-bugs"))]
    pub apply_hold_ticks: Option<u64>,
}

impl SimOptions {
    /// The `agora-sim` arguments that run exactly these options for this one seed
    /// (injected bugs aside: they exist only in test builds).
    pub fn replay_args(&self) -> String {
        let mut args = format!(
            "--seeds 1 --from {} --ticks {}",
            self.seed, self.safety_ticks
        );
        if self.real_crypto {
            args.push_str(" --real-crypto");
        }
        if !self.election_noop {
            args.push_str(" --no-election-noop");
        }
        if !self.governance {
            args.push_str(" --no-governance");
        }
        if let Some(count) = self.node_count {
            args.push_str(&format!(" --nodes {count}"));
        }
        if self.witnesses > 0 {
            args.push_str(&format!(" --witnesses {}", self.witnesses));
        }
        if self.zones > 1 {
            args.push_str(&format!(" --zones {}", self.zones));
        }
        args
    }

    /// The CI profile: 20,000 ticks of faults (the ledger's reputation reweights the
    /// validators, so configuration changes come with it), then up to 3,000 ticks to
    /// converge.
    pub fn standard(seed: u64) -> SimOptions {
        SimOptions {
            seed,
            safety_ticks: 20_000,
            liveness_bound_ticks: 3_000,
            faults: true,
            distinct_weights: false,
            real_crypto: false,
            node_count: None,
            election_noop: true,
            governance: true,
            witnesses: 0,
            zones: 1,
            zone: 0,
            #[cfg(any(test, feature = "inject-bugs"))]
            bugs: Bugs::default(),
            #[cfg(any(test, feature = "inject-bugs"))]
            replica_bugs: ReplicaBugs::default(),
            #[cfg(any(test, feature = "inject-bugs"))]
            apply_hold_ticks: None,
        }
    }
}

/// What a clean run did.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Nodes simulated.
    pub nodes: usize,
    /// Ticks run.
    pub ticks: u64,
    /// Hash of every delivered message, applied entry and election: equal seeds, equal hashes.
    pub trace_hash: Hash32,
    /// The final commit index.
    pub committed_index: u64,
    /// Commits acknowledged to clients.
    pub acknowledged: u64,
    /// Transactions that took effect.
    pub transactions_committed: u64,
    /// Heights certified by committed blocks.
    pub heights_certified: u64,
    /// Signatures in those certificates.
    pub certificate_signatures: u64,
    /// Governance proposals passed and executed (validators added, removed, reweighted).
    pub proposals_passed: u64,
    /// Of those, witnesses added and witnesses removed.
    pub witness_governance: (u64, u64),
    /// Nodes alive at the end that are full members or outsiders whose ledger lags their
    /// log: witnesses that governance removed (they serve nothing and never lead).
    pub former_witnesses: u64,
    /// Linearizable reads served and checked.
    pub reads_served: u64,
    /// Elections started.
    pub elections: u64,
    /// Ticks with a leader.
    pub leader_ticks: u64,
    /// Ticks whose leader had the highest weight of its configuration.
    pub top_weight_leader_ticks: u64,
    /// Votes dropped for bad signatures (on nodes alive at the end).
    pub dropped_bad_vote_signature: u64,
    /// Messages dropped from non-members (on nodes alive at the end).
    pub dropped_non_member: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Configuration changes started.
    pub config_changes: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Crashes that also lost the node's whole disk (it restarts from an empty store).
    pub disks_lost: u64,
    /// Crashes after which an older copy of the node's disk was restored.
    pub older_copies_restored: u64,
    /// Rejoins completed by nodes that started without a promise record (alive at the end).
    pub rejoins: u64,
    /// Reports that a follower's connection to its leader closed (nodes alive at the end).
    pub leader_disconnects: u64,
    /// Partition changes.
    pub partitions: u64,
    /// Messages sent.
    pub messages: u64,
    /// Transaction signatures checked by the nodes alive at the end: handed to their crypto
    /// threads, and verified inline by a block apply that found no verdict.
    pub signature_checks: u64,
    /// Of those, the inline ones.
    pub inline_checks: u64,
    /// Entries (on the nodes alive at the end) whose signature pre-checks outlasted the
    /// hold: applying them stopped waiting (checking inline what had no verdict yet).
    pub apply_holds_expired: u64,
    /// Leaders outside a node's configuration that a member named to it (`LeaderIs`).
    pub leaders_vouched: u64,
    /// Waiting clients answered 504 (not committed in time) during the faults: clients of
    /// a node that was cut off, or voted out while cut off and never told.
    pub commit_timeouts: u64,
    /// Waiting clients a node answered `not_a_member`: governance removed the node, and
    /// the leader told it so before letting it go.
    pub voted_out_answers: u64,
    /// Ticks the liveness phase needed.
    pub liveness_ticks: u64,
    /// Batches of a witness's log sent to full members behind it, and batches taken.
    pub witness_relays: (u64, u64),
    /// Witnesses' log compactions (behind what a quorum of the full members holds).
    pub witness_compactions: u64,
    /// With several zones: each zone's final commit index (this report's other fields are
    /// the first zone's).
    pub zone_commits: Vec<u64>,
    /// With several zones: each zone's crashes: the node crashes every zone shares, and
    /// the zone's own (a failed write to its database stops that zone alone).
    pub zone_crashes: Vec<u64>,
    /// With several zones: node crashes, which struck every zone at once.
    pub shared_crashes: u64,
    /// With several zones: leadership transfers that spread leaders over the nodes.
    pub balance_transfers: u64,
    /// With several zones: how many zones each node led at the end of the run.
    pub zone_leader_loads: Vec<u64>,
}

/// A violated property, with what is needed to replay it.
#[derive(Clone, Debug)]
pub struct SimFailure {
    /// The seed.
    pub seed: u64,
    /// When.
    pub tick: u64,
    /// What broke.
    pub violation: Violation,
    /// The `agora-sim` arguments that replay this run.
    pub replay_args: String,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at tick {}: {}\n  replay: cargo run --release -p agora-consensus --bin agora-sim -- {}",
            self.seed, self.tick, self.violation, self.replay_args
        )
    }
}

/// Runs one seed.
pub fn run(options: &SimOptions) -> Result<SimReport, SimFailure> {
    if options.zones > 1 {
        return zones::run(options);
    }
    let mut world = world::World::new(options.clone());
    let result = world.run();
    world.finish_report();
    match result {
        Ok(()) => Ok(world.report),
        Err(violation) => Err(SimFailure {
            seed: options.seed,
            tick: world.now(),
            violation,
            replay_args: options.replay_args(),
        }),
    }
}

#[cfg(test)]
mod tests;
