//! The shell's event loop: it feeds the [`Replica`] ticks, peer messages and requests, and
//! carries out the [`Actions`] it returns with SQLite, libp2p and the HTTP API, in the
//! order `Actions` documents. It holds no ledger or consensus decision of its own: every
//! such decision is the replica's, which the simulator runs unchanged.

use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::network::{Inbound, Outbound, MAX_FORWARD_BATCH};
use crate::sqlite::{SqliteStore, StoreReader};
use crate::watchdog::{Phase, Pulse};
use agora_api::ApiError;
use agora_consensus::raft::{MlDsaVotes, RaftConfig, Recovered, Role};
use agora_consensus::replica::{
    Actions, Answer, HistoryJob, NodeHalt, Notice, Replica, ReplicaConfig, ReplicaParts, Request,
    RequestId, VerifyId, VerifyJob,
};
use agora_consensus::storage::StorageError;
use agora_core::{AccountId, Ledger, SecretKey};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

/// Where an API request's answer goes.
pub type Reply = oneshot::Sender<Result<Answer, ApiError>>;

/// A request from the HTTP API, with where its answer goes.
#[derive(Debug)]
pub struct Command {
    /// The request.
    pub request: Request,
    /// The answer.
    pub reply: Reply,
}

/// Tunables of the shell.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// One tick of the replica's clock.
    pub tick: Duration,
    /// The replica's settings (durations in ticks).
    pub replica: ReplicaConfig,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            tick: Duration::from_millis(100),
            replica: ReplicaConfig::for_tick(100, 1_000),
        }
    }
}

/// Everything the shell needs at start.
pub struct DriverParts {
    /// This node's validator key.
    pub key: SecretKey,
    /// The genesis ledger (height 0).
    pub genesis: Ledger,
    /// The opened store.
    pub store: SqliteStore,
    /// What the store held, loaded (and every row's checksum checked) before the node
    /// joined the network or served anything.
    pub recovered: Recovered,
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
    /// Where committed heights and role changes are published.
    pub events: Arc<EventHub>,
    /// This zone's chain id, and who leads each of the node's zones (shared by them all).
    pub leaders: (agora_core::ChainId, Arc<crate::zones::LeaderBoard>),
    /// The zone's name (for the watchdog's reports).
    pub name: String,
}

/// How long the event loop may stay in one place before the watchdog reports it, at least
/// (and at least 50 ticks): an fsync on a loaded disk can take a second or two.
const STALL_LIMIT: Duration = Duration::from_secs(5);

/// Ticks between two looks at whether to hand this zone's leadership to a member that
/// leads fewer of the node's zones (each zone looks at its own moment in the period).
const BALANCE_TICKS: u64 = 20;

