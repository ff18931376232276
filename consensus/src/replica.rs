//! The replica: everything one validator decides, as one deterministic state machine.
//!
//! [`Replica`] owns the Raft core, the ledger, the mempool, the clients waiting for
//! commits and reads, block proposing (on arrival and empty blocks on an idle chain),
//! reconfiguration from the ledger, snapshots and replay mode. It does no I/O: the tokio
//! shell (`agora-node`) and the simulator ([`crate::sim`]) feed it the same inputs and
//! execute the same [`Actions`], so the code the simulator checks is the code that ships.
//!
//! Inputs: [`Replica::tick`] (time, counted in ticks), [`Replica::receive`] (a peer's Raft
//! message), [`Replica::request`] (a client's request, or a transaction a follower
//! forwarded). Randomness comes in once, as the seed in [`ReplicaParts`]. Outputs: call
//! [`Replica::actions`] after one or more inputs and carry out what it returns, in the
//! order [`Actions`] documents, before giving the replica anything else.

mod admission;
mod certify;
mod config;
mod genesis;
mod history;
mod local;
mod peers;
mod propose;
mod queries;
mod reads;
mod replay;
mod verify;
mod waiters;
mod witness;

use witness::witness_refusal;

pub use certify::{CERTIFY_PATIENCE, MAX_PENDING_HEIGHTS};
pub use config::ReplicaConfig;
pub use genesis::{genesis_snapshot, raft_config_of};
pub use history::{ArchivedEntry, HistoryJob, MAX_PROOF_REPLAY};
pub use local::role_name;
pub use queries::Query;
pub use verify::{SignatureWork, VerifyId, VerifyJob};

use crate::app::LedgerApp;
use crate::mempool::Mempool;
use crate::raft::{
    LogEntry, Message, NodeId, Raft, RaftConfig, Ready, Recovered, Role, Snapshot, VoteCrypto,
};
use agora_api::{
    ApiError, ChainResponse, Consistency, ProofResponse, ProposalResponse, ProposalsResponse,
    ReplayResponse, StatusResponse, SubmitResponse, ValidatorsResponse,
};
use agora_core::block::Entry;
use agora_core::encoding::Canonical;
use agora_core::{Event, Hash32, Ledger, Receipt, SecretKey, StateKey, TxTrace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::VecDeque;

/// Who asked: the shell numbers every request it hands in, and every request gets exactly
/// one reply carrying its id (possibly many actions later).
pub type RequestId = u64;

/// Everything a replica starts from.
pub struct ReplicaParts<C: VoteCrypto> {
    /// Raft's settings (the replica sets `election_noop` from replay mode).
    pub raft: RaftConfig,
    /// The replica's settings.
    pub config: ReplicaConfig,
    /// This validator's key: signs blocks (and, through `crypto`, votes).
    pub key: SecretKey,
    /// Signs and checks votes.
    pub crypto: C,
    /// The genesis ledger (height 0).
    pub genesis: Ledger,
    /// What storage holds: hard state, newest snapshot, entries after it.
    pub recovered: Recovered,
    /// The seed of every random choice the replica makes (election timeouts, signing
    /// randomness). The node draws it from the OS; the simulator from its run seed.
    pub seed: [u8; 32],
}

/// Why a replica cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The stored snapshot does not restore to its recorded root.
    #[error("the stored snapshot at index {index} does not restore: {reason}. Move the data directory aside and re-join with a fresh one")]
    BadSnapshot {
        /// Its index.
        index: u64,
        /// What failed.
        reason: String,
    },
}

/// Why a replica stopped: it can no longer be trusted to continue. Once halted it stays
/// halted, and the node must stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeHalt {
    /// The ledger refused a committed entry (its state disagrees with the block's, or the
    /// entry is corrupt).
    #[error("HALT at index {index}: {halt}")]
    Ledger {
        /// The entry.
        index: u64,
        /// The ledger's reason.
        halt: agora_core::Halt,
    },
    /// A snapshot received from the leader fails its state-root check.
    #[error("HALT: the snapshot received at index {index} fails its state-root check ({reason}); this node stops rather than trust it")]
    BadSnapshot {
        /// Its index.
        index: u64,
        /// What failed.
        reason: String,
    },
}

