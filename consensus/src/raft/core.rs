//! The Raft state machine: a plain struct driven by `tick`, `step`, `propose`,
//! `propose_config`, `read_index`, `transfer_leader`, and drained by `ready` / `advance`.
//! It owns no socket, file, clock, thread or task. Messages enter through `step.rs`;
//! elections live in `election.rs`, replication and snapshots in `replication.rs`,
//! linearizable reads in `read_index.rs`, rejoining after lost state in `rejoin.rs`.

use crate::raft::config::{Config, ConfigError, Membership};
use crate::raft::crypto::VoteCrypto;
use crate::raft::log::RaftLog;
use crate::raft::message::{Message, MessageBody};
use crate::raft::progress::Progress;
use crate::raft::read_index::ReadQueue;
use crate::raft::rejoin::Rejoin;
use crate::raft::types::{
    ConfigChange, EntryData, HardState, Index, LogEntry, NodeId, ReadState, Role, Snapshot,
    SnapshotMeta, SoftState, Term,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Tunables. Times are in ticks of the driver's clock; sizes in bytes.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// This node.
    pub id: NodeId,
    /// The shortest election timeout. Followers also refuse to vote for this long after
    /// hearing from a leader (the lease that makes pre-vote and lease reads safe).
    pub election_timeout_ticks_min: u64,
    /// Width of the random part of the election timeout.
    pub election_timeout_jitter_ticks: u64,
    /// Leader heartbeat period.
    pub heartbeat_interval_ticks: u64,
    /// Ticks a lease read trusts the leader lease for; must leave a margin below the
    /// election timeout for clock drift between nodes.
    pub lease_ticks: u64,
    /// Serve reads from the leader lease instead of a heartbeat round.
    pub lease_reads: bool,
    /// AppendEntries messages in flight per follower.
    pub max_inflight_messages: usize,
    /// Entry bytes per AppendEntries.
    pub max_message_entry_bytes: u64,
    /// Bytes per snapshot chunk.
    pub snapshot_chunk_bytes: u64,
    /// Largest snapshot a follower accepts.
    pub max_snapshot_bytes: u64,
    /// Committed entry bytes handed out per `Ready`.
    pub max_apply_batch_bytes: u64,
    /// Proposals refused while this many entries are appended but not committed.
    pub max_uncommitted_entries: u64,
    /// Reads waiting for confirmation, at most.
    pub max_pending_reads: usize,
    /// A leader that a healthy voter clearly outweighs (by more than
    /// `leadership_margin_percent`) hands over to the heaviest one.
    pub reputation_transfer: bool,
    /// How much heavier than the leader a voter must be before reputation moves the
    /// leadership, in percent of the leader's weight; zone balancing hands a leadership
    /// only to voters within the same margin of the top weight, so the two never pull
    /// against each other. The margin absorbs a leader's own head start: it earns
    /// `reputation_per_block` on top of the signature points every member earns (25% more
    /// with the default parameters), so without it whoever leads soon outweighs the rest
    /// and no other voter is ever close enough to take a zone over.
    pub leadership_margin_percent: u64,
    /// Consecutive checks (one per election timeout) the condition must hold first.
    pub transfer_hysteresis_checks: u32,
    /// A new leader appends a no-op (§5.4.2, §8) so that entries of earlier terms commit
    /// and reads can be served at once. Off only for replay clusters, whose logs must hold
    /// exactly the entries a client supplies; entries of earlier terms then commit with the
    /// next supplied entry, and reads wait for it.
    pub election_noop: bool,
    /// Test-only faults, to prove the simulator's checkers catch real bugs.
    #[cfg(any(test, feature = "inject-bugs"))]
    pub bugs: Bugs,
}

/// Deliberate bugs for checker tests.
#[cfg(any(test, feature = "inject-bugs"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Commit an index as soon as any single voter has it.
    pub commit_with_minority: bool,
    /// Grant a vote to every candidate, even after voting in the same term.
    pub grant_two_votes: bool,
    /// Accept AppendEntries without checking the previous entry's term.
    pub skip_log_consistency_check: bool,
    /// A witness campaigns like a full member, and voters do not refuse it.
    pub witness_campaigns: bool,
    /// A follower told its leader's connection closed forgets the leader at once and
    /// campaigns on its next tick, breaking its promise (the leader's lease) early.
    pub disconnect_breaks_promise: bool,
}

