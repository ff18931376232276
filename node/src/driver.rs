//! The driver: the task that owns the Raft core, the SQLite store, the ledger and the
//! mempool, joined to the network and the HTTP API by bounded channels. It carries out
//! each `Ready` in the order the core documents: persist (one transaction), send, install
//! and apply, serve reads, advance.

use agora_consensus::app::LedgerApp;
use agora_consensus::mempool::{Mempool, MempoolError};
use crate::metrics::Metrics;
use crate::network::{Inbound, Outbound, Response};
use agora_consensus::raft::{
    Config, EntryData, Member, Membership, MlDsaVotes, NodeId, Raft, RaftConfig, Ready, Role,
    Snapshot, SnapshotMeta,
};
use crate::sqlite::SqliteStore;
use agora_consensus::storage::LogStore;
use agora_core::block::{Block, Entry, EntryPayload};
use agora_core::crypto::Purpose;
use agora_core::encoding::Canonical;
use agora_core::outcome::TargetConfig;
use agora_core::tx::{tx_hash, Sender, SignedTransaction};
use agora_core::{AccountId, Hash32, Ledger, Receipt, SecretKey, StateKey};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Where an API request's answer goes.
pub type Reply = oneshot::Sender<Result<Value, ApiError>>;

/// Tunables of the driver.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// One Raft tick.
    pub tick: Duration,
    /// Applied entries between snapshots.
    pub snapshot_interval_entries: u64,
    /// Transactions the mempool holds at most.
    pub mempool_capacity: usize,
    /// Transactions per block at most.
    pub max_block_txs: usize,
    /// Transaction bytes per block at most.
    pub max_block_bytes: usize,
    /// Blocks proposed but not yet committed, at most.
    pub max_uncommitted_blocks: u64,
    /// Clients waiting for a commit, at most.
    pub max_commit_waiters: usize,
    /// Linearizable reads waiting, at most.
    pub max_pending_reads: usize,
    /// How long a read or a forwarded submission may wait.
    pub request_timeout: Duration,
    /// Replay mode, for checking test vectors on a live cluster: the leader proposes no
    /// blocks, no configuration changes and no election no-op of its own; its log holds
    /// exactly the entries clients replay (`Command::Replay`), so they land at the
    /// heights the vector fixes. Transactions are refused.
    pub replay: bool,
    /// With no transactions for this long, the leader proposes an empty block, so that
    /// heights advance with time: voting periods close, unbonding releases, epochs turn.
    pub empty_block_interval: Option<Duration>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            tick: Duration::from_millis(100),
            snapshot_interval_entries: 1_000,
            mempool_capacity: 10_000,
            max_block_txs: 1_000,
            max_block_bytes: 8 << 20,
            max_uncommitted_blocks: 8,
            max_commit_waiters: 10_000,
            max_pending_reads: 4_096,
            request_timeout: Duration::from_secs(10),
            replay: false,
            empty_block_interval: Some(Duration::from_secs(1)),
        }
    }
}

/// A failure reported to an API client: an HTTP status, a stable code, a message.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What happened and what to do.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 503: try again shortly.
    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "unavailable", message)
    }
}

/// A question the API asks of the ledger.
#[derive(Debug, Clone)]
pub enum Query {
    /// One account.
    Account(AccountId),
    /// All validators and the target configuration.
    Validators,
    /// Proposals, newest first.
    Proposals,
    /// One proposal with its votes.
    Proposal(u64),
    /// The current state root and height.
    StateRoot,
    /// A value with its Merkle proof.
    Proof(StateKey),
    /// Parameters and chain counters.
    Chain,
}

/// Requests from the API to the driver.
#[derive(Debug)]
pub enum Command {
    /// Submit a transaction; with `wait`, answer once committed with its receipt.
    SubmitTx {
        /// Canonical signed bytes.
        bytes: Vec<u8>,
        /// Wait for the commit.
        wait: bool,
        /// The answer.
        reply: Reply,
    },
    /// Read the ledger, linearizably (ReadIndex) unless `local`.
    Query {
        /// What to read.
        query: Query,
        /// Read this replica without confirming leadership.
        local: bool,
        /// The answer.
        reply: Reply,
    },
    /// Node status.
    Status {
        /// The answer.
        reply: oneshot::Sender<Value>,
    },
    /// Replay mode: append this entry at its index (leader only) and answer once it is
    /// applied, with the root, receipts and events it produced.
    Replay {
        /// The entry, as a vector file holds it.
        entry: Entry,
        /// The answer.
        reply: Reply,
    },
    /// A value with its Merkle proof at a past height, rebuilt from the nearest state this
    /// node holds (the genesis or its snapshot) and its block archive.
    ProofAt {
        /// The key.
        key: StateKey,
        /// The height.
        height: u64,
        /// The answer.
        reply: Reply,
    },
    /// A block and its receipts by height.
    Block {
        /// The height.
        height: u64,
        /// The answer.
        reply: Reply,
    },
}