/// A client's request.
#[derive(Clone, Debug)]
pub enum Request {
    /// A signed transaction; with `wait`, answered once committed with its receipt.
    Submit {
        /// Canonical signed bytes.
        bytes: Vec<u8>,
        /// Answer once committed.
        wait: bool,
    },
    /// A read of the ledger.
    Query {
        /// What to read.
        query: Query,
        /// Confirmed with the leader, or this replica's state.
        consistency: Consistency,
    },
    /// This node's status.
    Status,
    /// Replay mode: append this entry at its index (leader only); answered once applied.
    Replay {
        /// The entry, as a vector file holds it.
        entry: Entry,
    },
    /// Every validator's weights at the last epochs applied.
    WeightHistory,
    /// Whether this node holds the transaction `hash`, accepted and not yet applied
    /// (queued, in a block in flight, or forwarded to the leader).
    Pending(Hash32),
    /// A value with its proof at a past height.
    ProofAt {
        /// The key.
        key: StateKey,
        /// The height.
        height: u64,
    },
}

/// A successful answer. Serializes as the API's JSON for it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// To [`Request::Submit`].
    Submitted(SubmitResponse),
    /// To an account query.
    Account(agora_api::AccountResponse),
    /// To a validators query.
    Validators(ValidatorsResponse),
    /// To a proposals query.
    Proposals(ProposalsResponse),
    /// To a proposal query.
    Proposal(Box<ProposalResponse>),
    /// To a state-root query.
    StateRoot(agora_api::At),
    /// To a chain query.
    Chain(Box<ChainResponse>),
    /// To a proof query.
    Proof(Box<ProofResponse>),
    /// To [`Request::Status`].
    Status(Box<StatusResponse>),
    /// To [`Request::Replay`].
    Replayed(ReplayResponse),
    /// To [`Request::WeightHistory`].
    WeightHistory(agora_api::WeightHistoryResponse),
    /// To [`Request::Pending`]. Delivered after everything applied before it is archived,
    /// so a transaction that is not pending is in the archive if it committed.
    Pending(bool),
}

/// One reply to one request.
pub type Reply = (RequestId, Result<Answer, ApiError>);

/// Something to make durable.
#[derive(Clone, Debug)]
pub enum Write {
    /// Raft's durable state, as the storage contract's `save` takes it: the snapshot (if
    /// any), the hard state (if any), then the entries, which replace any stored from the
    /// first one's index on.
    Log {
        /// Term, vote, commit.
        hard_state: Option<crate::raft::HardState>,
        /// A snapshot received or taken.
        snapshot: Option<Snapshot>,
        /// Entries to append.
        entries: Vec<LogEntry>,
    },
    /// What applying a committed entry produced, for block queries and past-height proofs.
    Archive {
        /// The entry.
        entry: LogEntry,
        /// Its receipts.
        receipts: Vec<Receipt>,
        /// Its events, in order.
        events: Vec<Event>,
        /// Each transaction's sender and event count.
        traces: Vec<TxTrace>,
        /// The state root after it.
        state_root: Hash32,
    },
}

/// A notable change, for logs and metrics; nothing depends on it being carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Role or leader changed.
    Role {
        /// The new role.
        role: Role,
        /// The leader known now.
        leader: Option<NodeId>,
        /// The term.
        term: u64,
    },
    /// A snapshot from the leader was installed.
    SnapshotInstalled {
        /// Its index.
        index: u64,
    },
    /// A local snapshot was taken and the log compacted.
    SnapshotTaken {
        /// Its index.
        index: u64,
        /// Its size.
        bytes: u64,
    },
    /// The leader proposed the ledger's validator configuration.
    Reconfiguring {
        /// The entry's index.
        index: u64,
    },
    /// Leader: a follower's log is behind what it had acknowledged: it lost durable
    /// state (a wiped or restored data directory). Replication to it starts over.
    FollowerRegressed(crate::raft::Regression),
}