impl RaftConfig {
    /// Defaults for `id`: 10-tick election timeouts with 10 ticks of jitter, heartbeats
    /// every 2 ticks.
    pub fn new(id: NodeId) -> RaftConfig {
        RaftConfig {
            id,
            election_timeout_ticks_min: 10,
            election_timeout_jitter_ticks: 10,
            heartbeat_interval_ticks: 2,
            lease_ticks: 6,
            lease_reads: false,
            max_inflight_messages: 64,
            max_message_entry_bytes: 1 << 20,
            snapshot_chunk_bytes: 64 << 10,
            max_snapshot_bytes: 1 << 30,
            max_apply_batch_bytes: 4 << 20,
            max_uncommitted_entries: 4096,
            max_pending_reads: 4096,
            reputation_transfer: true,
            leadership_margin_percent: 50,
            transfer_hysteresis_checks: 3,
            election_noop: true,
            #[cfg(any(test, feature = "inject-bugs"))]
            bugs: Bugs::default(),
        }
    }

    fn validate(&self) {
        assert!(self.heartbeat_interval_ticks > 0);
        assert!(
            self.heartbeat_interval_ticks < self.election_timeout_ticks_min,
            "heartbeats must come faster than elections"
        );
        assert!(
            self.lease_ticks < self.election_timeout_ticks_min,
            "the lease must end before followers may vote again"
        );
        assert!(self.election_timeout_jitter_ticks > 0);
        assert!(self.max_inflight_messages > 0 && self.snapshot_chunk_bytes > 0);
    }
}

/// Why a proposal was refused. Nothing was appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader accepts proposals.
    #[error("not the leader; the leader is {leader:?}")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// Leadership is being handed over.
    #[error("leadership transfer in progress")]
    TransferInProgress,
    /// Too many entries await commit: push back and retry later.
    #[error("too many uncommitted entries; retry later")]
    Backpressure,
    /// A configuration change is already in flight.
    #[error("a configuration change is already in flight")]
    ConfigChangeInFlight,
    /// A new leader changes the configuration only after committing an entry of its own
    /// term, so that it knows every configuration entry of earlier terms.
    #[error("no entry of this leader's term is committed yet; retry shortly")]
    NotCommittedInTerm,
    /// The requested configuration is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(#[from] ConfigError),
    /// No leader is known to forward a read to.
    #[error("no leader known")]
    NoLeader,
    /// Too many reads are waiting.
    #[error("too many pending reads; retry later")]
    TooManyReads,
}

/// Counters for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Votes dropped because the signature did not verify or was missing.
    pub dropped_bad_vote_signature: u64,
    /// Messages dropped because the sender is not in the configuration.
    pub dropped_non_member: u64,
    /// Messages addressed to another node.
    pub dropped_misaddressed: u64,
    /// Messages whose contents cannot be valid (entries out of sequence, absurd terms).
    pub dropped_malformed: u64,
    /// Elections started (after a successful pre-vote).
    pub elections: u64,
    /// Leadership transfers started.
    pub transfers: u64,
    /// Of those, transfers that spread leaders across a node's zones.
    pub balance_transfers: u64,
    /// Leaders outside the configuration that a member vouched for.
    pub leaders_vouched: u64,
    /// Followers whose log was found behind what they had acknowledged (lost state).
    pub follower_regressions: u64,
    /// Rejoins completed after starting without a promise record (see `rejoin`).
    pub rejoins: u64,
    /// Times the transport reported the leader's connection closed to a follower that
    /// may campaign (see `leader_unreachable`).
    pub leader_disconnects: u64,
    /// Witness: batches of its log sent to a full member whose log was behind.
    pub witness_relays: u64,
    /// Batches of a witness's log taken (entries appended or replaced).
    pub witness_entries_taken: u64,
}

