//! Signature checks as work the executor does, off the event loop.
//!
//! Each node verifies each transaction's signature once. A verification is an output
//! ([`Actions::verify`](super::Actions)) and its result an input
//! ([`Replica::verified`](super::Replica::verified)); the verdict lands in a bounded cache
//! keyed by transaction hash and signer, which admission and block apply consult (a miss
//! verifies inline, so a lost or slow verification never changes an outcome, only its
//! cost). Followers start verifying a block's transactions when its entry arrives, before
//! it commits; a committed entry whose checks are still running waits for them (at most
//! `apply_hold_ticks`) rather than verifying the same signatures again inline, on the
//! event loop. At most `max_verifying` checks are in flight: past that, a submission is
//! refused as busy (503) and a block's pre-check is skipped.

use super::{Replica, RequestId};
use crate::raft::{EntryData, LogEntry, Role, VoteCrypto};
use agora_core::block::Block;
use agora_core::encoding::Canonical;
use agora_core::tx_root::tx_ids;
use agora_core::{
    AccountId, Certificate, CommitStatement, Hash32, PublicKey, Purpose, Signature,
    SignatureVerdicts, SignedTransaction, ValidatorId,
};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// A replica's signature work so far, for metrics and the simulator's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignatureWork {
    /// Checks handed to the executor.
    pub handed_out: u64,
    /// Signatures a block apply found no verdict for and verified inline.
    pub inline: u64,
    /// Verdicts cached.
    pub cached: usize,
    /// Checks in flight.
    pub in_flight: usize,
    /// Entries whose pre-checks outlasted `apply_hold_ticks`: applying them stopped
    /// waiting (checking inline what had no verdict yet).
    pub holds_expired: u64,
}

/// Names a verification: its result comes back with this id.
pub type VerifyId = u64;

/// One signature to check. Run it anywhere (it is pure) and hand the result back with
/// [`Replica::verified`](super::Replica::verified).
#[derive(Clone, Debug)]
pub struct VerifyJob {
    pub(super) check: Check,
}

/// What a [`VerifyJob`] checks.
#[derive(Clone, Debug)]
pub(super) enum Check {
    /// A transaction's signature under its sender's key.
    Tx {
        signed: SignedTransaction,
        key: PublicKey,
    },
    /// A validator's commit signature.
    Commit {
        statement: CommitStatement,
        validator: ValidatorId,
        key: PublicKey,
        signature: Signature,
    },
}

impl VerifyJob {
    /// A transaction's signature under `key`.
    pub(super) fn tx(signed: SignedTransaction, key: PublicKey) -> VerifyJob {
        VerifyJob {
            check: Check::Tx { signed, key },
        }
    }

    /// Verifies the signature.
    pub fn run(&self) -> bool {
        match &self.check {
            Check::Tx { signed, key } => signed.signature_verifies(key),
            Check::Commit {
                statement,
                key,
                signature,
                ..
            } => key
                .verify(Purpose::Commit, &statement.to_bytes(), signature)
                .is_ok(),
        }
    }

    /// Who signed: the verdict cache's second key.
    fn signer(&self) -> AccountId {
        match &self.check {
            Check::Tx { signed, .. } => signed.tx.sender.account_id(),
            Check::Commit { validator, .. } => *validator,
        }
    }
}

/// What waits on a verification.
#[derive(Debug)]
pub(super) enum Then {
    /// A client's (or a forwarding follower's) submission, admitted once verified.
    Submit {
        id: RequestId,
        bytes: Vec<u8>,
        /// The bytes' hash, as the check before the verification computed it.
        hash: Hash32,
        wait: bool,
    },
    /// An awaited submission being sent again.
    Resend { bytes: Vec<u8>, hash: Hash32 },
    /// A signature in the block at log `index`, which arrived: the cache wants the
    /// verdict, and applying that entry waits for it.
    Prefetch { index: u64 },
    /// A validator's commit signature the leader gathers.
    Commit {
        height: u64,
        validator: ValidatorId,
        signature: Signature,
    },
}

type Key = (Hash32, AccountId);

/// How many log entries' transaction ids a node keeps ahead of applying them (a leader
/// has at most its uncommitted blocks in flight; a follower what one append carries).
const MAX_TX_ID_ENTRIES: usize = 1_024;

struct InFlight {
    key: Key,
    then: Vec<Then>,
}