/// What the replica asks its executor to do, in this order:
///
/// 0. at once, whatever the write: send `early` (a leader's appends, which need not wait
///    for its own write: §10.2.1 of Ongaro's thesis, the leader's disk write runs
///    alongside its followers'), send `forwards` and start the `verify` checks (neither
///    promises anything about this node's disk, and a transaction should not wait on a
///    follower's fsync to reach its leader, nor on a leader's to have its signature
///    checked);
/// 1. make every [`Write`] in `writes` durable, in order (as one transaction, or as several
///    in order: after a crash, any prefix of them may have survived, never a later one
///    without the ones before it). If a write fails, stop: carry out nothing below and
///    give the replica nothing more (restart it from storage);
/// 2. only then send `messages` (a vote or an acknowledgement promises durability);
/// 3. then deliver `replies` (a reply to a client promises what is committed) and start
///    `jobs`;
/// 4. apply `peers` (whose messages the network accepts) and log `notices`.
///
/// Then give the replica its next inputs. Every [`Request`] gets exactly one reply, in
/// `replies` or through a job.
#[derive(Debug, Default)]
#[must_use = "actions must be carried out, writes first"]
pub struct Actions {
    /// 0. Appends from a leader, to send before (or while) `writes` are made durable:
    ///    their commit index counts no entry this batch writes (it is the commit this
    ///    batch started from), and the leader's own entries count toward a commit only in
    ///    a later batch, whose writes start after these finished.
    pub early: Vec<Message>,
    /// 1. Durable first.
    pub writes: Vec<Write>,
    /// 2. Raft messages to peers.
    pub messages: Vec<Message>,
    /// 0. Transactions for the leader: (leader, canonical signed bytes).
    pub forwards: Vec<(NodeId, Vec<u8>)>,
    /// 3. Answers to requests.
    pub replies: Vec<Reply>,
    /// 3. Past-height proofs to build off the event loop from the block archive (each
    ///    answers its request).
    pub jobs: Vec<(RequestId, HistoryJob)>,
    /// 0. Signatures to check off the event loop, on any thread, in any order: give each
    ///    result back with [`Replica::verified`]. Results of a replica that was restarted
    ///    are dropped (the new one asks again as it needs).
    pub verify: Vec<(VerifyId, VerifyJob)>,
    /// 4. The peers whose messages to accept, when that changed (validator id -> libp2p
    ///    peer id bytes).
    pub peers: Option<std::collections::BTreeMap<NodeId, Vec<u8>>>,
    /// 4. For logs and metrics.
    pub notices: Vec<Notice>,
}

impl Actions {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
            && self.early.is_empty()
            && self.messages.is_empty()
            && self.forwards.is_empty()
            && self.replies.is_empty()
            && self.jobs.is_empty()
            && self.verify.is_empty()
            && self.peers.is_none()
            && self.notices.is_empty()
    }
}

/// Counts for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaCounters {
    /// Transactions in applied blocks.
    pub committed_txs: u64,
    /// Entries applied.
    pub applied_entries: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Blocks this replica proposed.
    pub blocks_proposed: u64,
    /// Transactions forwarded to the leader.
    pub forwarded_txs: u64,
    /// Accepted transactions handed on to a new leader (see `hand_on_accepted`).
    pub handed_on_txs: u64,
}

/// Deliberate bugs, to prove the simulator's checkers catch node-level mistakes.
#[cfg(any(test, feature = "inject-bugs"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaBugs {
    /// A leader answers waiting clients as soon as it proposes their block, with the
    /// receipts of a speculative apply, before the block is durable anywhere.
    pub acknowledge_on_propose: bool,
    /// Awaited submissions are never sent again (not on a leader change, not on a timer).
    pub no_resend: bool,
    /// A snapshot from the leader is stored but not installed into the ledger, which then
    /// applies the entries after it on top of its old state.
    pub skip_snapshot_install: bool,
}