/// Everything the driver needs at start.
pub struct DriverParts {
    /// This node's validator key.
    pub key: SecretKey,
    /// The genesis ledger (height 0).
    pub genesis: Ledger,
    /// The opened store.
    pub store: SqliteStore,
    /// Settings.
    pub config: DriverConfig,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// From the network.
    pub inbound: mpsc::Receiver<Inbound>,
    /// To the network.
    pub outbound: mpsc::Sender<Outbound>,
    /// From the API.
    pub commands: mpsc::Receiver<Command>,
    /// Flips to true to stop.
    pub shutdown: watch::Receiver<bool>,
}

/// The Raft configuration a ledger target configuration asks for.
pub fn raft_config_of(target: &TargetConfig) -> Config {
    Config {
        members: target
            .members
            .iter()
            .map(|m| {
                (
                    m.validator,
                    Member {
                        weight: m.weight,
                        public_key: borsh::to_vec(&m.public_key).expect("in memory"),
                    },
                )
            })
            .collect(),
    }
}

/// libp2p peers of the validators in a target configuration.
pub fn peers_of(target: &TargetConfig) -> BTreeMap<NodeId, libp2p::PeerId> {
    target
        .members
        .iter()
        .filter_map(|m| {
            libp2p::PeerId::from_bytes(&m.peer)
                .ok()
                .map(|p| (m.validator, p))
        })
        .collect()
}

/// A submission some clients wait on.
struct Waiting {
    bytes: Vec<u8>,
    last_sent: Instant,
    clients: Vec<(Instant, Reply)>,
}

/// How often an uncommitted, awaited submission is sent again: a forward to a leader that
/// just died, or a block lost with its leader, must not strand the client. Sending twice is
/// safe: the nonce lets a transaction take effect once.
const RESEND_INTERVAL: Duration = Duration::from_millis(1_000);
/// How long a client waits for a commit before being told the outcome is unknown.
const COMMIT_WAIT_LIMIT: Duration = Duration::from_secs(30);

struct PendingRead {
    query: Query,
    index: Option<u64>,
    deadline: Instant,
    reply: Reply,
}

struct Driver {
    raft: Raft<MlDsaVotes>,
    app: LedgerApp,
    store: SqliteStore,
    key: SecretKey,
    config: DriverConfig,
    metrics: Arc<Metrics>,
    mempool: Mempool,
    outbound: mpsc::Sender<Outbound>,
    /// tx hash -> clients waiting for its receipt, with their submit time.
    /// Submissions whose clients wait for the commit, re-sent until it happens.
    waiters: BTreeMap<Hash32, Waiting>,
    reads: BTreeMap<u64, PendingRead>,
    next_read: u64,
    /// Indexes of blocks this leader proposed that are not yet applied.
    proposed_blocks: VecDeque<u64>,
    last_target: TargetConfig,
    last_members: BTreeSet<NodeId>,
    /// When this node last proposed a block (or became leader).
    last_block_proposed: Instant,
    /// Every validator's libp2p peer the ledger ever named.
    known_peers: BTreeMap<NodeId, libp2p::PeerId>,
    /// The genesis ledger, the base of past-height proofs before the first snapshot.
    genesis: Ledger,
    /// One past-height proof at a time.
    proof_slots: Arc<tokio::sync::Semaphore>,
    /// Replay mode: index -> clients waiting for that entry to apply, with the payload
    /// each replayed.
    replays: BTreeMap<u64, Vec<(EntryData, Reply)>>,
}