/// A log entry's pre-checks still running.
struct Awaited {
    checks: usize,
    /// The tick the first of them started.
    since: u64,
}

/// The verdict cache and the verifications in flight.
pub(super) struct Verifier {
    /// Verdicts by (transaction id, signer). Hashed, not ordered: every admission, every
    /// prefetch and every transaction applied looks one up, and an ordered map of 64-byte
    /// keys compared them ~17 times per lookup (2% of a node's CPU under load). Only
    /// looked up, inserted and removed by key, never iterated, so its order reaches no
    /// result; the default hasher's per-process keys keep crafted ids from piling into
    /// one bucket.
    verdicts: HashMap<Key, bool>,
    /// Insertion order, for eviction (oldest first).
    order: VecDeque<Key>,
    capacity: usize,
    in_flight: BTreeMap<VerifyId, InFlight>,
    /// The check in flight for a key (by key only, like `verdicts`).
    by_key: HashMap<Key, VerifyId>,
    max_in_flight: usize,
    next_id: VerifyId,
    /// Lookups by block apply that missed.
    apply_misses: std::cell::Cell<u64>,
    /// The transaction ids of blocks in log entries not applied yet, by (index, term), as
    /// this node hashed them when it built the block or the entry arrived: a block's
    /// transactions are hashed once per node, not again at apply. At most
    /// [`MAX_TX_ID_ENTRIES`] entries (past it the highest index goes: the lowest apply
    /// soonest).
    tx_ids: BTreeMap<(u64, u64), Vec<Hash32>>,
    /// Blocks whose transaction ids apply did not find here (it hashed them).
    tx_id_misses: std::cell::Cell<u64>,
    /// By log index: entries whose pre-checks are running; applying them waits.
    awaited: BTreeMap<u64, Awaited>,
    /// Entries whose pre-checks outlasted `apply_hold_ticks` (applying them stopped waiting).
    holds_expired: u64,
    /// Jobs to hand out with the next actions.
    pub(super) jobs: Vec<(VerifyId, VerifyJob)>,
}

/// Why a verification could not start.
pub(super) struct Full;

impl Verifier {
    pub(super) fn new(capacity: usize, max_in_flight: usize) -> Verifier {
        Verifier {
            verdicts: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            in_flight: BTreeMap::new(),
            by_key: HashMap::new(),
            max_in_flight,
            next_id: 0,
            apply_misses: std::cell::Cell::new(0),
            tx_ids: BTreeMap::new(),
            tx_id_misses: std::cell::Cell::new(0),
            awaited: BTreeMap::new(),
            holds_expired: 0,
            jobs: Vec::new(),
        }
    }

    /// Verifications in flight.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Verdicts cached.
    pub(super) fn cached(&self) -> usize {
        self.verdicts.len()
    }

    /// Verifications handed out, and block applies that found no verdict (and verified
    /// inline).
    pub(super) fn work(&self) -> (u64, u64) {
        (self.next_id, self.apply_misses.get())
    }

    /// Keeps the ids of the transactions of the block at `index` of `term`.
    pub(super) fn remember_tx_ids(&mut self, index: u64, term: u64, ids: Vec<Hash32>) {
        self.tx_ids.insert((index, term), ids);
        while self.tx_ids.len() > MAX_TX_ID_ENTRIES {
            self.tx_ids.pop_last();
        }
    }

    /// Blocks that applied without their transaction ids known (hashed at apply).
    pub(super) fn tx_id_misses(&self) -> u64 {
        self.tx_id_misses.get()
    }

    /// Drops what it keeps for entries at or below `index` (applied, or under a
    /// snapshot): their transaction ids, and any wait for their pre-checks.
    pub(super) fn forget_entries_through(&mut self, index: u64) {
        let next = index.saturating_add(1);
        self.tx_ids = self.tx_ids.split_off(&(next, 0));
        self.awaited = self.awaited.split_off(&next);
    }

    /// The highest log index that may be applied now: just below the first entry whose
    /// pre-checks are running (`None`: no limit).
    pub(super) fn apply_limit(&self) -> Option<u64> {
        self.awaited
            .keys()
            .next()
            .map(|index| index.saturating_sub(1))
    }

    /// Stops waiting for pre-checks started `hold` ticks or more before `now`: those
    /// entries apply, verifying inline what has no verdict yet.
    pub(super) fn expire_holds(&mut self, now: u64, hold: u64) {
        let before = self.awaited.len();
        self.awaited
            .retain(|_, awaited| now.saturating_sub(awaited.since) < hold);
        self.holds_expired += (before - self.awaited.len()) as u64;
    }

