//! The replica's tunables.

/// Tunables, in ticks where they are durations.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// Applied entries between snapshots.
    pub snapshot_interval_entries: u64,
    /// Transactions the mempool holds at most.
    pub mempool_capacity: usize,
    /// The nonce window: a transaction's nonce must be below its account's next nonce
    /// plus this, and an account has at most this many transactions pending.
    pub max_nonce_ahead: u64,
    /// How long the mempool holds a transaction whose predecessor nonce has not arrived.
    pub mempool_hold_ticks: u64,
    /// Transactions per block at most.
    pub max_block_txs: usize,
    /// Transaction bytes per block at most.
    pub max_block_bytes: usize,
    /// Blocks proposed but not yet applied, at most.
    pub max_uncommitted_blocks: u64,
    /// Clients waiting for a commit, at most.
    pub max_commit_waiters: usize,
    /// Linearizable reads waiting, at most.
    pub max_pending_reads: usize,
    /// Replayed entries waiting to apply, at most.
    pub max_replay_waiters: usize,
    /// How long a read may wait to be confirmed.
    pub read_timeout_ticks: u64,
    /// How often an awaited, uncommitted submission is sent again (to the leader of the
    /// moment): a forward to a leader that died, or a block lost with its leader, must not
    /// strand the client. Sending twice is safe: the nonce lets it take effect once.
    pub resend_interval_ticks: u64,
    /// How long a client waits for a commit before it is told the outcome is unknown.
    pub commit_wait_limit_ticks: u64,
    /// With nothing to propose for this long, the leader proposes an empty block, so that
    /// heights advance with time (voting periods close, unbonding releases, epochs turn).
    pub empty_block_interval_ticks: Option<u64>,
    /// Signature verdicts remembered (by transaction hash and signer), at most.
    pub verdict_cache_entries: usize,
    /// Signature checks handed to the executor and not yet answered, at most: past it,
    /// submissions are refused as busy.
    pub max_verifying: usize,
    /// How long a committed entry waits for the signature checks started when it arrived
    /// before it applies anyway, verifying inline what has no verdict yet.
    pub apply_hold_ticks: u64,
    /// Replay mode, for checking test vectors on a live cluster: the leader proposes no
    /// blocks, no configuration changes and no election no-op of its own; its log holds
    /// exactly the entries clients replay, at the heights the vector fixes. Transactions
    /// are refused.
    pub replay: bool,
}

impl ReplicaConfig {
    /// Defaults for a node whose tick lasts `tick_ms`: reads wait 10 s, awaited
    /// submissions are re-sent every second and given up after 30 s, an idle chain gets an
    /// empty block every `empty_block_ms` (0: never).
    pub fn for_tick(tick_ms: u64, empty_block_ms: u64) -> ReplicaConfig {
        let ticks = |ms: u64| ms.div_ceil(tick_ms.max(1)).max(1);
        ReplicaConfig {
            snapshot_interval_entries: 1_000,
            mempool_capacity: 10_000,
            max_nonce_ahead: 32,
            mempool_hold_ticks: ticks(60_000),
            max_block_txs: 1_000,
            max_block_bytes: 8 << 20,
            max_uncommitted_blocks: 8,
            max_commit_waiters: 10_000,
            max_pending_reads: 4_096,
            max_replay_waiters: 10_000,
            read_timeout_ticks: ticks(10_000),
            resend_interval_ticks: ticks(1_000),
            commit_wait_limit_ticks: ticks(30_000),
            empty_block_interval_ticks: (empty_block_ms > 0).then(|| ticks(empty_block_ms)),
            verdict_cache_entries: 65_536,
            max_verifying: 4_096,
            apply_hold_ticks: ticks(1_000),
            replay: false,
        }
    }
}