/// Runs the driver until shutdown (Ok) or a halt (Err: the node must stop).
pub async fn run(parts: DriverParts) -> Result<()> {
    let DriverParts {
        key,
        genesis,
        store,
        config,
        metrics,
        mut inbound,
        outbound,
        mut commands,
        mut shutdown,
    } = parts;
    let id = AccountId::from_public_key(key.public_key());
    let mut recovered = store.load().await.context("loading the Raft log")?;
    let target = genesis.target_config().clone();
    let ledger = match &recovered.snapshot {
        Some(snapshot) if snapshot.meta.index > 0 => {
            Ledger::restore(&snapshot.data, &Hash32(snapshot.meta.state_root))
                .context("restoring the stored snapshot")?
        }
        _ => genesis.clone(),
    };
    if recovered.snapshot.is_none() {
        recovered.snapshot = Some(Snapshot {
            meta: SnapshotMeta {
                index: 0,
                term: 0,
                membership: Membership::single(raft_config_of(&target)),
                state_root: genesis.state_root().0,
            },
            data: Arc::new(Vec::new()),
        });
    }
    let mut raft_config = RaftConfig::new(id);
    raft_config.election_noop = !config.replay;
    let raft = Raft::restart(
        raft_config,
        MlDsaVotes::new(key.clone()),
        u64::from_le_bytes(crate::keys::os_random()[..8].try_into().unwrap()),
        recovered,
    );
    let mut driver = Driver {
        raft,
        app: LedgerApp::new(ledger),
        store,
        mempool: Mempool::new(config.mempool_capacity),
        key,
        metrics,
        outbound,
        waiters: BTreeMap::new(),
        reads: BTreeMap::new(),
        next_read: 0,
        proposed_blocks: VecDeque::new(),
        last_target: TargetConfig::default(),
        last_members: BTreeSet::new(),
        last_block_proposed: Instant::now(),
        known_peers: BTreeMap::new(),
        replays: BTreeMap::new(),
        genesis: genesis.clone(),
        proof_slots: Arc::new(tokio::sync::Semaphore::new(1)),
        config,
    };
    driver.publish_validators().await;
    let mut ticker = tokio::time::interval(driver.config.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                driver.raft.tick();
                driver.on_tick();
            }
            Some(message) = inbound.recv() => match message {
                Inbound::Raft(message) => driver.raft.step(message),
                Inbound::SubmitTx(bytes, reply) => {
                    let response = match driver.admit(&bytes) {
                        Ok(hash) => Response::TxAccepted(hash),
                        Err(error) if error.status == 503 => Response::Busy,
                        Err(error) => Response::TxRejected(error.message),
                    };
                    let _ = reply.send(response);
                }
            },
            Some(command) = commands.recv() => driver.on_command(command),
            _ = shutdown.changed() => {
                tracing::info!("shutting down: flushing and closing the store");
                driver.store.close().await;
                return Ok(());
            }
        }
        // An idle pipeline takes new transactions at once rather than at the next tick;
        // while a block is in flight, transactions gather for the next one.
        if driver.proposed_blocks.is_empty()
            && !driver.mempool.is_empty()
            && driver.raft.role() == Role::Leader
            && !driver.config.replay
        {
            driver.propose_block();
        }
        while driver.raft.has_ready() {
            let ready = driver.raft.ready();
            driver.handle_ready(ready).await?;
        }
        driver.refresh_metrics();
    }
}

impl Driver {
    fn id(&self) -> NodeId {
        self.raft.id()
    }

    /// Tells the network whose messages to accept: the ledger's validators and every
    /// member of the Raft configuration, which lags the ledger during a change (a removed
    /// validator still votes in the joint configuration) and, in replay mode, never
    /// follows it.
    async fn publish_validators(&mut self) {
        let target = self.app.ledger().target_config().clone();
        let members = self.raft.membership().all_members();
        if target != self.last_target || members != self.last_members {
            self.known_peers.extend(peers_of(&target));
            let allowed: BTreeMap<NodeId, libp2p::PeerId> = self
                .known_peers
                .iter()
                .filter(|(id, _)| {
                    members.contains(*id) || target.members.iter().any(|m| m.validator == **id)
                })
                .map(|(id, peer)| (*id, *peer))
                .collect();
            let _ = self.outbound.send(Outbound::Validators(allowed)).await;
            self.last_target = target;
            self.last_members = members;
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.resend_awaited(now);
        let expired: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(read) = self.reads.remove(&id) {
                let _ = read.reply.send(Err(ApiError::busy(
                    "the read could not be confirmed in time (no leader?); retry",
                )));
            }
        }
        if self.raft.role() != Role::Leader && !self.replays.is_empty() {
            // The entry may still commit under the next leader; the client retries there
            // and is told what happened.
            for (_, reply) in std::mem::take(&mut self.replays).into_values().flatten() {
                let _ = reply.send(Err(ApiError::busy(
                    "leadership changed before the entry applied; retry at the leader",
                )));
            }
        }
        if self.raft.role() == Role::Leader && !self.config.replay {
            self.propose_block();
            self.reconfigure();
        }
    }