    /// Entries that stopped waiting for their pre-checks (the hold expired).
    pub(super) fn holds_expired(&self) -> u64 {
        self.holds_expired
    }

    /// A pre-check of the entry at `index` started (or joined one running) at `now`.
    fn awaiting(&mut self, index: u64, now: u64) {
        self.awaited
            .entry(index)
            .or_insert(Awaited {
                checks: 0,
                since: now,
            })
            .checks += 1;
    }

    /// A pre-check of the entry at `index` finished.
    fn prefetched(&mut self, index: u64) {
        if let Some(awaited) = self.awaited.get_mut(&index) {
            awaited.checks -= 1;
            if awaited.checks == 0 {
                self.awaited.remove(&index);
            }
        }
    }

    fn cached_verdict(&self, tx: &Hash32, signer: &AccountId) -> Option<bool> {
        self.verdicts.get(&(*tx, *signer)).copied()
    }

    /// Asks for `signed` to be verified under `key`, and `then` done once it is. Joins a
    /// check of the same transaction already in flight.
    pub(super) fn start(&mut self, tx: Hash32, job: VerifyJob, then: Then) -> Result<(), Full> {
        let k = (tx, job.signer());
        if let Some(id) = self.by_key.get(&k) {
            let flight = self.in_flight.get_mut(id).expect("indexed");
            let resending = matches!(then, Then::Resend { .. });
            if !(resending && flight.then.iter().any(|t| matches!(t, Then::Resend { .. }))) {
                flight.then.push(then);
            }
            return Ok(());
        }
        if self.in_flight.len() >= self.max_in_flight {
            return Err(Full);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.by_key.insert(k, id);
        self.in_flight.insert(
            id,
            InFlight {
                key: k,
                then: vec![then],
            },
        );
        self.jobs.push((id, job));
        Ok(())
    }

    /// Records a result; returns what waited on it (nothing for an unknown id).
    fn finish(&mut self, id: VerifyId, ok: bool) -> Vec<Then> {
        let Some(flight) = self.in_flight.remove(&id) else {
            return Vec::new();
        };
        self.by_key.remove(&flight.key);
        self.record(flight.key, ok);
        flight.then
    }

    /// Caches a verdict (evicting the oldest past capacity).
    pub(super) fn record(&mut self, key: Key, ok: bool) {
        if self.verdicts.insert(key, ok).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                let oldest = self.order.pop_front().expect("non-empty");
                self.verdicts.remove(&oldest);
            }
        }
    }
}

/// Block apply's view: a miss is counted (the ledger then verifies inline).
impl SignatureVerdicts for Verifier {
    fn verdict(&self, tx: &Hash32, signer: &AccountId) -> Option<bool> {
        let verdict = self.cached_verdict(tx, signer);
        if verdict.is_none() {
            self.apply_misses.set(self.apply_misses.get() + 1);
        }
        verdict
    }

    fn tx_ids(&self, index: u64, term: u64) -> Option<&[Hash32]> {
        let ids = self.tx_ids.get(&(index, term)).map(Vec::as_slice);
        if ids.is_none() {
            self.tx_id_misses.set(self.tx_id_misses.get() + 1);
        }
        ids
    }
}

impl<C: VoteCrypto> Replica<C> {
    /// The result of a [`VerifyJob`] handed out as `id`.
    pub fn verified(&mut self, id: VerifyId, ok: bool) {
        if self.halted.is_some() {
            return;
        }
        for then in self.verifier.finish(id, ok) {
            match then {
                Then::Submit {
                    id,
                    bytes,
                    hash,
                    wait,
                } => self.submit_checked(id, bytes, Some(hash), wait, false),
                Then::Resend { bytes, hash } => {
                    let _ = self.send_again(bytes, Some(hash));
                }
                Then::Prefetch { index } => self.verifier.prefetched(index),
                Then::Commit {
                    height,
                    validator,
                    signature,
                } => {
                    if ok {
                        self.certifier.collect(height, validator, signature);
                    }
                }
            }
        }
    }

    /// The cached verdict on `signed` (hash `tx`), if any.
    pub(super) fn cached_verdict(&self, tx: &Hash32, signed: &SignedTransaction) -> Option<bool> {
        self.verifier
            .cached_verdict(tx, &signed.tx.sender.account_id())
    }