/// A follower found behind what it acknowledged: it lost durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regression {
    /// The follower.
    pub node: NodeId,
    /// What it had acknowledged.
    pub acknowledged: Index,
    /// Its log now holds nothing matching from this index on.
    pub has_before: Index,
}

/// Everything the driver must do, in this order:
///
/// 1. make `snapshot` (if any), `hard_state` (if any) and `entries` durable — on disk,
///    synced — where `entries` replace any stored entries from `entries[0].index` on;
/// 2. only then send `messages` (a vote or an append acknowledgement promises durability);
/// 3. check `snapshot`'s state root, install it into the state machine, then apply
///    `committed_entries` in order;
/// 4. serve the `read_states` whose index the state machine has reached;
/// 5. call [`Raft::advance`] with this `Ready`, before calling anything else on the core.
#[derive(Debug, Default)]
#[must_use = "a Ready must be persisted, sent, applied and advanced"]
pub struct Ready {
    /// Term, vote and commit to persist, if they changed.
    pub hard_state: Option<HardState>,
    /// Entries to persist.
    pub entries: Vec<LogEntry>,
    /// A snapshot received from the leader: persist, check, install.
    pub snapshot: Option<Snapshot>,
    /// Entries to apply, in order.
    pub committed_entries: Vec<LogEntry>,
    /// Messages to send after persisting.
    pub messages: Vec<Message>,
    /// Linearizable reads that may be served once applied up to their index.
    pub read_states: Vec<ReadState>,
    /// Role or leader changed.
    pub soft_state: Option<SoftState>,
}

/// Durable state to restart from.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// The persisted hard state.
    pub hard_state: HardState,
    /// The newest durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Durable entries after it.
    pub entries: Vec<LogEntry>,
}

/// The Raft core.
pub struct Raft<C: VoteCrypto> {
    pub(crate) cfg: RaftConfig,
    pub(crate) crypto: C,
    pub(crate) rng: ChaCha8Rng,
    /// This process's boot id (see `AppendEntriesResponse::boot`).
    pub(crate) boot: u64,
    /// Followers found behind what they acknowledged, not yet taken by the caller.
    pub(crate) regressions: Vec<Regression>,
    /// Set while rejoining after lost state.
    pub(crate) rejoin: Option<Rejoin>,
    /// The last index an append or snapshot of the leader of that term matched: (term,
    /// index).
    pub(crate) verified: (Term, Index),
    /// The highest commit index the current leader has sent this follower: (term, index).
    pub(crate) leader_commit: (Term, Index),
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog,
    pub(crate) membership: Membership,
    /// Configuration entries in the log after the snapshot: (index, membership).
    pub(crate) config_history: Vec<(Index, Membership)>,
    /// Ticks since start (this node's clock).
    pub(crate) now: u64,
    pub(crate) election_elapsed: u64,
    pub(crate) heartbeat_elapsed: u64,
    pub(crate) randomized_timeout: u64,
    /// The transport reported the connection to our leader lost: the election timeout
    /// was shortened to the promise's end (see `leader_unreachable`).
    pub(crate) leader_lost: bool,
    pub(crate) votes: BTreeMap<NodeId, bool>,
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// Leader: removed members it still replicates to (see the `leaving` module); each
    /// also has a progress.
    pub(crate) leaving: BTreeMap<NodeId, super::leaving::Leaving>,
    pub(crate) transfer: Option<(NodeId, u64)>,
    pub(crate) transfer_streak: u32,
    /// Members a reputation transfer went to that did not take over in time, and until
    /// when (a tick) no reputation transfer targets them again (one entry per member).
    pub(crate) transfer_declined: BTreeMap<NodeId, u64>,
    /// Lease reads are off until this tick (after a leadership handover began).
    pub(crate) lease_blocked_until: u64,
    pub(crate) reads: ReadQueue,
    /// The local snapshot served to lagging followers.
    pub(crate) snapshot: Option<Snapshot>,
    /// A snapshot being received: its metadata and the bytes so far.
    pub(crate) incoming_snapshot: Option<(SnapshotMeta, u64, Vec<u8>)>,
    pub(crate) pending_install: Option<Snapshot>,
    pub(crate) messages: Vec<Message>,
    pub(crate) read_states: Vec<ReadState>,
    /// How the transport authenticates each node (opaque; given by the embedder), named
    /// in [`MessageBody::LeaderIs`].
    pub(crate) contacts: BTreeMap<NodeId, Vec<u8>>,
    /// A leader outside our configuration that a member vouched for: its leader traffic
    /// (appends, heartbeats, snapshots) of that term or later is accepted.
    pub(crate) vouched: Option<Vouched>,
    /// Witness: the index up to which the leader said a quorum of full members holds
    /// the log (see the `witness` module).
    pub(crate) forgettable: Index,
    /// The driver's state machine lags its log (a former witness): this member votes
    /// and keeps the log but, like a witness, never campaigns (see `set_stands_aside`).
    pub(crate) stands_aside: bool,
    persisted_hard_state: HardState,
    reported_soft_state: SoftState,
    ready_outstanding: bool,
    /// Committed entries above this index are not handed out for applying yet (the driver
    /// holds them back, e.g. while their signatures are being checked elsewhere).
    apply_limit: Option<Index>,
    pub(crate) counters: Counters,
}

