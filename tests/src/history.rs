//! What clients did, and whether the cluster's chain can explain it.
//!
//! Clients ([`client`]) transfer from their own account with consecutive nonces (each
//! attempt resent as the same bytes until it has a definite answer) and read their
//! account in between, through any node. Every operation is recorded with its invoke and
//! complete times. [`check`] then judges the history against the chain the nodes archived:
//!
//! - every acknowledged transaction is applied exactly once, and so is every transaction a
//!   node later called a replayed nonce (it can only have been this one);
//! - no transaction is applied that no client (or the set-up) sent;
//! - reads are linearizable. Each account has a single writer whose writes are totally
//!   ordered by nonce, so a read's position in the order is the nonce it saw, and the
//!   history is linearizable exactly when every read saw a nonce no older than a read
//!   that completed before it began, no older than a write acknowledged before it began,
//!   and no newer than the writes begun before it ended; the balance it saw must be the
//!   one that exactly that many transfers leave (no torn or invented state);
//! - reads of the shared account, which every client pays into (many writers), are
//!   within bounds and monotonic: a read saw at least the transfers into it acknowledged
//!   before the read began, at most those begun before it ended, and never less than a
//!   read that completed before it began (Jepsen's counter check, with real-time order);
//! - every node that archived a height holds the same state root for it;
//! - the supply grew by exactly the proposer rewards.
//!
//! A violation is reported, not panicked on, so that a test can also show the checker
//! catches a cluster broken on purpose.

use crate::cluster::{error_code, http_partial, random_account, Cluster};
use agora_api::{AccountResponse, BlockResponse, ChainResponse};
use agora_core::encoding::Canonical;
use agora_core::tx::{Action, Sender, Transaction};
use agora_core::{AccountId, Amount, Hash32, SecretKey};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Each transfer moves this much; the rest of what an account loses is the flat fee.
pub const TRANSFER: u128 = 1;

/// What a client did, with when it began and ended (milliseconds since the start).
#[derive(Clone, Debug)]
pub struct Op {
    pub client: usize,
    pub invoke: u128,
    pub complete: u128,
    pub kind: OpKind,
    /// For a transfer attempt (whatever its answer): the transaction, and whether it pays
    /// the shared account.
    pub tx: Option<(Hash32, bool)>,
}

#[derive(Clone, Debug)]
pub enum OpKind {
    /// Transfer with nonce `nonce`: acknowledged as committed.
    Acked { hash: Hash32, nonce: u64 },
    /// Refused as a replayed nonce: an earlier attempt of the same bytes committed.
    Replayed { hash: Hash32, nonce: u64 },
    /// No definite answer (timeout, a node down, paused or cut off, 503): retried.
    Unknown,
    /// A linearizable read saw the account's next nonce and its balance.
    Read { nonce: u64, balance: u128 },
    /// A linearizable read saw the shared account's balance.
    SharedRead { balance: u128 },
}

/// The shared record of a run.
#[derive(Default)]
pub struct History {
    pub ops: Mutex<Vec<Op>>,
    /// Every transaction any client (or the set-up) signed and sent.
    pub sent: Mutex<BTreeSet<Hash32>>,
}

fn signed_transfer(chain: Hash32, key: &SecretKey, nonce: u64, to: AccountId) -> Vec<u8> {
    let account = AccountId::from_public_key(key.public_key());
    Transaction {
        chain_id: chain,
        sender: if nonce == 0 {
            Sender::Register(key.public_key().clone())
        } else {
            Sender::Account(account)
        },
        nonce,
        action: Action::Transfer {
            to,
            amount: Amount(TRANSFER),
        },
    }
    .sign(key, agora_node::keys::os_random())
    .to_canonical_bytes()
}

/// What one client needs to run.
pub struct Client {
    pub id: usize,
    /// The account every client pays into half of the time (never registered).
    pub shared: AccountId,
    pub key: SecretKey,
    pub chain: Hash32,
    /// The nodes' HTTP ports; each operation goes to one chosen at random.
    pub ports: Vec<u16>,
    pub start: Instant,
    pub stop: Arc<AtomicBool>,
    pub history: Arc<History>,
    pub seed: u64,
}