    /// A follower starts checking the signatures of blocks that just arrived, so that
    /// applying them finds the verdicts ready (best effort: a full pipeline skips), and
    /// keeps their transactions' ids for apply. Returns the certificates for heights not
    /// applied yet, to start with [`Replica::prefetch_deferred`] once those apply.
    pub(super) fn prefetch_verdicts(&mut self, entries: &[LogEntry]) -> Vec<(u64, Certificate)> {
        let mut deferred = Vec::new();
        if self.raft.role() == Role::Leader {
            return deferred; // its blocks hold what its own admission verified
        }
        for entry in entries {
            let EntryData::Normal(bytes) = &entry.data else {
                continue;
            };
            let Ok(block) = Block::from_canonical_bytes(&bytes[..]) else {
                continue;
            };
            let ids = tx_ids(&block.txs);
            let mut full = false;
            for (tx, &hash) in block.txs.iter().zip(&ids) {
                if self.verifier.in_flight() >= self.verifier.max_in_flight {
                    full = true;
                    break;
                }
                let Ok(signed) = SignedTransaction::from_canonical_bytes(tx) else {
                    continue;
                };
                if self.cached_verdict(&hash, &signed).is_some() {
                    continue;
                }
                let Some(key) = self.app.ledger().signer_key(&signed).cloned() else {
                    continue;
                };
                let job = VerifyJob::tx(signed, key);
                self.prefetch(entry.index, hash, job);
            }
            let applied = self.app.ledger().height();
            let (now, later) = block
                .certificates
                .into_iter()
                .partition::<Vec<_>, _>(|certificate| certificate.height <= applied);
            if !full {
                self.prefetch_certificates(entry.index, &now);
            }
            deferred.extend(
                later
                    .into_iter()
                    .map(|certificate| (entry.index, certificate)),
            );
            self.verifier.remember_tx_ids(entry.index, entry.term, ids);
        }
        deferred
    }

    /// Starts checking the certificates [`Replica::prefetch_verdicts`] put off, for the
    /// blocks not applied yet whose certified height applied since (a block that arrives
    /// with the commit of the block before it certifies that one).
    pub(super) fn prefetch_deferred(&mut self, deferred: Vec<(u64, Certificate)>) {
        let applied = self.app.ledger().height();
        for (index, certificate) in deferred {
            if index > applied && certificate.height <= applied {
                self.prefetch_certificates(index, std::slice::from_ref(&certificate));
            }
        }
    }
}

impl<C: VoteCrypto> Replica<C> {
    /// Starts checking the commit signatures of a block that arrived, against the state
    /// this node has applied (a certificate for a height it has not applied yet is checked
    /// at apply).
    fn prefetch_certificates(&mut self, index: u64, certificates: &[Certificate]) {
        let ledger = self.app.ledger();
        let mut jobs = Vec::new();
        for certificate in certificates {
            let (Some(statement), Some(committee)) = (
                ledger.commit_statement(certificate.height),
                ledger.certifying_committee(certificate.height),
            ) else {
                continue;
            };
            for entry in &certificate.signatures {
                let Ok(at) = committee.binary_search_by(|m| m.validator.cmp(&entry.validator))
                else {
                    continue;
                };
                jobs.push((
                    statement.hash(),
                    VerifyJob {
                        check: Check::Commit {
                            statement,
                            validator: entry.validator,
                            key: committee[at].public_key.clone(),
                            signature: entry.signature.clone(),
                        },
                    },
                ));
            }
        }
        for (hash, job) in jobs {
            if self.verifier.in_flight() >= self.verifier.max_in_flight {
                return;
            }
            if self.verifier.cached_verdict(&hash, &job.signer()).is_none() {
                self.prefetch(index, hash, job);
            }
        }
    }

    /// Starts a pre-check for the entry at `index`; applying the entry waits for it.
    fn prefetch(&mut self, index: u64, hash: Hash32, job: VerifyJob) {
        if self
            .verifier
            .start(hash, job, Then::Prefetch { index })
            .is_ok()
        {
            self.verifier.awaiting(index, self.now);
        }
    }

    /// Tells Raft how far applying may go: not into an entry whose pre-checks run.
    pub(super) fn limit_apply(&mut self) -> Option<u64> {
        let limit = self.verifier.apply_limit();
        self.raft.set_apply_limit(limit);
        limit
    }
}