/// The replica. See the module documentation.
pub struct Replica<C: VoteCrypto> {
    raft: Raft<C>,
    app: LedgerApp,
    genesis: Ledger,
    key: SecretKey,
    /// The validator `key` signs for (its public key's hash, computed once).
    me: agora_core::ValidatorId,
    config: ReplicaConfig,
    rng: ChaCha20Rng,
    /// Ticks since start.
    now: u64,
    mempool: Mempool,
    /// A follower's record of what it forwarded, under the same rules (the bytes kept, to
    /// hand on to a new leader).
    forwarded: Mempool,
    verifier: verify::Verifier,
    certifier: certify::Certifier,
    waiters: waiters::Waiters,
    reads: reads::Reads,
    replays: replay::Replays,
    peers: peers::PeerBook,
    /// Indexes of blocks this leader proposed that are not yet applied.
    proposed_blocks: VecDeque<u64>,
    /// Weights at the last epochs applied (bounded), for `GET /v1/validators/history`.
    weight_history: VecDeque<agora_api::WeightPoint>,
    /// When this replica last proposed a block (or started).
    last_block_proposed: u64,
    pending: Actions,
    halted: Option<NodeHalt>,
    /// Some committed entry was not executed (this replica was a witness at the time, or
    /// restored a witness's metadata-only snapshot): its ledger lags its log until a full
    /// snapshot is installed.
    unexecuted: bool,
    counters: ReplicaCounters,
    #[cfg(any(test, feature = "inject-bugs"))]
    bugs: ReplicaBugs,
}