/// Runs a client until `stop`: transfers with consecutive nonces, each resent (the same
/// bytes) until it gets a definite answer, and reads of its account in between.
pub fn client(c: Client) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(c.seed ^ (c.id as u64 + 1));
    let account = AccountId::from_public_key(c.key.public_key());
    let wait = Duration::from_secs(5);
    let now = || c.start.elapsed().as_millis();
    let record = |invoke, kind, tx| {
        c.history.ops.lock().unwrap().push(Op {
            client: c.id,
            invoke,
            complete: now(),
            kind,
            tx,
        })
    };
    let mut nonce = 0u64;
    let mut pending: Option<(Vec<u8>, bool)> = None;
    while !c.stop.load(Ordering::Relaxed) {
        let port = c.ports[rng.random_range(0..c.ports.len())];
        let invoke = now();
        if pending.is_none() && rng.random_range(0..6) == 0 {
            let path = format!("/v1/accounts/{}", c.shared);
            let kind = match http_partial(port, "GET", &path, 0, &[], wait) {
                Some((200, body)) => {
                    let read: AccountResponse =
                        serde_json::from_value(body).expect("an account answer");
                    OpKind::SharedRead {
                        balance: read.balance.0,
                    }
                }
                // Nothing paid into it yet.
                Some((404, _)) => OpKind::SharedRead { balance: 0 },
                _ => OpKind::Unknown,
            };
            record(invoke, kind, None);
            continue;
        }
        if pending.is_none() && rng.random_range(0..3) == 0 {
            let path = format!("/v1/accounts/{account}");
            let kind = match http_partial(port, "GET", &path, 0, &[], wait) {
                Some((200, body)) => {
                    let read: AccountResponse =
                        serde_json::from_value(body).expect("an account answer");
                    OpKind::Read {
                        nonce: read.nonce,
                        balance: read.balance.0,
                    }
                }
                // Not registered yet and never funded: nothing at all.
                Some((404, _)) => OpKind::Read {
                    nonce: 0,
                    balance: 0,
                },
                _ => OpKind::Unknown,
            };
            record(invoke, kind, None);
            continue;
        }
        let (bytes, to_shared) = pending
            .get_or_insert_with(|| {
                let to_shared = rng.random_bool(0.5);
                let to = if to_shared {
                    c.shared
                } else {
                    random_account()
                };
                (signed_transfer(c.chain, &c.key, nonce, to), to_shared)
            })
            .clone();
        let hash = agora_core::tx::tx_hash(&bytes);
        c.history.sent.lock().unwrap().insert(hash);
        let answer = http_partial(
            port,
            "POST",
            "/v1/tx?wait=commit",
            bytes.len(),
            &bytes,
            wait,
        );
        let kind = match &answer {
            Some((200, body)) if body["status"] == "committed" => OpKind::Acked { hash, nonce },
            // The nonce is used: by an earlier attempt of these bytes, the only transaction
            // this client signed for it. (Nonce 0 registers the key: a repeat finds it
            // registered.)
            Some((409, body)) if error_code(body).as_deref() == Some("replayed_nonce") => {
                OpKind::Replayed { hash, nonce }
            }
            Some((400, body))
                if nonce == 0 && error_code(body).as_deref() == Some("key_already_registered") =>
            {
                OpKind::Replayed { hash, nonce }
            }
            // A node up to 32 entries behind (ready) may still see the account's nonce as
            // too far ahead: a refusal that a caught-up node would not give; try another.
            Some((400, body)) if error_code(body).as_deref() == Some("nonce_too_far_ahead") => {
                OpKind::Unknown
            }
            Some((400, body)) => panic!("client {}: transfer {nonce} refused: {body}", c.id),
            _ => OpKind::Unknown,
        };
        let definite = !matches!(kind, OpKind::Unknown);
        record(invoke, kind, Some((hash, to_shared)));
        if definite {
            pending = None;
            nonce += 1;
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The chain as the nodes archived it, and the state the checker compares against.
pub struct Chain {
    /// Per height: the blocks every reachable node archived for it.
    pub heights: Vec<Vec<BlockResponse>>,
    pub chain: ChainResponse,
    /// Nodes that did not catch up to the leader's height in time.
    pub lagging: Vec<String>,
}

/// Reads every height up to the leader's, from every node that answers. A cluster that
/// does not come back (no leader, or a node that does not catch up) is itself a failure:
/// the first is an error, the second recorded in [`Chain::lagging`] for [`check`].
pub fn read_chain(cluster: &Cluster, limit: Duration) -> Result<Chain, Vec<String>> {
    let started = Instant::now();
    let nodes = cluster.nodes.len();
    let leader = loop {
        if let Some(l) = cluster.leader() {
            break l;
        }
        if started.elapsed() > limit {
            return Err(vec![format!("no leader {limit:?} after the faults healed")]);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The supply and the height it is at, read together (an idle leader keeps adding
    // empty blocks while the checker reads).
    let Some(chain) = cluster.get_as::<ChainResponse>(leader, "/v1/chain") else {
        return Err(vec![format!("the leader (node {leader}) does not answer")]);
    };
    let height = chain.globals.height;
    let mut lagging = Vec::new();
    for i in 0..nodes {
        while cluster.status(i).is_none_or(|s| s.height < height) {
            if started.elapsed() > limit {
                lagging.push(format!(
                    "node {i} did not reach height {height} within {limit:?} of healing"
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let heights = (1..=height)
        .map(|h| {
            (0..nodes)
                .filter_map(|i| cluster.get_as(i, &format!("/v1/blocks/{h}")))
                .collect()
        })
        .collect();
    Ok(Chain {
        heights,
        chain,
        lagging,
    })
}

/// What a clean run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub operations: usize,
    pub acknowledged: usize,
    pub reads: usize,
    pub unknown: usize,
    pub applied: usize,
    pub heights: u64,
    /// Transactions a block carried again after another block applied them: refused by
    /// apply, no effect.
    pub resends_refused: usize,
}

/// Judges `history` against `chain`; `funds` is what the set-up gave each client's account.
pub fn check(
    ops: &[Op],
    sent: &BTreeSet<Hash32>,
    chain: &Chain,
    funds: u128,
) -> Result<Summary, Vec<String>> {
    let mut violations = chain.lagging.clone();
    let mut applied: BTreeMap<Hash32, u32> = BTreeMap::new();
    let mut refused = 0;
    let mut blocks = 0u128;
    for (h, archived) in chain.heights.iter().enumerate() {
        let h = h + 1;
        let Some(block) = archived.first() else {
            violations.push(format!("height {h} is archived nowhere"));
            continue;
        };
        let roots: BTreeSet<Hash32> = archived.iter().map(|b| b.state_root).collect();
        if roots.len() != 1 {
            violations.push(format!(
                "nodes disagree on the root of height {h}: {roots:?}"
            ));
        }
        if block.block.is_some() {
            blocks += 1;
        }
        for receipt in &block.receipts {
            if receipt.status == agora_core::TxStatus::Applied {
                *applied.entry(receipt.tx_hash).or_insert(0) += 1;
            } else {
                refused += 1;
            }
            if !sent.contains(&receipt.tx_hash) {
                violations.push(format!(
                    "height {h} holds {}, which nobody sent",
                    receipt.tx_hash
                ));
            }
        }
    }

    // Acknowledged (or known committed) exactly once.
    let mut acknowledged = 0;
    for op in ops {
        if let OpKind::Acked { hash, .. } | OpKind::Replayed { hash, .. } = &op.kind {
            acknowledged += 1;
            let times = applied.get(hash).copied().unwrap_or(0);
            if times != 1 {
                violations.push(format!(
                    "acknowledged but applied {times} times (lost or duplicated): {op:?}"
                ));
            }
        }
    }
    for (hash, count) in &applied {
        if *count != 1 {
            violations.push(format!("{hash} applied {count} times"));
        }
    }

    let fee = chain.chain.params.fee.0;
    let clients: BTreeSet<usize> = ops.iter().map(|o| o.client).collect();
    for id in clients {
        violations.extend(check_reads(id, ops, funds, fee));
    }
    violations.extend(check_shared_reads(ops));

    // The supply grows by the proposer rewards only.
    let expected = 1_000_000_000 + blocks * chain.chain.params.proposer_reward.0;
    if chain.chain.globals.total_supply.0 != expected {
        violations.push(format!(
            "total supply {} but genesis and {blocks} rewards make {expected}",
            chain.chain.globals.total_supply.0
        ));
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    let count = |f: fn(&OpKind) -> bool| ops.iter().filter(|o| f(&o.kind)).count();
    Ok(Summary {
        operations: ops.len(),
        acknowledged,
        reads: count(|k| matches!(k, OpKind::Read { .. } | OpKind::SharedRead { .. })),
        unknown: count(|k| matches!(k, OpKind::Unknown)),
        applied: applied.len(),
        heights: chain.heights.len() as u64,
        resends_refused: refused,
    })
}

/// The reads of client `id`'s account against the history of its single writer.
fn check_reads(id: usize, ops: &[Op], funds: u128, fee: u128) -> Vec<String> {
    let mut violations = Vec::new();
    let ops: Vec<&Op> = ops.iter().filter(|o| o.client == id).collect();
    let reads: Vec<(&Op, u64, u128)> = ops
        .iter()
        .filter_map(|o| match o.kind {
            OpKind::Read { nonce, balance } => Some((*o, nonce, balance)),
            _ => None,
        })
        .collect();
    let written = |o: &Op| match o.kind {
        OpKind::Acked { nonce, .. } | OpKind::Replayed { nonce, .. } => Some(nonce),
        OpKind::Unknown | OpKind::Read { .. } | OpKind::SharedRead { .. } => None,
    };
    for (read, seen, balance) in &reads {
        let before = reads
            .iter()
            .filter(|(earlier, _, _)| earlier.complete < read.invoke)
            .map(|(_, n, _)| *n)
            .max();
        if let Some(before) = before.filter(|b| seen < b) {
            violations.push(format!(
                "client {id}: a read at {} ms saw nonce {seen} after a read had seen {before}",
                read.invoke
            ));
        }
        let acked = ops
            .iter()
            .filter(|o| o.complete < read.invoke)
            .filter_map(|o| written(o))
            .max();
        if let Some(acked) = acked.filter(|a| *seen <= *a) {
            violations.push(format!(
                "client {id}: a read at {} ms saw nonce {seen} after transfer {acked} was acknowledged",
                read.invoke
            ));
        }
        // A client reads only between transfers, once the last one had a definite
        // answer: nothing of its own is in flight during a read.
        let invoked = ops
            .iter()
            .filter(|o| o.invoke < read.complete)
            .filter_map(|o| written(o).map(|n| n + 1))
            .max()
            .unwrap_or(0);
        if *seen > invoked {
            violations.push(format!(
                "client {id}: a read saw nonce {seen}, past anything sent"
            ));
        }
        // The state after exactly `seen` transfers (the funding came before any read).
        let expected = funds - u128::from(*seen) * (TRANSFER + fee);
        if *balance != expected {
            violations.push(format!(
                "client {id}: a read saw nonce {seen} with balance {balance}, but {seen} transfers leave {expected}"
            ));
        }
    }
    violations
}

/// The reads of the shared account, against every client's transfers into it. Each
/// transfer into it adds [`TRANSFER`]; a read's balance counts those it saw.
fn check_shared_reads(ops: &[Op]) -> Vec<String> {
    let mut violations = Vec::new();
    // Per transfer into the shared account: when its first attempt began, and when it was
    // acknowledged (if it was).
    let mut first_invoke: BTreeMap<Hash32, u128> = BTreeMap::new();
    let mut acknowledged: BTreeMap<Hash32, u128> = BTreeMap::new();
    for op in ops {
        if let Some((hash, true)) = op.tx {
            let first = first_invoke.entry(hash).or_insert(op.invoke);
            *first = (*first).min(op.invoke);
            if matches!(op.kind, OpKind::Acked { .. } | OpKind::Replayed { .. }) {
                acknowledged.insert(hash, op.complete);
            }
        }
    }
    let reads: Vec<(&Op, u128)> = ops
        .iter()
        .filter_map(|o| match o.kind {
            OpKind::SharedRead { balance } => Some((o, balance / TRANSFER)),
            _ => None,
        })
        .collect();
    for (read, seen) in &reads {
        let at_least = acknowledged
            .values()
            .filter(|&&done| done < read.invoke)
            .count() as u128;
        let at_most = first_invoke
            .values()
            .filter(|&&began| began < read.complete)
            .count() as u128;
        if *seen < at_least || *seen > at_most {
            violations.push(format!(
                "shared account: a read at {} ms saw {seen} transfers, but {at_least} were acknowledged before it began and {at_most} begun before it ended",
                read.invoke
            ));
        }
        if let Some((earlier, before)) = reads
            .iter()
            .find(|(earlier, before)| earlier.complete < read.invoke && before > seen)
        {
            violations.push(format!(
                "shared account: a read at {} ms saw {seen} transfers after a read completed at {} ms had seen {before}",
                read.invoke, earlier.complete
            ));
        }
    }
    violations
}
