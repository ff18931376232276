//! Prometheus metrics, exposed at `/metrics`: the node's own (its network), and each
//! zone's under a `zone` label (the zone's name).

use crate::network::NetworkCounters;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Every metric of the node: its network's, and each zone's, labelled.
pub struct NodeMetrics {
    registry: Mutex<Registry>,
    peers: Gauge,
    unauthorized: Gauge,
    network: Arc<NetworkCounters>,
}

impl NodeMetrics {
    /// The node's registry, with the network's metrics.
    pub fn new(network: Arc<NetworkCounters>) -> Arc<NodeMetrics> {
        let mut registry = Registry::with_prefix("agora");
        let (peers, unauthorized) = (Gauge::default(), Gauge::default());
        registry.register("network_connected_peers", "Connected peers", peers.clone());
        registry.register(
            "network_dropped_unauthorized",
            "Raft messages and forwards from peers outside the zone's validator configuration (or claiming another validator), or for a zone this node does not serve",
            unauthorized.clone(),
        );
        Arc::new(NodeMetrics {
            registry: Mutex::new(registry),
            peers,
            unauthorized,
            network,
        })
    }

    /// A zone's metrics, registered under `zone="<name>"`.
    pub fn zone(self: &Arc<Self>, name: &str) -> Arc<Metrics> {
        let mut registry = self.registry.lock().expect("metrics lock");
        let zone = registry.sub_registry_with_label(("zone".into(), name.to_owned().into()));
        Arc::new(Metrics::register(zone, self.clone()))
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.peers
            .set(self.network.connected_peers.load(Ordering::Relaxed) as i64);
        self.unauthorized
            .set(self.network.dropped_unauthorized.load(Ordering::Relaxed) as i64);
        let mut text = String::new();
        let registry = self.registry.lock().expect("metrics lock");
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// One zone's metrics.
pub struct Metrics {
    /// Current term.
    pub term: Gauge,
    /// 0 follower, 1 pre-candidate, 2 candidate, 3 leader.
    pub role: Gauge,
    /// Commit index.
    pub commit_index: Gauge,
    /// Applied index.
    pub applied_index: Gauge,
    /// Index of the newest snapshot (the log is compacted up to it).
    pub snapshot_index: Gauge,
    /// Transactions in the mempool.
    pub mempool_depth: Gauge,
    /// Votes dropped for a missing or bad signature.
    pub dropped_bad_vote_signature: Gauge,
    /// Followers this node, leading, found behind what they had acknowledged.
    pub follower_regressions: Gauge,
    /// Rejoins this node completed after starting without its promise record.
    pub rejoins: Gauge,
    /// Times this follower's connection to its leader closed.
    pub leader_disconnects: Gauge,
    /// Transactions in applied blocks.
    pub committed_txs: Gauge,
    /// Transaction signatures checked on the crypto threads.
    pub signatures_checked: Gauge,
    /// Transaction signatures a block apply checked inline (no verdict cached).
    pub signatures_inline: Gauge,
    /// Signature checks in flight.
    pub signatures_in_flight: Gauge,
    /// Entries whose signature pre-checks outlasted the hold (apply stopped waiting).
    pub apply_holds_expired: Gauge,
    /// Blocks applied whose transaction ids were not known already (hashed again).
    pub blocks_hashed_at_apply: Gauge,
    /// Times this node halted (state root divergence, bad snapshot, corrupt entry).
    pub halts: Counter,
    /// Consensus messages dropped because the network queue was full.
    pub dropped_outbound: Counter,
    /// Seconds the replica took to produce one batch of actions (applying included).
    pub replica_seconds: Histogram,
    /// Seconds from submission to commit, for clients that waited.
    pub commit_seconds: Histogram,
    /// Transactions per request forwarded to the leader.
    pub forward_batch_size: Histogram,
    /// `/v1/events` subscribers connected.
    pub event_subscribers: Gauge,
    /// `/v1/events` subscribers cut off for falling behind.
    pub event_subscribers_cut: Counter,
    /// Seconds the event loop has been stuck in one place past the watchdog limit.
    pub loop_stalled_seconds: Gauge,
    /// Seconds the event loop spent in each phase (see [`crate::watchdog::Phase`]).
    /// `agora_event_loop_seconds_total`, one counter per phase in `Phase::ALL`'s order,
    /// made once at registration so the loop's turn looks nothing up.
    loop_seconds: [Counter<f64, AtomicU64>; 4],
    node: Arc<NodeMetrics>,
}

impl Metrics {
    /// A node with one zone, named `default`, and its metrics.
    pub fn new(network: Arc<NetworkCounters>) -> Arc<Metrics> {
        NodeMetrics::new(network).zone("default")
    }

    /// Registers every metric of a zone in `registry`.
    fn register(registry: &mut Registry, node: Arc<NodeMetrics>) -> Metrics {
        let mut metrics = Metrics {
            term: Gauge::default(),
            role: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            snapshot_index: Gauge::default(),
            mempool_depth: Gauge::default(),
            dropped_bad_vote_signature: Gauge::default(),
            follower_regressions: Gauge::default(),
            rejoins: Gauge::default(),
            leader_disconnects: Gauge::default(),
            committed_txs: Gauge::default(),
            signatures_checked: Gauge::default(),
            signatures_inline: Gauge::default(),
            signatures_in_flight: Gauge::default(),
            apply_holds_expired: Gauge::default(),
            blocks_hashed_at_apply: Gauge::default(),
            halts: Counter::default(),
            dropped_outbound: Counter::default(),
            replica_seconds: Histogram::new(exponential_buckets(0.000_01, 4.0, 10)),
            commit_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            forward_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            event_subscribers: Gauge::default(),
            event_subscribers_cut: Counter::default(),
            loop_stalled_seconds: Gauge::default(),
            loop_seconds: Default::default(),
            node,
        };
        registry.register("raft_term", "Current Raft term", metrics.term.clone());
        registry.register(
            "raft_role",
            "0 follower, 1 pre-candidate, 2 candidate, 3 leader",
            metrics.role.clone(),
        );
        registry.register(
            "raft_commit_index",
            "Raft commit index",
            metrics.commit_index.clone(),
        );
        registry.register(
            "raft_applied_index",
            "Entries applied to the ledger",
            metrics.applied_index.clone(),
        );
        registry.register(
            "raft_snapshot_index",
            "Index of the newest snapshot; the log is compacted up to it",
            metrics.snapshot_index.clone(),
        );
        registry.register(
            "mempool_depth",
            "Transactions waiting in the mempool",
            metrics.mempool_depth.clone(),
        );
        registry.register(
            "raft_rejoins",
            "Rejoins this node completed after starting without its promise record (a lost or restored database)",
            metrics.rejoins.clone(),
        );
        registry.register(
            "raft_leader_disconnects",
            "Times this follower's connection to its leader closed; each time it campaigns at the end of its lease promise rather than after its random election timeout",
            metrics.leader_disconnects.clone(),
        );
        registry.register(
            "raft_follower_regressions",
            "Followers found behind what they had acknowledged (they lost durable state); each is also logged, naming the node",
            metrics.follower_regressions.clone(),
        );
        registry.register(
            "raft_dropped_bad_vote_signature",
            "Votes dropped for a missing or invalid ML-DSA signature",
            metrics.dropped_bad_vote_signature.clone(),
        );
        registry.register(
            "committed_transactions",
            "Transactions in applied blocks",
            metrics.committed_txs.clone(),
        );
        registry.register(
            "signatures_checked",
            "Transaction signatures checked on the crypto threads",
            metrics.signatures_checked.clone(),
        );
        registry.register(
            "signatures_checked_inline",
            "Transaction signatures a block apply checked inline, finding no verdict",
            metrics.signatures_inline.clone(),
        );
        registry.register(
            "signatures_in_flight",
            "Signature checks handed to the crypto threads and not yet back",
            metrics.signatures_in_flight.clone(),
        );
        registry.register(
            "apply_holds_expired",
            "Log entries whose signature checks, started when they arrived, outlasted the 1 s hold: apply stopped waiting for them and checks inline what has no verdict yet",
            metrics.apply_holds_expired.clone(),
        );
        registry.register(
            "blocks_hashed_at_apply",
            "Blocks applied whose transaction ids were not known from building the block or from its arrival, so apply hashed them",
            metrics.blocks_hashed_at_apply.clone(),
        );
        registry.register(
            "state_root_divergence_halts",
            "Halts: state root divergence, bad snapshot or corrupt entry",
            metrics.halts.clone(),
        );
        registry.register(
            "network_dropped_outbound",
            "Consensus messages dropped on a full network queue",
            metrics.dropped_outbound.clone(),
        );
        registry.register(
            "replica_seconds",
            "Time the replica took to produce one batch of actions, applying included",
            metrics.replica_seconds.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time from submission to commit",
            metrics.commit_seconds.clone(),
        );
        registry.register(
            "forward_batch_size",
            "Transactions per request a follower forwarded to the leader",
            metrics.forward_batch_size.clone(),
        );
        registry.register(
            "event_subscribers",
            "Subscribers of the event stream (GET /v1/events)",
            metrics.event_subscribers.clone(),
        );
        registry.register(
            "event_subscribers_cut",
            "Event stream subscribers cut off because their buffer filled (they read too slowly)",
            metrics.event_subscribers_cut.clone(),
        );
        registry.register(
            "event_loop_stalled_seconds",
            "How long the zone's event loop has stayed in one place past the watchdog's limit (0 while it moves); the log names the place",
            metrics.loop_stalled_seconds.clone(),
        );
        let loop_family =
            Family::<[(&'static str, &'static str); 1], Counter<f64, AtomicU64>>::default();
        // A counter's clone shares its value: these are the family's own.
        metrics.loop_seconds = crate::watchdog::Phase::ALL.map(|phase| {
            loop_family
                .get_or_create(&[("phase", phase.label())])
                .clone()
        });
        registry.register(
            "event_loop_seconds",
            "Seconds the zone's event loop spent in each phase: waiting for input, in the replica (raft, apply), storing (one SQLite transaction and its fsync), carrying out the rest",
            loop_family,
        );
        metrics
    }

    /// Brings `agora_event_loop_seconds_total` up to what `pulse` has counted.
    pub fn record_loop(&self, pulse: &crate::watchdog::Pulse) {
        for (counter, seconds) in self.loop_seconds.iter().zip(pulse.spent()) {
            let behind = seconds - counter.get();
            if behind > 0.0 {
                counter.inc_by(behind);
            }
        }
    }

    /// The node's whole exposition (every zone's metrics, and the network's).
    pub fn render(&self) -> String {
        self.node.render()
    }
}