/// Why the node stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The replica halted: its state can no longer be trusted.
    #[error(transparent)]
    Halt(#[from] NodeHalt),
    /// The replica could not start from what storage holds.
    #[error(transparent)]
    Start(#[from] agora_consensus::replica::StartError),
    /// Storage failed; nothing that depended on the failed write was sent. (Its cause is
    /// in the message, not a `source`: an error chain printed with `{:#}` would say it
    /// twice.)
    #[error("storage failed, stopping before anything that depended on it was sent: {0}")]
    Storage(StorageError),
}

impl From<StorageError> for DriverError {
    fn from(error: StorageError) -> Self {
        DriverError::Storage(error)
    }
}

/// Inputs taken from the channels before the replica's actions are carried out: one
/// storage transaction covers them all (group commit), and the bound keeps a flood of
/// messages from delaying a tick without limit.
const MAX_INPUTS_PER_BATCH: usize = 256;
/// Requests the shell remembers a route for, at most. The replica's own bounds keep the
/// number far below this; it is the shell's backstop.
const MAX_OPEN_REQUESTS: usize = 32_768;

/// Where a reply goes.
enum Route {
    /// An HTTP client, and when it asked.
    Client { reply: Reply, since: Instant },
    /// A transaction a validator forwarded: nobody waits for its answer (the follower
    /// learns its fate from the commit, or re-sends it), so a refusal is only logged.
    Peer,
}

struct Shell {
    replica: Replica<MlDsaVotes>,
    store: SqliteStore,
    outbound: mpsc::Sender<Outbound>,
    metrics: Arc<Metrics>,
    routes: BTreeMap<RequestId, Route>,
    next_request: RequestId,
    /// One past-height proof at a time.
    proof_slots: Arc<Semaphore>,
    /// One signature check per core at a time, off the event loop.
    crypto_slots: Arc<Semaphore>,
    /// Where finished signature checks come back, a batch at a time (bounded by the
    /// replica's `max_verifying`, which bounds the checks in flight).
    verified: mpsc::Sender<Vec<(VerifyId, bool)>>,
    /// Threads that check signatures at once.
    cores: usize,
    reader: StoreReader,
    events: Arc<EventHub>,
}

/// Runs the node's event loop until shutdown (Ok) or a halt or storage failure (Err: the
/// node must stop).
pub async fn run(parts: DriverParts) -> Result<(), DriverError> {
    let DriverParts {
        key,
        genesis,
        store,
        recovered,
        config,
        metrics,
        mut inbound,
        outbound,
        mut commands,
        mut shutdown,
        events,
        leaders: (zone, leaders),
        name,
    } = parts;
    let balance_at = u64::from(zone.0[0]) % BALANCE_TICKS;
    let mut ticks = 0u64;
    let id = AccountId::from_public_key(key.public_key());
    if !recovered.hard_state.proven {
        tracing::warn!(
            "the database holds no promise record (it was deleted, restored from a copy, or never initialized by `agora-node init`): this node rejoins before it votes — it asks every member for its term and log, and votes only for logs that hold everything committed until its own does"
        );
    }
    let replica = Replica::new(ReplicaParts {
        raft: raft_config(id),
        config: config.replica.clone(),
        crypto: MlDsaVotes::new(key.clone()),
        key,
        genesis,
        recovered,
        seed: crate::keys::os_random(),
    })?;
    let (verified, mut verified_rx) = mpsc::channel(config.replica.max_verifying.max(1));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut shell = Shell {
        replica,
        crypto_slots: Arc::new(Semaphore::new(cores)),
        verified,
        cores,
        reader: store.reader(),
        store,
        outbound,
        metrics,
        routes: BTreeMap::new(),
        next_request: 0,
        proof_slots: Arc::new(Semaphore::new(1)),
        events,
    };
    let mut ticker = tokio::time::interval(config.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let pulse = Pulse::new();
    crate::watchdog::spawn(
        &pulse,
        STALL_LIMIT.max(config.tick * 50),
        name,
        shell.metrics.loop_stalled_seconds.clone(),
    );
    loop {
        pulse.enter(Phase::Waiting);
        tokio::select! {
            _ = ticker.tick() => {
                shell.replica.tick();
                ticks += 1;
                leaders.set(zone, shell.replica.raft().leader());
                if ticks % BALANCE_TICKS == balance_at {
                    if let Some(to) = shell.replica.balance_leadership(|n| leaders.load(n)) {
                        tracing::info!(%to, "handing leadership to a member that leads fewer of this node's zones");
                    }
                }
            }
            Some(message) = inbound.recv() => shell.on_inbound(message),
            Some(command) = commands.recv() => shell.on_command(command),
            Some(results) = verified_rx.recv() => shell.on_verified(results),
            _ = shutdown.changed() => {
                tracing::info!("shutting down: flushing and closing the store");
                shell.store.close().await;
                return Ok(());
            }
        }
        pulse.enter(Phase::Replica);
        for _ in 1..MAX_INPUTS_PER_BATCH {
            if let Ok(results) = verified_rx.try_recv() {
                shell.on_verified(results);
            } else if let Ok(message) = inbound.try_recv() {
                shell.on_inbound(message);
            } else if let Ok(command) = commands.try_recv() {
                shell.on_command(command);
            } else {
                break;
            }
        }
        let started = Instant::now();
        let actions = match shell.replica.actions() {
            Ok(actions) => actions,
            Err(halt) => {
                shell.metrics.halts.inc();
                return Err(halt.into());
            }
        };
        shell
            .metrics
            .replica_seconds
            .observe(started.elapsed().as_secs_f64());
        shell.execute(actions, &pulse).await?;
        shell.refresh_metrics();
        shell.metrics.record_loop(&pulse);
    }
}

/// One request per leader for what one batch of inputs forwards, at most
/// [`MAX_FORWARD_BATCH`] transactions each, in the order they came: a libp2p request (a
/// stream, its framing, its answer) costs more than a transaction's bytes.
fn forward_batches(forwards: Vec<(AccountId, Vec<u8>)>) -> Vec<(AccountId, Vec<Vec<u8>>)> {
    let mut by_leader: BTreeMap<AccountId, Vec<Vec<u8>>> = BTreeMap::new();
    for (leader, tx) in forwards {
        by_leader.entry(leader).or_default().push(tx);
    }
    let mut batches = Vec::new();
    for (leader, txs) in by_leader {
        let mut txs = txs.into_iter().peekable();
        while txs.peek().is_some() {
            batches.push((leader, txs.by_ref().take(MAX_FORWARD_BATCH).collect()));
        }
    }
    batches
}

impl Shell {
    fn open_route(&mut self, route: Route) -> Option<RequestId> {
        if self.routes.len() >= MAX_OPEN_REQUESTS {
            let busy = ApiError::busy("the node has too many requests open; retry shortly");
            match route {
                Route::Client { reply, .. } => {
                    let _ = reply.send(Err(busy));
                }
                Route::Peer => {
                    tracing::debug!(reason = %busy.message, "a forwarded transaction was refused")
                }
            }
            return None;
        }
        let id = self.next_request;
        self.next_request += 1;
        self.routes.insert(id, route);
        Some(id)
    }

    fn on_inbound(&mut self, message: Inbound) {
        match message {
            Inbound::Raft(message) => self.replica.receive(message),
            Inbound::SubmitTxs(txs) => {
                let numbered = txs
                    .into_iter()
                    .filter_map(|bytes| Some((self.open_route(Route::Peer)?, bytes)))
                    .collect();
                self.replica.forwarded(numbered);
            }
            Inbound::Disconnected(node) => self.replica.peer_unreachable(node),
        }
    }

    fn on_command(&mut self, command: Command) {
        let route = Route::Client {
            reply: command.reply,
            since: Instant::now(),
        };
        if let Some(id) = self.open_route(route) {
            self.replica.request(id, command.request);
        }
    }

    /// Carries out `actions` in the documented order: a leader's early appends, forwards
    /// and signature checks, writes (one transaction), then messages, then replies and
    /// jobs, then peers and notices.
    async fn execute(&mut self, actions: Actions, pulse: &Pulse) -> Result<(), DriverError> {
        let Actions {
            early,
            writes,
            messages,
            forwards,
            replies,
            jobs,
            verify,
            peers,
            notices,
        } = actions;
        // A leader's appends go out first: followers write while the leader does. So do
        // forwards and signature checks: neither waits on this node's fsync.
        self.send_raft(early);
        self.send_forwards(forwards);
        self.start_verify(verify);
        pulse.enter(Phase::Storing);
        if let Err(error) = self.store.write(&writes).await {
            tracing::error!(%error, "storage failed");
            return Err(error.into());
        }
        pulse.enter(Phase::Carrying);
        self.events.publish_writes(&writes);
        self.send_raft(messages);
        for (id, result) in replies {
            self.deliver(id, result);
        }
        for (id, job) in jobs {
            self.start_job(id, job);
        }
        if let Some(peers) = peers {
            let peers = peers
                .into_iter()
                .filter_map(|(node, peer)| Some((node, libp2p::PeerId::from_bytes(&peer).ok()?)))
                .collect();
            if self.outbound.try_send(Outbound::Validators(peers)).is_err() {
                self.metrics.dropped_outbound.inc();
            }
        }
        for notice in notices {
            if let Notice::Role { role, leader, term } = &notice {
                self.events.publish_role(*role, *leader, *term);
            }
            log_notice(&notice);
        }
        Ok(())
    }

    fn send_forwards(&self, forwards: Vec<(AccountId, Vec<u8>)>) {
        for (leader, txs) in forward_batches(forwards) {
            self.metrics.forward_batch_size.observe(txs.len() as f64);
            if self
                .outbound
                .try_send(Outbound::Forward { leader, txs })
                .is_err()
            {
                self.metrics.dropped_outbound.inc();
            }
        }
    }

    fn send_raft(&self, messages: Vec<agora_consensus::raft::Message>) {
        for message in messages {
            if self
                .outbound
                .try_send(Outbound::Raft(Box::new(message)))
                .is_err()
            {
                self.metrics.dropped_outbound.inc();
            }
        }
    }

    fn deliver(&mut self, id: RequestId, result: Result<Answer, ApiError>) {
        match self.routes.remove(&id) {
            Some(Route::Client { reply, since }) => {
                if let Ok(Answer::Submitted(submitted)) = &result {
                    if submitted.receipt.is_some() {
                        self.metrics
                            .commit_seconds
                            .observe(since.elapsed().as_secs_f64());
                    }
                }
                let _ = reply.send(result);
            }
            Some(Route::Peer) => {
                if let Err(error) = result {
                    tracing::debug!(reason = %error.message, "a forwarded transaction was refused");
                }
            }
            None => tracing::warn!(id, "a reply for a request with no route"),
        }
    }

    fn on_verified(&mut self, results: Vec<(VerifyId, bool)>) {
        for (id, ok) in results {
            self.replica.verified(id, ok);
        }
    }

    /// Checks a batch of signatures on blocking threads, split over the cores (one
    /// thread per core at a time); each part's results come back into the loop as one
    /// input.
    fn start_verify(&self, jobs: Vec<(VerifyId, VerifyJob)>) {
        if jobs.is_empty() {
            return;
        }
        let per_part = jobs.len().div_ceil(self.cores);
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let part: Vec<(VerifyId, VerifyJob)> = jobs.by_ref().take(per_part).collect();
            let slots = self.crypto_slots.clone();
            let verified = self.verified.clone();
            tokio::spawn(async move {
                let Ok(_permit) = slots.acquire_owned().await else {
                    return;
                };
                let checked = tokio::task::spawn_blocking(move || {
                    part.into_iter()
                        .map(|(id, job)| (id, job.run()))
                        .collect::<Vec<_>>()
                })
                .await;
                if let Ok(results) = checked {
                    let _ = verified.send(results).await;
                }
            });
        }
    }

    /// Builds a past-height proof off the event loop, one at a time: the archive read
    /// here, the replay on a blocking thread.
    fn start_job(&mut self, id: RequestId, job: HistoryJob) {
        let Ok(permit) = self.proof_slots.clone().try_acquire_owned() else {
            let busy = ApiError::busy("another past-height proof is being built; retry shortly");
            return self.deliver(id, Err(busy));
        };
        let Some(Route::Client { reply, .. }) = self.routes.remove(&id) else {
            return;
        };
        let reader = self.reader.clone();
        tokio::spawn(async move {
            let answer = async {
                let mut archive = Vec::new();
                for height in job.heights() {
                    archive.push(reader.archived_entry(height).await?);
                }
                tokio::task::spawn_blocking(move || job.run(archive))
                    .await
                    .map_err(|e| ApiError::new(500, "internal", e.to_string()))?
            }
            .await;
            drop(permit);
            let _ = reply.send(answer.map(|proof| Answer::Proof(Box::new(proof))));
        });
    }

    fn refresh_metrics(&self) {
        let m = &self.metrics;
        let raft = self.replica.raft();
        m.term.set(raft.term() as i64);
        m.role.set(match raft.role() {
            Role::Follower => 0,
            Role::PreCandidate => 1,
            Role::Candidate => 2,
            Role::Leader => 3,
        });
        m.commit_index.set(raft.commit_index() as i64);
        m.applied_index.set(raft.applied_index() as i64);
        m.snapshot_index.set(raft.log().snapshot().index as i64);
        m.mempool_depth.set(self.replica.mempool_len() as i64);
        m.dropped_bad_vote_signature
            .set(raft.counters().dropped_bad_vote_signature as i64);
        m.committed_txs
            .set(self.replica.counters().committed_txs as i64);
        m.follower_regressions
            .set(raft.counters().follower_regressions as i64);
        m.rejoins.set(raft.counters().rejoins as i64);
        m.leader_disconnects
            .set(raft.counters().leader_disconnects as i64);
        let work = self.replica.signature_work();
        m.signatures_checked.set(work.handed_out as i64);
        m.signatures_inline.set(work.inline as i64);
        m.signatures_in_flight.set(work.in_flight as i64);
        m.apply_holds_expired.set(work.holds_expired as i64);
        m.blocks_hashed_at_apply
            .set(self.replica.blocks_hashed_at_apply() as i64);
    }
}

fn log_notice(notice: &Notice) {
    match notice {
        Notice::Role { role, leader, term } => {
            tracing::info!(?role, ?leader, term, "raft role changed")
        }
        Notice::SnapshotInstalled { index } => {
            tracing::info!(index, "installed a snapshot from the leader")
        }
        Notice::SnapshotTaken { index, bytes } => {
            tracing::info!(index, bytes, "snapshot taken, log compacted")
        }
        Notice::Reconfiguring { index } => {
            tracing::info!(index, "proposed the ledger's validator configuration")
        }
        Notice::FollowerRegressed(r) => tracing::warn!(
            node = %r.node,
            acknowledged = r.acknowledged,
            has_before = r.has_before,
            "follower {} lost durable state: it had acknowledged index {} and now has nothing matching from {} on; replicating to it again",
            r.node,
            r.acknowledged,
            r.has_before
        ),
    }
}

/// The Raft core's settings. A build with the `inject-bugs` feature (the end-to-end tests'
/// only) also honours `AGORA_INJECT_BUG`, so that the nemesis can prove its checker
/// catches a real safety bug; release builds have no such switch.
fn raft_config(id: AccountId) -> RaftConfig {
    #[allow(unused_mut)]
    let mut raft = RaftConfig::new(id);
    #[cfg(feature = "inject-bugs")]
    if let Ok(bug) = std::env::var("AGORA_INJECT_BUG") {
        match bug.as_str() {
            // The leader commits (and so acknowledges) an entry once its own log holds
            // it, before a quorum has it on disk.
            "commit-before-quorum" => raft.bugs.commit_with_minority = true,
            "grant-two-votes" => raft.bugs.grant_two_votes = true,
            "skip-log-consistency-check" => raft.bugs.skip_log_consistency_check = true,
            other => panic!("AGORA_INJECT_BUG={other}: no such bug"),
        }
        tracing::error!("AGORA_INJECT_BUG={bug}: this node is broken on purpose, for a test");
    }
    raft
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::Hash32;

    #[test]
    fn forwards_go_in_bounded_batches_per_leader_in_order() {
        let (a, b) = (AccountId(Hash32([1; 32])), AccountId(Hash32([2; 32])));
        let mut forwards = Vec::new();
        for i in 0..600u32 {
            let leader = if i % 3 == 0 { b } else { a };
            forwards.push((leader, i.to_le_bytes().to_vec()));
        }
        let batches = forward_batches(forwards);
        let sizes: Vec<(AccountId, usize)> =
            batches.iter().map(|(l, txs)| (*l, txs.len())).collect();
        assert_eq!(sizes, vec![(a, 256), (a, 144), (b, 200)]);
        let to_a: Vec<u32> = batches
            .iter()
            .filter(|(l, _)| *l == a)
            .flat_map(|(_, txs)| {
                txs.iter()
                    .map(|t| u32::from_le_bytes(t[..4].try_into().unwrap()))
            })
            .collect();
        let expected: Vec<u32> = (0..600).filter(|i| i % 3 != 0).collect();
        assert_eq!(to_a, expected, "in the order they came");
        assert!(forward_batches(Vec::new()).is_empty());
    }
}