impl<C: VoteCrypto> Replica<C> {
    /// A replica restarting from what storage holds (nothing at all: from the genesis).
    pub fn new(parts: ReplicaParts<C>) -> Result<Replica<C>, StartError> {
        let ReplicaParts {
            mut raft,
            config,
            key,
            crypto,
            genesis,
            mut recovered,
            seed,
        } = parts;
        // A witness's snapshot is its metadata only: the ledger it restores lags its log.
        let unexecuted = recovered
            .snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index > 0 && s.data.is_empty());
        let ledger = match &recovered.snapshot {
            Some(snapshot) if snapshot.meta.index > 0 && !unexecuted => {
                Ledger::restore(&snapshot.data, &Hash32(snapshot.meta.state_root)).map_err(
                    |error| StartError::BadSnapshot {
                        index: snapshot.meta.index,
                        reason: error.to_string(),
                    },
                )?
            }
            _ => genesis.clone(),
        };
        if recovered.snapshot.is_none() {
            recovered.snapshot = Some(genesis_snapshot(&genesis));
        }
        raft.election_noop = !config.replay;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let raft = Raft::restart(raft, crypto, rng.random(), recovered);
        let mut replica = Replica {
            app: LedgerApp::new(ledger),
            genesis,
            me: agora_core::ValidatorId::from_public_key(key.public_key()),
            key,
            rng,
            now: 0,
            mempool: Mempool::new(config.mempool_capacity, config.mempool_hold_ticks),
            forwarded: Mempool::new(config.mempool_capacity, config.mempool_hold_ticks),
            verifier: verify::Verifier::new(config.verdict_cache_entries, config.max_verifying),
            certifier: certify::Certifier::default(),
            waiters: waiters::Waiters::default(),
            reads: reads::Reads::default(),
            replays: replay::Replays::default(),
            peers: peers::PeerBook::default(),
            proposed_blocks: VecDeque::new(),
            weight_history: VecDeque::new(),
            last_block_proposed: 0,
            pending: Actions::default(),
            halted: None,
            unexecuted,
            counters: ReplicaCounters::default(),
            #[cfg(any(test, feature = "inject-bugs"))]
            bugs: ReplicaBugs::default(),
            config,
            raft,
        };
        replica.publish_peers();
        replica.raft.set_stands_aside(replica.is_former_witness());
        Ok(replica)
    }

    /// Turns on deliberate bugs (checker tests only).
    #[cfg(any(test, feature = "inject-bugs"))]
    pub fn inject_bugs(&mut self, bugs: ReplicaBugs) {
        self.bugs = bugs;
    }

    // ---- inputs -------------------------------------------------------------------------

    /// One tick of the clock: Raft's timers, then the replica's (read and commit-wait
    /// deadlines, re-sending awaited submissions, proposing blocks, reconfiguring).
    pub fn tick(&mut self) {
        if self.halted.is_some() {
            return;
        }
        self.now += 1;
        self.verifier
            .expire_holds(self.now, self.config.apply_hold_ticks);
        self.raft.tick();
        self.resend_awaited();
        self.expire_reads();
        if self.raft.role() != Role::Leader {
            self.fail_replays("leadership changed before the entry applied; retry at the leader");
        }
        if self.raft.role() == Role::Leader && !self.config.replay {
            self.propose_block();
            self.reconfigure();
        }
    }

    /// Leading this zone while leading at least two zones more than another member that
    /// could lead it: hand it over (see [`Raft::balance_leadership`]). `load(n)` is how
    /// many of the node's zones `n` leads. Nothing happens on a follower.
    pub fn balance_leadership(&mut self, load: impl Fn(&NodeId) -> u64) -> Option<NodeId> {
        if self.halted.is_some() || self.config.replay {
            return None;
        }
        self.raft.balance_leadership(load)
    }

    /// A Raft message from a peer (the network has checked it comes from a member).
    pub fn receive(&mut self, message: Message) {
        if self.halted.is_some() || message.to != self.raft.id() {
            return;
        }
        match message.body {
            crate::raft::MessageBody::CommitSignatures { signatures } => {
                self.receive_signatures(message.from, signatures)
            }
            _ => self.raft.step(message),
        }
    }

    /// The transport lost its connection to validator `node` (see
    /// [`Raft::leader_unreachable`]): if it led us, campaign as soon as the lease allows.
    pub fn peer_unreachable(&mut self, node: NodeId) {
        if self.halted.is_none() {
            self.raft.leader_unreachable(node);
        }
    }

    /// A client's request, or a transaction a follower forwarded (a `Submit` without wait).
    pub fn request(&mut self, id: RequestId, request: Request) {
        self.request_hashed(id, request, None);
    }

    /// What a follower forwarded in one frame, each transaction numbered by the shell
    /// and taken as a `Submit` without wait. Their ids are hashed together first (four
    /// at a time where the CPU can: `agora_core::tx_root::tx_ids`), not one by one at
    /// admission.
    pub fn forwarded(&mut self, txs: Vec<(RequestId, Vec<u8>)>) {
        let bytes: Vec<&[u8]> = txs.iter().map(|(_, bytes)| bytes.as_slice()).collect();
        let hashes = agora_core::tx_root::tx_ids(&bytes);
        for ((id, bytes), hash) in txs.into_iter().zip(hashes) {
            let request = Request::Submit { bytes, wait: false };
            self.request_hashed(id, request, Some(hash));
        }
    }

    /// [`Replica::request`]; `hash`: a submission's id, if the shell hashed it already.
    fn request_hashed(&mut self, id: RequestId, request: Request, hash: Option<Hash32>) {
        if let Some(halt) = &self.halted {
            let error = ApiError::new(500, "halted", halt.to_string());
            self.reply(id, Err(error));
            return;
        }
        if let Some(refusal) = (!self.executes())
            .then(|| witness_refusal(&request, self.is_witness()))
            .flatten()
        {
            self.reply(id, Err(refusal));
            return;
        }
        match request {
            Request::Submit { bytes, wait } => self.submit_checked(id, bytes, hash, wait, false),
            Request::Query { query, consistency } => self.query(id, query, consistency),
            Request::Status => {
                let status = self.status();
                self.reply(id, Ok(Answer::Status(Box::new(status))));
            }
            Request::Replay { entry } => self.replay(id, entry),
            Request::WeightHistory => {
                let history = self.weight_history();
                self.reply(id, Ok(Answer::WeightHistory(history)));
            }
            Request::Pending(hash) => {
                let pending = self.holds(&hash);
                self.reply(id, Ok(Answer::Pending(pending)));
            }
            Request::ProofAt { key, height } => self.proof_at(id, key, height),
        }
    }

    // ---- outputs ------------------------------------------------------------------------

    /// Everything to carry out since the last call, in the order [`Actions`] documents.
    /// Drives Raft's `Ready` loop: this is the one place a `Ready` is handled, in the node
    /// and in the simulator alike. An error means the replica halted; it stays halted.
    pub fn actions(&mut self) -> Result<Actions, NodeHalt> {
        if let Some(halt) = &self.halted {
            return Err(halt.clone());
        }
        let durable_commit = self.raft.commit_index();
        // An idle pipeline takes new transactions at once rather than at the next tick;
        // while a block is in flight, transactions gather for the next one.
        if self.takes_a_block_now() {
            self.propose_block();
        }
        let in_flight = !self.proposed_blocks.is_empty();
        self.limit_apply();
        let mut moved = self.drain_ready()?;
        // The block in flight committed just now: the next one goes out in this same batch
        // (one storage transaction for the commit and the new entry, and its append carries
        // the new commit index) rather than one loop later.
        if in_flight && self.takes_a_block_now() {
            self.propose_block();
            moved |= self.drain_ready()?;
        }
        self.send_signatures();
        for regression in self.raft.take_regressions() {
            self.pending
                .notices
                .push(Notice::FollowerRegressed(regression));
        }
        // After the configuration moved, or a member vouched for a leader we do not know.
        if moved || self.raft.vouched_leader() != self.peers.last_vouched() {
            self.publish_peers();
        }
        self.pending.verify = std::mem::take(&mut self.verifier.jobs);
        self.send_appends_early(durable_commit);
        Ok(std::mem::take(&mut self.pending))
    }

    /// Handles every `Ready` the core has; whether there was one.
    fn drain_ready(&mut self) -> Result<bool, NodeHalt> {
        let mut moved = false;
        while self.raft.has_ready() {
            moved = true;
            let ready = self.raft.ready();
            if let Err(halt) = self.handle_ready(ready) {
                self.halted = Some(halt.clone());
                return Err(halt);
            }
        }
        Ok(moved)
    }

    // ---- state, for the shell's metrics and the simulator's checkers ----------------------

    /// The Raft core.
    pub fn raft(&self) -> &Raft<C> {
        &self.raft
    }

    /// The ledger as applied.
    pub fn ledger(&self) -> &Ledger {
        self.app.ledger()
    }

    /// Transactions waiting for a block.
    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    /// Signature work so far.
    pub fn signature_work(&self) -> SignatureWork {
        let (handed_out, inline) = self.verifier.work();
        SignatureWork {
            handed_out,
            inline,
            cached: self.verifier.cached(),
            in_flight: self.verifier.in_flight(),
            holds_expired: self.verifier.holds_expired(),
        }
    }

    /// Blocks this replica applied without knowing their transactions' ids already (from
    /// building the block, or from its entry's arrival): it hashed their transactions again.
    pub fn blocks_hashed_at_apply(&self) -> u64 {
        self.verifier.tx_id_misses()
    }

    /// Clients waiting for commits.
    pub fn commit_waiters(&self) -> usize {
        self.waiters.clients()
    }

    /// Counts for metrics.
    pub fn counters(&self) -> &ReplicaCounters {
        &self.counters
    }

    /// Ticks since start.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Whether the replica halted.
    pub fn halted(&self) -> Option<&NodeHalt> {
        self.halted.as_ref()
    }

    // ---- the Ready handler ----------------------------------------------------------------

    fn handle_ready(&mut self, mut ready: Ready) -> Result<(), NodeHalt> {
        if let Some(soft) = ready.soft_state {
            self.on_role_change(soft.role, soft.leader);
        }
        // 1. Durable first (the executor's part), 2. then the messages.
        if ready.hard_state.is_some() || ready.snapshot.is_some() || !ready.entries.is_empty() {
            self.pending.writes.push(Write::Log {
                hard_state: ready.hard_state,
                snapshot: ready.snapshot.clone(),
                entries: ready.entries.clone(),
            });
        }
        self.pending
            .messages
            .append(&mut std::mem::take(&mut ready.messages));
        let witness = self.is_witness();
        let deferred = if witness {
            Vec::new()
        } else {
            self.prefetch_verdicts(&ready.entries)
        };
        // 3. Install, then apply (a witness does neither: it does not execute the log; a
        //    former witness applies nothing until a full snapshot gives it a ledger).
        if let Some(snapshot) = &ready.snapshot {
            if witness || snapshot.data.is_empty() {
                self.witness_install(snapshot);
            } else {
                self.install(snapshot)?;
            }
        }
        let executes = self.executes();
        if !witness {
            // Entries that arrived committed wait for the checks just started for them.
            if let Some(limit) = self.limit_apply() {
                ready.committed_entries.retain(|entry| entry.index <= limit);
            }
        }
        for entry in &ready.committed_entries {
            if !executes {
                self.unexecuted = true;
                self.counters.applied_entries += 1;
            } else {
                self.apply(entry)?;
            }
        }
        if !deferred.is_empty() {
            self.prefetch_deferred(deferred);
        }
        // 4. Reads confirmed at an index are served once it is applied.
        for read in std::mem::take(&mut ready.read_states) {
            self.reads.confirm(&read.context, read.index);
        }
        // 5. Advance.
        self.raft.advance(ready);
        self.reask_reads();
        self.serve_reads();
        if self.raft.role() != Role::Leader {
            self.proposed_blocks.clear();
            self.mempool.nothing_in_flight();
        }
        if witness {
            self.witness_compact();
        } else if executes {
            self.maybe_snapshot();
        }
        self.raft.set_stands_aside(self.is_former_witness());
        Ok(())
    }

    fn on_role_change(&mut self, role: Role, leader: Option<NodeId>) {
        self.pending.notices.push(Notice::Role {
            role,
            leader,
            term: self.raft.term(),
        });
        self.certify_on_role_change(role);
        // Reads not yet confirmed were asked of a leader that may be gone: asked again of
        // the next one.
        self.reask_reads_when_led(leader.is_some());
        // Awaited submissions may have gone to the old leader: send them again at the
        // next tick rather than after the resend interval.
        if leader.is_some() {
            self.waiters.make_all_due();
            self.hand_on_accepted();
        }
        if role == Role::Leader {
            self.last_block_proposed = self.now;
        }
    }

    fn install(&mut self, snapshot: &Snapshot) -> Result<(), NodeHalt> {
        let index = snapshot.meta.index;
        let ledger = Ledger::restore(&snapshot.data, &Hash32(snapshot.meta.state_root)).map_err(
            |error| NodeHalt::BadSnapshot {
                index,
                reason: error.to_string(),
            },
        )?;
        #[cfg(any(test, feature = "inject-bugs"))]
        if self.bugs.skip_snapshot_install {
            self.counters.snapshots_installed += 1;
            return Ok(());
        }
        self.app = LedgerApp::new(ledger);
        self.verifier.forget_entries_through(index);
        self.unexecuted = false;
        self.counters.snapshots_installed += 1;
        self.pending
            .notices
            .push(Notice::SnapshotInstalled { index });
        Ok(())
    }

    fn apply(&mut self, entry: &LogEntry) -> Result<(), NodeHalt> {
        let outcome = self
            .app
            .apply_entry(entry, &self.verifier)
            .map_err(|halt| NodeHalt::Ledger {
                index: entry.index,
                halt,
            })?;
        self.counters.applied_entries += 1;
        self.counters.committed_txs += outcome.receipts.len() as u64;
        self.sign_applied(entry.index);
        self.notify_waiters(entry.index, &outcome.receipts);
        self.answer_replays(entry, &outcome);
        self.mempool.applied_through(entry.index);
        self.verifier.forget_entries_through(entry.index);
        let ledger = self.app.ledger();
        self.forwarded
            .prune(self.now, |sender| ledger.next_nonce(sender));
        while self
            .proposed_blocks
            .front()
            .is_some_and(|&index| index <= entry.index)
        {
            self.proposed_blocks.pop_front();
        }
        self.record_weights(entry.index, &outcome.events);
        self.pending.writes.push(Write::Archive {
            entry: entry.clone(),
            receipts: outcome.receipts,
            events: outcome.events,
            traces: outcome.traces,
            state_root: outcome.state_root,
        });
        Ok(())
    }

    fn maybe_snapshot(&mut self) {
        let applied = self.raft.applied_index();
        if applied < self.raft.log().snapshot().index + self.config.snapshot_interval_entries {
            return;
        }
        let ledger = self.app.ledger();
        assert_eq!(
            ledger.height(),
            applied,
            "the ledger has applied exactly what Raft handed out"
        );
        self.raft.compact(
            applied,
            ledger.state_root().0,
            ledger.snapshot().to_canonical_bytes(),
        );
        let snapshot = self.raft.latest_snapshot().expect("just taken").clone();
        self.pending.notices.push(Notice::SnapshotTaken {
            index: applied,
            bytes: snapshot.data.len() as u64,
        });
        self.pending.writes.push(Write::Log {
            hard_state: None,
            snapshot: Some(snapshot),
            entries: Vec::new(),
        });
    }

    fn reply(&mut self, id: RequestId, result: Result<Answer, ApiError>) {
        self.pending.replies.push((id, result));
    }
}

#[cfg(test)]
mod tests;