    /// Re-sends awaited submissions that have not committed yet; answers clients that
    /// waited too long, or whose nonce another transaction took.
    fn resend_awaited(&mut self, now: Instant) {
        let due: Vec<Hash32> = self
            .waiters
            .iter()
            .filter(|(_, w)| now.duration_since(w.last_sent) >= RESEND_INTERVAL)
            .map(|(h, _)| *h)
            .collect();
        for hash in due {
            let bytes = self.waiters[&hash].bytes.clone();
            let refused = self.admit(&bytes).err().filter(|e| e.status != 503);
            let waiting = self.waiters.get_mut(&hash).expect("listed");
            waiting.last_sent = now;
            if let Some(error) = refused {
                for (_, reply) in self.waiters.remove(&hash).expect("listed").clients {
                    let _ = reply.send(Err(error.clone()));
                }
                continue;
            }
            let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut waiting.clients)
                .into_iter()
                .partition(|(since, _)| now.duration_since(*since) >= COMMIT_WAIT_LIMIT);
            waiting.clients = kept;
            for (_, reply) in expired {
                let _ = reply.send(Err(ApiError::new(504, "commit_timeout", format!("not committed within {COMMIT_WAIT_LIMIT:?}; it may still commit: query the account's nonce before resubmitting"))));
            }
            if waiting.clients.is_empty() {
                self.waiters.remove(&hash);
            }
        }
    }

    /// Checks a transaction against the current state and queues it (leader) or hands it
    /// to the leader (follower). Returns its hash.
    fn admit(&mut self, bytes: &[u8]) -> Result<Hash32, ApiError> {
        if self.config.replay {
            return Err(ApiError::new(
                409,
                "replay_mode",
                "this node replays test vectors; it takes entries at /v1/replay, not transactions",
            ));
        }
        let signed = SignedTransaction::from_canonical_bytes(bytes)
            .map_err(|e| ApiError::new(400, "malformed_transaction", e.to_string()))?;
        let ledger = self.app.ledger();
        if signed.tx.chain_id != ledger.chain_id() {
            return Err(ApiError::new(
                400,
                "wrong_chain",
                format!(
                    "transaction is for chain {}, this is {}",
                    signed.tx.chain_id,
                    ledger.chain_id()
                ),
            ));
        }
        let sender = signed.tx.sender.account_id();
        let state = ledger.state();
        let key =
            match (&signed.tx.sender, state.account_keys.get(&sender)) {
                (Sender::Register(_), Some(_)) => {
                    return Err(ApiError::new(
                        400,
                        "key_already_registered",
                        "send with the account id",
                    ))
                }
                (Sender::Register(key), None) => key,
                (Sender::Account(_), Some(key)) => key,
                (Sender::Account(_), None) => return Err(ApiError::new(
                    400,
                    "unknown_account",
                    "the account has no registered key; its first transaction must carry the key",
                )),
            };
        if key
            .verify(
                Purpose::Transaction,
                &signed.signing_bytes(),
                &signed.signature,
            )
            .is_err()
        {
            return Err(ApiError::new(
                400,
                "bad_signature",
                "the signature does not verify under the sender's key",
            ));
        }
        let account = state.accounts.get(&sender).cloned().unwrap_or_default();
        if signed.tx.nonce < account.nonce {
            return Err(ApiError::new(
                409,
                "replayed_nonce",
                format!(
                    "nonce {} was used; the account expects {}",
                    signed.tx.nonce, account.nonce
                ),
            ));
        }
        if account.balance < state.params.fee {
            return Err(ApiError::new(
                400,
                "insufficient_funds_for_fee",
                format!("the balance cannot pay the fee of {}", state.params.fee),
            ));
        }
        let hash = tx_hash(bytes);
        match self.raft.role() {
            Role::Leader => match self.mempool.push(hash, bytes.to_vec()) {
                Ok(()) | Err(MempoolError::Duplicate) => Ok(hash),
                Err(MempoolError::Full) => Err(ApiError::busy("the mempool is full; retry later")),
            },
            _ => match self.raft.leader() {
                Some(leader) => {
                    let (reply, answer) = oneshot::channel();
                    let outbound = Outbound::SubmitTx {
                        leader,
                        tx: bytes.to_vec(),
                        reply,
                    };
                    if self.outbound.try_send(outbound).is_err() {
                        return Err(ApiError::busy("the network queue is full; retry later"));
                    }
                    // The leader's answer is logged; the client learns the outcome from the
                    // commit (with wait) or by querying.
                    tokio::spawn(async move {
                        if let Ok(Response::TxRejected(reason)) = answer.await {
                            tracing::debug!(%reason, "the leader refused a forwarded transaction");
                        }
                    });
                    Ok(hash)
                }
                None => Err(ApiError::busy("no leader is known yet; retry shortly")),
            },
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::SubmitTx { bytes, wait, reply } => match self.admit(&bytes) {
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
                Ok(hash) if !wait => {
                    let _ = reply.send(Ok(json!({ "tx_hash": hash, "status": "accepted" })));
                }
                Ok(hash) => {
                    let waiting: usize = self.waiters.values().map(|w| w.clients.len()).sum();
                    if waiting >= self.config.max_commit_waiters {
                        let _ = reply.send(Err(ApiError::busy(
                            "too many clients are waiting for commits; retry without wait",
                        )));
                    } else {
                        let now = Instant::now();
                        self.waiters
                            .entry(hash)
                            .or_insert_with(|| Waiting {
                                bytes,
                                last_sent: now,
                                clients: Vec::new(),
                            })
                            .clients
                            .push((now, reply));
                    }
                }
            },
            Command::Query {
                query,
                local,
                reply,
            } => {
                if local {
                    let _ = reply.send(self.answer(&query));
                    return;
                }
                if self.reads.len() >= self.config.max_pending_reads {
                    let _ = reply.send(Err(ApiError::busy(
                        "too many reads are waiting; retry later",
                    )));
                    return;
                }
                let id = self.next_read;
                self.next_read += 1;
                match self.raft.read_index(id.to_le_bytes().to_vec()) {
                    Ok(()) => {
                        self.reads.insert(
                            id,
                            PendingRead {
                                query,
                                index: None,
                                deadline: Instant::now() + self.config.request_timeout,
                                reply,
                            },
                        );
                    }
                    Err(error) => {
                        let _ = reply.send(Err(ApiError::busy(format!("cannot confirm a linearizable read: {error}; retry, or pass consistency=local"))));
                    }
                }
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Replay { entry, reply } => match self.replay(&entry) {
                Ok(data) => self
                    .replays
                    .entry(entry.index)
                    .or_default()
                    .push((data, reply)),
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
            Command::ProofAt { key, height, reply } => self.proof_at(key, height, reply),
            Command::Block { height, reply } => {
                // Served from the archive by the API task through the store; answered here
                // to keep one owner of the store.
                let store = self.store_handle();
                tokio::spawn(async move {
                    let _ = reply.send(store.block(height).await);
                });
            }
        }
    }

    /// Replay mode: appends `entry` at its index (or, when a retry finds it there already,
    /// leaves it); the caller then waits for it to apply. Refuses gaps, conflicts and
    /// membership entries.
    fn replay(&mut self, entry: &Entry) -> Result<EntryData, ApiError> {
        if !self.config.replay {
            return Err(ApiError::new(404, "not_replay_mode", "this node is not a replay node: start it with replay = true (agora-node devnet --vector FILE)"));
        }
        let data =
            match &entry.payload {
                EntryPayload::Noop => EntryData::Noop,
                EntryPayload::Block(bytes) => EntryData::Normal(bytes.clone()),
                EntryPayload::Membership(_) => return Err(ApiError::new(
                    400,
                    "membership_entry",
                    "membership entries cannot be replayed: a cluster's configuration is its own",
                )),
            };
        if self.raft.role() != Role::Leader {
            let leader = self
                .raft
                .leader()
                .map(|l| l.to_string())
                .unwrap_or_default();
            return Err(ApiError::new(
                421,
                "not_leader",
                format!("replay to the leader ({leader})"),
            ));
        }
        let waiting: usize = self.replays.values().map(Vec::len).sum();
        if waiting >= self.config.max_commit_waiters {
            return Err(ApiError::busy("too many replays are waiting; retry later"));
        }
        let last = self.raft.last_index();
        if entry.index <= self.raft.applied_index() {
            return Err(ApiError::new(
                409,
                "already_applied",
                format!(
                    "index {} is applied already; read it at /v1/blocks/{}",
                    entry.index, entry.index
                ),
            ));
        }
        if entry.index > last + 1 {
            return Err(ApiError::new(
                409,
                "gap",
                format!("the log ends at {last}; replay entry {} first", last + 1),
            ));
        }
        if entry.index == last + 1 {
            let proposed = match &data {
                EntryData::Normal(bytes) => self.raft.propose(bytes.clone()),
                _ => self.raft.propose_noop(),
            };
            if let Err(error) = proposed {
                return Err(ApiError::busy(format!("not appended: {error}")));
            }
        }
        Ok(data)
    }

    /// Replay mode: answers the clients waiting for `index`.
    fn answer_replays(&mut self, data: &EntryData, outcome: &agora_core::Outcome, index: u64) {
        for (wanted, reply) in self.replays.remove(&index).unwrap_or_default() {
            let answer = if &wanted == data {
                Ok(json!({
                    "index": index,
                    "state_root": outcome.state_root,
                    "receipts": outcome.receipts,
                    "events": outcome.events,
                }))
            } else {
                Err(ApiError::new(
                    409,
                    "conflict",
                    format!("another entry was committed at index {index}"),
                ))
            };
            let _ = reply.send(answer);
        }
    }

    /// Answers a proof at a past `height`: the state at the nearest stored base at or below
    /// it (the genesis or the latest snapshot) is rebuilt, the archived blocks up to
    /// `height` replayed (each root checked against the archive), and the value proved.
    /// The work runs off the driver, one request at a time, at most
    /// [`MAX_PROOF_REPLAY`] entries.
    fn proof_at(&mut self, key: StateKey, height: u64, reply: Reply) {
        let current = self.app.ledger().height();
        if height >= current {
            let answer = if height == current {
                self.answer(&Query::Proof(key))
            } else {
                Err(ApiError::new(
                    404,
                    "not_found",
                    format!("height {height} is not applied here yet (at {current})"),
                ))
            };
            let _ = reply.send(answer);
            return;
        }
        // From the snapshot if it is at or below the height, else from the genesis (a node
        // that caught up by snapshot lacks the archive for that and says so).
        let (base_index, base) = match self.raft.latest_snapshot() {
            Some(s) if s.meta.index > 0 && s.meta.index <= height => (
                s.meta.index,
                ProofBase::Snapshot(s.data.clone(), Hash32(s.meta.state_root)),
            ),
            _ => (0, ProofBase::Genesis(Box::new(self.genesis.clone()))),
        };
        if height - base_index > MAX_PROOF_REPLAY {
            let _ = reply.send(Err(ApiError::new(
                404,
                "too_far_back",
                format!(
                    "a proof at height {height} needs {} archived entries replayed from height {base_index}; this node serves past proofs within {MAX_PROOF_REPLAY} entries of a stored state",
                    height - base_index
                ),
            )));
            return;
        }
        let Ok(permit) = self.proof_slots.clone().try_acquire_owned() else {
            let _ = reply.send(Err(ApiError::busy(
                "another past-height proof is being built; retry shortly",
            )));
            return;
        };
        let store = self.store.reader();
        tokio::spawn(async move {
            let answer = replay_and_prove(store, base, base_index, height, key).await;
            drop(permit);
            let _ = reply.send(answer);
        });
    }

    fn store_handle(&self) -> ArchiveReader {
        ArchiveReader {
            store: self.store.reader(),
        }
    }

    fn answer(&self, query: &Query) -> Result<Value, ApiError> {
        crate::api::answer_query(self.app.ledger(), query)
    }

    fn status(&self) -> Value {
        let ledger = self.app.ledger();
        json!({
            "node": self.id(),
            "role": format!("{:?}", self.raft.role()).to_lowercase(),
            "term": self.raft.term(),
            "leader": self.raft.leader(),
            "commit_index": self.raft.commit_index(),
            "applied_index": self.raft.applied_index(),
            "last_index": self.raft.last_index(),
            "height": ledger.height(),
            "state_root": ledger.state_root(),
            "chain_id": ledger.chain_id(),
            "mempool": self.mempool.len(),
            "membership": self.raft.membership().incoming.members.iter().map(|(id, m)| json!({"node": id, "weight": m.weight})).collect::<Vec<_>>(),
            "joint": self.raft.membership().is_joint(),
        })
    }

    /// Leader: batches the mempool into a block on top of its log, or proposes an empty
    /// block when the chain has been idle for the empty-block interval.
    fn propose_block(&mut self) {
        let idle = self
            .config
            .empty_block_interval
            .is_some_and(|interval| self.last_block_proposed.elapsed() >= interval);
        if (self.mempool.is_empty() && !idle)
            || self.proposed_blocks.len() as u64 >= self.config.max_uncommitted_blocks
        {
            return;
        }
        let Some(index) = self.raft.next_proposal_index() else {
            return;
        };
        let txs = self
            .mempool
            .take(self.config.max_block_txs, self.config.max_block_bytes);
        let bytes: Vec<Vec<u8>> = txs.iter().map(|(_, tx)| tx.clone()).collect();
        let Some(payload) = self.app.build_block(
            self.raft.log(),
            index,
            &self.key,
            bytes,
            crate::keys::os_random(),
        ) else {
            self.mempool.restore(txs);
            return;
        };
        match self.raft.propose(payload) {
            Ok(index) => {
                self.proposed_blocks.push_back(index);
                self.last_block_proposed = Instant::now();
            }
            Err(error) => {
                tracing::debug!(%error, "block not proposed");
                self.mempool.restore(txs);
            }
        }
    }

    /// Leader: when the ledger's validators or weights differ from Raft's configuration,
    /// propose the joint change.
    fn reconfigure(&mut self) {
        let target = raft_config_of(self.app.ledger().target_config());
        if target != self.raft.membership().incoming
            && !self.raft.config_change_in_flight()
            && target.validate().is_ok()
        {
            match self.raft.propose_config(target) {
                Ok(index) => tracing::info!(index, "proposed the ledger's validator configuration"),
                Err(error) => tracing::debug!(%error, "configuration change not proposed"),
            }
        }
    }

    async fn handle_ready(&mut self, ready: Ready) -> Result<()> {
        if let Some(soft) = ready.soft_state {
            tracing::info!(role = ?soft.role, leader = ?soft.leader, term = self.raft.term(), "raft role changed");
            // Reads not yet confirmed were asked of a leader that may be gone: the client
            // retries now rather than waiting out the request timeout.
            let unconfirmed: Vec<u64> = self
                .reads
                .iter()
                .filter(|(_, r)| r.index.is_none())
                .map(|(id, _)| *id)
                .collect();
            for id in unconfirmed {
                let read = self.reads.remove(&id).expect("listed");
                let _ = read.reply.send(Err(ApiError::busy(
                    "leadership changed before the read was confirmed; retry",
                )));
            }
            // Awaited submissions may have gone to the old leader: send them again at the
            // next tick rather than after the resend interval.
            if soft.leader.is_some() {
                let due = Instant::now()
                    .checked_sub(RESEND_INTERVAL)
                    .unwrap_or_else(Instant::now);
                for waiting in self.waiters.values_mut() {
                    waiting.last_sent = due;
                }
            }
        }
        // 1. Durable first.
        self.store
            .save(ready.hard_state, ready.snapshot.as_ref(), &ready.entries)
            .await
            .context("persisting Raft state")?;
        // 2. Then the messages may leave.
        for message in &ready.messages {
            if self
                .outbound
                .try_send(Outbound::Raft(message.clone()))
                .is_err()
            {
                self.metrics.dropped_outbound.inc();
            }
        }
        // 3. Install, then apply.
        if let Some(snapshot) = &ready.snapshot {
            let ledger = match Ledger::restore(&snapshot.data, &Hash32(snapshot.meta.state_root)) {
                Ok(ledger) => ledger,
                Err(error) => {
                    self.metrics.halts.inc();
                    bail!("HALT: the snapshot received at index {} fails its state-root check ({error}); this node stops rather than trust it", snapshot.meta.index);
                }
            };
            self.app = LedgerApp::new(ledger);
            tracing::info!(
                index = snapshot.meta.index,
                "installed a snapshot from the leader"
            );
        }
        for entry in &ready.committed_entries {
            let started = Instant::now();
            let outcome = match self.app.apply_entry(entry) {
                Ok(outcome) => outcome,
                Err(halt) => {
                    self.metrics.halts.inc();
                    bail!("HALT at index {}: {halt}", entry.index);
                }
            };
            self.metrics
                .apply_seconds
                .observe(started.elapsed().as_secs_f64());
            self.metrics
                .committed_txs
                .inc_by(outcome.receipts.len() as u64);
            let block = match &entry.data {
                EntryData::Normal(bytes) => Some(bytes.as_slice()),
                _ => None,
            };
            let receipts = serde_json::to_string(&outcome.receipts).expect("receipts serialize");
            self.store
                .archive(entry.index, block, &receipts, &outcome.state_root.0)
                .await
                .context("archiving the block")?;
            self.notify(entry.index, &outcome.receipts);
            self.answer_replays(&entry.data, &outcome, entry.index);
            while self
                .proposed_blocks
                .front()
                .is_some_and(|&i| i <= entry.index)
            {
                self.proposed_blocks.pop_front();
            }
        }
        for read in &ready.read_states {
            let id = u64::from_le_bytes(read.context.as_slice().try_into().unwrap_or_default());
            if let Some(pending) = self.reads.get_mut(&id) {
                pending.index = Some(read.index);
            }
        }
        self.raft.advance(ready);
        self.serve_reads();
        self.publish_validators().await;
        self.maybe_snapshot().await?;
        if self.raft.role() != Role::Leader {
            self.proposed_blocks.clear();
        }
        Ok(())
    }

    fn notify(&mut self, height: u64, receipts: &[Receipt]) {
        for receipt in receipts {
            if let Some(waiting) = self.waiters.remove(&receipt.tx_hash) {
                for (submitted, reply) in waiting.clients {
                    self.metrics
                        .commit_seconds
                        .observe(submitted.elapsed().as_secs_f64());
                    let _ = reply.send(Ok(json!({ "tx_hash": receipt.tx_hash, "status": "committed", "height": height, "receipt": receipt })));
                }
            }
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.raft.applied_index();
        let ready: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            let read = self.reads.remove(&id).expect("listed");
            let _ = read.reply.send(self.answer(&read.query));
        }
    }

    async fn maybe_snapshot(&mut self) -> Result<()> {
        let applied = self.raft.applied_index();
        if applied < self.raft.log().snapshot().index + self.config.snapshot_interval_entries {
            return Ok(());
        }
        let ledger = self.app.ledger();
        self.raft.compact(
            applied,
            ledger.state_root().0,
            ledger.snapshot().to_canonical_bytes(),
        );
        let snapshot = self.raft.latest_snapshot().expect("just taken").clone();
        self.store
            .save(None, Some(&snapshot), &[])
            .await
            .context("storing the snapshot")?;
        tracing::info!(
            index = applied,
            bytes = snapshot.data.len(),
            "snapshot taken, log compacted"
        );
        Ok(())
    }

    fn refresh_metrics(&self) {
        let m = &self.metrics;
        m.term.set(self.raft.term() as i64);
        m.role.set(match self.raft.role() {
            Role::Follower => 0,
            Role::PreCandidate => 1,
            Role::Candidate => 2,
            Role::Leader => 3,
        });
        m.commit_index.set(self.raft.commit_index() as i64);
        m.applied_index.set(self.raft.applied_index() as i64);
        m.mempool_depth.set(self.mempool.len() as i64);
        m.dropped_bad_vote_signature
            .set(self.raft.counters().dropped_bad_vote_signature as i64);
    }
}

/// Where a past-height proof starts.
enum ProofBase {
    Genesis(Box<Ledger>),
    Snapshot(Arc<Vec<u8>>, Hash32),
}

/// Past-height proofs replay at most this many archived entries.
pub const MAX_PROOF_REPLAY: u64 = 2_000;

async fn replay_and_prove(
    store: crate::sqlite::StoreReader,
    base: ProofBase,
    base_index: u64,
    height: u64,
    key: StateKey,
) -> Result<Value, ApiError> {
    let mut archived = Vec::new();
    for h in base_index + 1..=height {
        let row = store
            .archived(h)
            .await
            .map_err(|e| ApiError::new(500, "storage", e.to_string()))?
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "not_found",
                    format!("this node has no archive of height {h} (it caught up by snapshot); ask another node"),
                )
            })?;
        archived.push((h, row.0, row.2));
    }
    tokio::task::spawn_blocking(move || {
        let mut ledger = match base {
            ProofBase::Genesis(ledger) => *ledger,
            ProofBase::Snapshot(data, root) => Ledger::restore(&data, &root)
                .map_err(|e| ApiError::new(500, "internal", format!("snapshot: {e}")))?,
        };
        for (h, block, root) in archived {
            let payload = match block {
                Some(bytes) => EntryPayload::Block(bytes),
                // No-ops and membership entries only advance the height.
                None => EntryPayload::Noop,
            };
            let outcome = ledger
                .apply(&Entry {
                    index: h,
                    term: 0,
                    payload,
                })
                .map_err(|e| ApiError::new(500, "internal", format!("replaying height {h}: {e}")))?;
            if outcome.state_root.0.as_slice() != root.as_slice() {
                return Err(ApiError::new(
                    500,
                    "archive_mismatch",
                    format!("replaying the archive gives another root at height {h}; this node's archive is damaged"),
                ));
            }
        }
        crate::api::answer_query(&ledger, &Query::Proof(key))
    })
    .await
    .map_err(|e| ApiError::new(500, "internal", e.to_string()))?
}

/// Reads the block archive from another task.
struct ArchiveReader {
    store: crate::sqlite::StoreReader,
}

impl ArchiveReader {
    async fn block(&self, height: u64) -> Result<Value, ApiError> {
        let archived = self
            .store
            .archived(height)
            .await
            .map_err(|e| ApiError::new(500, "storage", e.to_string()))?;
        let Some((block, receipts, root)) = archived else {
            return Err(ApiError::new(
                404,
                "not_found",
                format!("height {height} is not applied on this node yet"),
            ));
        };
        let block = block
            .map(|bytes| {
                Block::from_canonical_bytes(&bytes)
                    .map(|b| serde_json::to_value(&b).expect("serializes"))
                    .unwrap_or(Value::Null)
            })
            .unwrap_or(Value::Null);
        let receipts: Value = serde_json::from_str(&receipts).unwrap_or(Value::Null);
        Ok(
            json!({ "height": height, "block": block, "receipts": receipts, "state_root": hex::encode(root) }),
        )
    }
}