/// A leader outside this node's configuration, vouched for by a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vouched {
    /// The term it leads.
    pub term: Term,
    /// The leader.
    pub leader: NodeId,
    /// Its transport identity.
    pub contact: Vec<u8>,
}

impl<C: VoteCrypto> Raft<C> {
    /// A node with an empty log whose configuration is `initial` (the genesis validators).
    pub fn new(cfg: RaftConfig, crypto: C, rng_seed: u64, initial: Membership) -> Raft<C> {
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index: 0,
                term: 0,
                membership: initial,
                state_root: [0; 32],
            },
            data: Arc::new(Vec::new()),
        };
        Self::restart(
            cfg,
            crypto,
            rng_seed,
            Recovered {
                hard_state: HardState {
                    proven: true,
                    ..HardState::default()
                },
                snapshot: Some(snapshot),
                entries: vec![],
            },
        )
    }

    /// A node restarting from durable state. `recovered.snapshot` must be present (the
    /// genesis snapshot at index 0 if nothing newer was taken).
    pub fn restart(cfg: RaftConfig, crypto: C, rng_seed: u64, recovered: Recovered) -> Raft<C> {
        cfg.validate();
        let snapshot = recovered
            .snapshot
            .expect("a node starts from at least the genesis snapshot");
        let log = RaftLog::new(
            snapshot.meta.clone(),
            recovered.entries,
            recovered.hard_state.commit,
        );
        let hard_state = HardState {
            commit: log.committed(),
            ..recovered.hard_state
        };
        let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
        let boot = rand::Rng::random::<u64>(&mut rng);
        let mut raft = Raft {
            rng,
            boot,
            regressions: Vec::new(),
            rejoin: (!hard_state.proven).then(Rejoin::default),
            verified: (0, 0),
            leader_commit: (0, 0),
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: None,
            membership: snapshot.meta.membership.clone(),
            config_history: Vec::new(),
            now: 0,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout: 0,
            leader_lost: false,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            leaving: BTreeMap::new(),
            transfer: None,
            transfer_streak: 0,
            transfer_declined: BTreeMap::new(),
            lease_blocked_until: 0,
            reads: ReadQueue::default(),
            snapshot: (snapshot.meta.index > 0).then_some(snapshot),
            incoming_snapshot: None,
            pending_install: None,
            messages: Vec::new(),
            read_states: Vec::new(),
            contacts: BTreeMap::new(),
            vouched: None,
            forgettable: 0,
            stands_aside: false,
            persisted_hard_state: hard_state,
            reported_soft_state: SoftState {
                role: Role::Follower,
                leader: None,
            },
            ready_outstanding: false,
            apply_limit: None,
            counters: Counters::default(),
            log,
            crypto,
            cfg,
        };
        let configs: Vec<(Index, Membership)> = raft
            .log
            .config_entries()
            .map(|e| match &e.data {
                EntryData::Config(change) => (e.index, change.membership()),
                _ => unreachable!("filtered"),
            })
            .collect();
        for (index, membership) in configs {
            raft.config_history.push((index, membership.clone()));
            raft.membership = membership;
        }
        raft.reset_election_timeout();
        raft
    }

    // ---- queries --------------------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// How the transport authenticates each node, as the embedder knows it; named to a
    /// lagging member in [`MessageBody::LeaderIs`].
    pub fn set_contacts(&mut self, contacts: BTreeMap<NodeId, Vec<u8>>) {
        self.contacts = contacts;
    }

    /// A leader outside this node's configuration whose leader traffic it accepts, because
    /// a member vouched for it (see [`MessageBody::LeaderIs`]); the embedder lets its
    /// transport accept that peer too.
    pub fn vouched_leader(&self) -> Option<&Vouched> {
        self.vouched.as_ref()
    }

    /// The configuration in force.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The commit index.
    pub fn commit_index(&self) -> Index {
        self.log.committed()
    }

    /// The apply index (as acknowledged through `advance`).
    pub fn applied_index(&self) -> Index {
        self.log.applied()
    }

    /// Holds committed entries above `limit` back from the next `Ready`s (`None`: hand
    /// out everything committed). Commitment, replication and elections are unaffected;
    /// only applying waits.
    pub fn set_apply_limit(&mut self, limit: Option<Index>) {
        self.apply_limit = limit;
    }

    /// The highest index the next `Ready` may hand out for applying.
    fn apply_bound(&self) -> Index {
        let committed = self.log.committed();
        self.apply_limit
            .map_or(committed, |limit| limit.min(committed))
    }

    /// The last log index.
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }

    /// The log, read-only (for status pages and the simulator's checkers).
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// The leader's view of each follower's replication (empty on followers).
    pub fn progress(&self) -> &BTreeMap<NodeId, Progress> {
        &self.progress
    }

    /// The node leadership is being handed to, if a transfer is under way.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|(target, _)| target)
    }

    /// Metrics counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// How far the cluster has committed, as far as this node knows: its own commit index
    /// when it leads, else the highest one the leader of its term has sent it (appends,
    /// heartbeats, snapshots). A node that lost its state learns the leader's real commit
    /// index only once the leader has found its log behind and starts replicating to it.
    pub fn leader_commit(&self) -> Index {
        if self.role == Role::Leader {
            return self.log.committed();
        }
        self.of_this_term(self.leader_commit)
            .max(self.log.committed())
    }

    /// An index recorded with the term it was learned in: it holds only in that term.
    pub(crate) fn of_this_term(&self, (term, index): (Term, Index)) -> Index {
        if term == self.term {
            index
        } else {
            0
        }
    }

    /// The index of the entry (or snapshot) the configuration in force comes from.
    pub(crate) fn membership_index(&self) -> Index {
        self.config_history
            .last()
            .map_or(self.log.snapshot().index, |(index, _)| *index)
    }

    /// Followers found behind what they had acknowledged since the last call (leader).
    pub fn take_regressions(&mut self) -> Vec<Regression> {
        std::mem::take(&mut self.regressions)
    }

    /// The hard state as it stands in memory.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
            proven: self.rejoin.is_none(),
        }
    }

    // ---- inputs ---------------------------------------------------------------------

    /// One tick of the driver's clock.
    pub fn tick(&mut self) {
        self.assert_no_ready();
        self.now += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
    }

    /// Appends `payload` if this node leads. Returns the entry's index; the entry may
    /// still be lost if leadership changes before it commits.
    pub fn propose(&mut self, payload: Vec<u8>) -> Result<Index, ProposeError> {
        self.assert_no_ready();
        self.check_can_append()?;
        Ok(self.append_entry(EntryData::Normal(payload.into())))
    }

    /// Appends a no-op entry if this node leads (replay clusters, whose leaders do not
    /// append one at election).
    pub fn propose_noop(&mut self) -> Result<Index, ProposeError> {
        self.assert_no_ready();
        self.check_can_append()?;
        Ok(self.append_entry(EntryData::Noop))
    }

    /// The index the next proposal would get, if this node leads.
    pub fn next_proposal_index(&self) -> Option<Index> {
        (self.role == Role::Leader).then(|| self.log.last_index() + 1)
    }

    /// Starts a joint-consensus change to `target`. Refused while another change is in
    /// flight; completes by itself once the joint entry commits.
    ///
    /// A node removed from the configuration must not be added back under the same id:
    /// nodes accept consensus traffic only from members of the configuration they know,
    /// and a node that left before some leader joined could never recognise that leader
    /// (nor could its old votes be told apart from new ones). A validator that returns
    /// does so with a fresh key, and so a fresh id, as in etcd.
    pub fn propose_config(&mut self, target: Config) -> Result<Index, ProposeError> {
        self.assert_no_ready();
        self.check_can_append()?;
        target.validate()?;
        if self.config_change_in_flight() {
            return Err(ProposeError::ConfigChangeInFlight);
        }
        if !self.committed_in_current_term() {
            return Err(ProposeError::NotCommittedInTerm);
        }
        let old = self.membership.incoming.clone();
        Ok(self.append_entry(EntryData::Config(ConfigChange::Joint { old, new: target })))
    }

    /// Whether a configuration entry is appended but not committed, or a joint
    /// configuration has not yet been left.
    pub fn config_change_in_flight(&self) -> bool {
        self.membership.is_joint()
            || self
                .config_history
                .last()
                .is_some_and(|(index, _)| *index > self.log.committed())
    }

    /// Hands leadership to `to` once its log is caught up.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), ProposeError> {
        self.assert_no_ready();
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if to == self.cfg.id || !self.membership.is_voter(&to) || self.membership.is_witness(&to) {
            return Ok(());
        }
        self.start_transfer(to);
        Ok(())
    }

    /// Records a snapshot the driver took of its state machine at `index` (at most the
    /// applied index) and compacts the log behind it.
    pub fn compact(&mut self, index: Index, state_root: [u8; 32], data: Vec<u8>) {
        self.assert_no_ready();
        let term = self
            .log
            .term_at(index)
            .expect("snapshot index is in the log");
        let meta = SnapshotMeta {
            index,
            term,
            membership: self.membership_at(index),
            state_root,
        };
        self.log.compact(meta.clone());
        self.config_history.retain(|(i, _)| *i > index);
        self.snapshot = Some(Snapshot {
            meta,
            data: Arc::new(data),
        });
    }

    /// The newest snapshot this node holds (taken locally or installed).
    pub fn latest_snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    // ---- outputs --------------------------------------------------------------------

    /// Whether `ready` would return anything.
    pub fn has_ready(&self) -> bool {
        self.hard_state() != self.persisted_hard_state
            || self.log.persisted() < self.log.last_index()
            || self.pending_install.is_some()
            || self.log.applied() < self.apply_bound()
            || !self.messages.is_empty()
            || !self.read_states.is_empty()
            || self.soft_state() != self.reported_soft_state
    }

    /// Takes the work for the driver; see [`Ready`] for the order to do it in.
    pub fn ready(&mut self) -> Ready {
        self.assert_no_ready();
        self.ready_outstanding = true;
        let hard_state = self.hard_state();
        let soft_state = self.soft_state();
        Ready {
            hard_state: (hard_state != self.persisted_hard_state).then_some(hard_state),
            entries: self.log.unstable(),
            snapshot: self.pending_install.clone(),
            committed_entries: self
                .log
                .next_committed(self.apply_bound(), self.cfg.max_apply_batch_bytes),
            messages: std::mem::take(&mut self.messages),
            read_states: std::mem::take(&mut self.read_states),
            soft_state: (soft_state != self.reported_soft_state).then_some(soft_state),
        }
    }

    /// Acknowledges that `ready` was carried out.
    pub fn advance(&mut self, ready: Ready) {
        assert!(self.ready_outstanding, "advance without ready");
        self.ready_outstanding = false;
        if let Some(hard_state) = ready.hard_state {
            self.persisted_hard_state = hard_state;
        }
        if let Some(soft_state) = ready.soft_state {
            self.reported_soft_state = soft_state;
        }
        if let Some(snapshot) = ready.snapshot {
            if self
                .pending_install
                .as_ref()
                .is_some_and(|s| s.meta == snapshot.meta)
            {
                self.pending_install = None;
            }
            self.snapshot = Some(snapshot);
        }
        if let Some(last) = ready.entries.last() {
            self.log.persist_to(last.index, last.term);
        }
        if let Some(last) = ready.committed_entries.last() {
            self.log.apply_to(last.index);
        }
        if self.role == Role::Leader {
            // Our own durable entries count toward the quorum only now; if that was the
            // last acknowledgement needed, followers must hear of the new commit index.
            if self.maybe_commit() {
                self.broadcast_append_commit();
            }
        }
    }

    pub(crate) fn assert_no_ready(&self) {
        assert!(
            !self.ready_outstanding,
            "the previous Ready must be advanced first"
        );
    }

    fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            leader: self.leader,
        }
    }

    // ---- shared helpers ---------------------------------------------------------------

    fn check_can_append(&self) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        if self.log.last_index() - self.log.committed() >= self.cfg.max_uncommitted_entries {
            return Err(ProposeError::Backpressure);
        }
        Ok(())
    }

    /// Appends an entry of the current term (leader only) and replicates it.
    pub(crate) fn append_entry(&mut self, data: EntryData) -> Index {
        assert_eq!(self.role, Role::Leader);
        let index = self.log.last_index() + 1;
        let entry = LogEntry {
            index,
            term: self.term,
            data,
        };
        self.track_config(std::slice::from_ref(&entry));
        self.log.append(vec![entry]);
        self.broadcast_append();
        index
    }

    /// Updates the membership for configuration entries just appended (§6: a
    /// configuration takes effect when appended, committed or not).
    pub(crate) fn track_config(&mut self, entries: &[LogEntry]) {
        for entry in entries {
            if let EntryData::Config(change) = &entry.data {
                let membership = change.membership();
                self.config_history.push((entry.index, membership.clone()));
                self.set_membership(membership);
            }
        }
    }

    /// Reverts the membership after a truncation from `index`.
    pub(crate) fn untrack_config_from(&mut self, index: Index) {
        let before = self.config_history.len();
        self.config_history.retain(|(i, _)| *i < index);
        if self.config_history.len() != before {
            let membership = self.config_history.last().map_or_else(
                || self.log.snapshot().membership.clone(),
                |(_, m)| m.clone(),
            );
            self.set_membership(membership);
        }
    }

    pub(crate) fn membership_at(&self, index: Index) -> Membership {
        self.config_history
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or_else(
                || self.log.snapshot().membership.clone(),
                |(_, m)| m.clone(),
            )
    }

    pub(crate) fn set_membership(&mut self, membership: Membership) {
        self.membership = membership;
        if self.role == Role::Leader {
            let members: BTreeSet<NodeId> = self.membership.all_members();
            // Members this configuration removed are told before they are let go.
            let removed: BTreeSet<NodeId> = self
                .progress
                .keys()
                .filter(|id| !members.contains(id) && !self.leaving.contains_key(id))
                .copied()
                .collect();
            self.leaving.retain(|id, _| !members.contains(id));
            self.start_leaving(removed, self.membership_index());
            let leaving = &self.leaving;
            self.progress
                .retain(|id, _| members.contains(id) || leaving.contains_key(id));
            let next = self.log.last_index() + 1;
            for id in members {
                if id != self.cfg.id {
                    self.progress
                        .entry(id)
                        .or_insert_with(|| Progress::new(next));
                }
            }
        }
    }

    /// Queues a message in the current term; votes are signed.
    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    /// Sends with an explicit term (pre-votes use the term they would campaign in).
    pub(crate) fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let mut message = Message {
            from: self.cfg.id,
            to,
            term,
            body,
            signature: Vec::new(),
        };
        if message.body.is_vote() {
            let randomness = rand::Rng::random::<[u8; 32]>(&mut self.rng);
            message.signature = self.crypto.sign(&message.signing_bytes(), randomness);
        }
        self.messages.push(message);
    }
}
