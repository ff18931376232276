//! The bounded mempool: transactions checked against the ledger, waiting for a block.
//!
//! Its rules (ARCHITECTURE.md, "The mempool"):
//! - at most `capacity` transactions; when full it refuses (the API answers 503 with
//!   Retry-After), it never grows past it;
//! - one transaction per (sender, nonce): a second one for a nonce already queued, or
//!   already in a block being committed, is refused (first come, first kept; there is no
//!   replacement);
//! - a block takes a sender's transactions only in nonce order with no gap, starting at
//!   the sender's next nonce (the ledger's, or past those already in blocks in flight). A
//!   transaction whose predecessor has not arrived is held, not included: it could not
//!   apply and would fill a block for free. A held transaction is dropped after
//!   `hold_ticks`; one whose nonce the chain has passed is dropped when met;
//! - admission bounds how far ahead of its account's nonce a transaction may be (the
//!   window), so a sender holds at most a window's worth of transactions here.

use agora_core::{AccountId, Hash32};
use std::collections::{BTreeMap, VecDeque};

/// Why a transaction was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MempoolError {
    /// At capacity: retry later.
    Full,
    /// Already queued.
    Duplicate,
    /// Another transaction of the sender with this nonce is queued or in a block in
    /// flight.
    NonceTaken,
    /// The sender has as many transactions pending as its limit allows.
    SenderFull,
}

/// How many transactions one sender may have pending (queued here or in blocks in
/// flight), from the applied ledger: admission sets it from the account's balance and the
/// nonce window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderLimit {
    /// The sender's next nonce in the applied ledger.
    pub ledger_nonce: u64,
    /// Transactions it may have pending.
    pub max_pending: u64,
}

impl SenderLimit {
    /// No limit but the mempool's capacity (tests).
    pub const NONE: SenderLimit = SenderLimit {
        ledger_nonce: 0,
        max_pending: u64::MAX,
    };
}

/// A checked transaction, with what the mempool orders it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTx {
    pub hash: Hash32,
    pub bytes: Vec<u8>,
    pub sender: AccountId,
    pub nonce: u64,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    next: u64,
    index: u64,
}

#[derive(Debug)]
struct Queued {
    tx: PendingTx,
    /// The tick it arrived at.
    since: u64,
}

/// The mempool.
#[derive(Debug)]
pub struct Mempool {
    /// Arrival order. May name transactions already taken or dropped (skipped when met).
    arrivals: VecDeque<Hash32>,
    queued: BTreeMap<Hash32, Queued>,
    by_nonce: BTreeMap<(AccountId, u64), Hash32>,
    /// For each sender with transactions in blocks proposed and not yet applied, the next
    /// nonce after them, and the log index of the last such block.
    in_flight: BTreeMap<AccountId, InFlight>,
    /// The transactions in those blocks, with each block's log index (for lookups; as
    /// bounded as the blocks in flight).
    in_flight_txs: BTreeMap<Hash32, u64>,
    capacity: usize,
    hold_ticks: u64,
}

impl Mempool {
    /// An empty mempool holding at most `capacity` transactions, holding one that waits
    /// for its predecessor for at most `hold_ticks`.
    pub fn new(capacity: usize, hold_ticks: u64) -> Mempool {
        Mempool {
            arrivals: VecDeque::new(),
            queued: BTreeMap::new(),
            by_nonce: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            in_flight_txs: BTreeMap::new(),
            capacity,
            hold_ticks,
        }
    }

    /// Queues a checked transaction at tick `now`, within its sender's limit.
    pub fn push(
        &mut self,
        tx: PendingTx,
        now: u64,
        limit: SenderLimit,
    ) -> Result<(), MempoolError> {
        if self.queued.contains_key(&tx.hash) {
            return Err(MempoolError::Duplicate);
        }
        if self.by_nonce.contains_key(&(tx.sender, tx.nonce))
            || self
                .in_flight
                .get(&tx.sender)
                .is_some_and(|flight| tx.nonce < flight.next)
        {
            return Err(MempoolError::NonceTaken);
        }
        if self.pending_for(&tx.sender, limit.ledger_nonce) >= limit.max_pending {
            return Err(MempoolError::SenderFull);
        }
        if self.queued.len() >= self.capacity {
            return Err(MempoolError::Full);
        }
        self.by_nonce.insert((tx.sender, tx.nonce), tx.hash);
        self.arrivals.push_back(tx.hash);
        self.queued.insert(tx.hash, Queued { tx, since: now });
        Ok(())
    }

    /// [`Mempool::push`], except that a full mempool makes room for a transaction a block
    /// could take now (its nonce is its sender's next) by dropping a held one: the one
    /// furthest ahead of its sender's next nonce, the newest of those. Held transactions
    /// take only the room ready ones leave, so senders with gaps cannot keep everyone
    /// else out for the hold time — nor the very transaction that would fill their gap.
    /// `ledger_nonce` gives the applied ledger's next nonce of any sender.
    pub fn push_evicting(
        &mut self,
        tx: PendingTx,
        now: u64,
        limit: SenderLimit,
        ledger_nonce: impl Fn(&AccountId) -> u64,
    ) -> Result<(), MempoolError> {
        let ready = tx.nonce == self.next_nonce(&tx.sender, &|_: &AccountId| limit.ledger_nonce);
        match self.push(tx.clone(), now, limit) {
            Err(MempoolError::Full) if ready => {}
            other => return other,
        }
        let victim = self
            .queued
            .iter()
            .filter_map(|(hash, q)| {
                let next = self.next_nonce(&q.tx.sender, &ledger_nonce);
                (q.tx.nonce > next).then_some((q.tx.nonce - next, q.since, *hash))
            })
            .max();
        let Some((_, _, victim)) = victim else {
            return Err(MempoolError::Full);
        };
        self.remove(&victim);
        self.push(tx, now, limit)
    }

    /// How many of `sender`'s transactions are queued here or in blocks in flight, given
    /// its nonce in the applied ledger.
    pub fn pending_for(&self, sender: &AccountId, ledger_nonce: u64) -> u64 {
        let queued = self
            .by_nonce
            .range((*sender, 0)..=(*sender, u64::MAX))
            .count() as u64;
        let in_flight = self
            .in_flight
            .get(sender)
            .map_or(0, |flight| flight.next.saturating_sub(ledger_nonce));
        queued + in_flight
    }

    /// Takes up to `max_count` transactions and `max_bytes` bytes (always at least one
    /// when one is ready) for the block at log index `index`: oldest first, each sender's
    /// in nonce order from its next nonce (`ledger_nonce` gives the applied ledger's).
    /// Drops what the chain has passed and what was held past `hold_ticks`.
    pub fn take(
        &mut self,
        max_count: usize,
        max_bytes: usize,
        now: u64,
        index: u64,
        ledger_nonce: impl Fn(&AccountId) -> u64,
    ) -> Vec<PendingTx> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut kept = VecDeque::with_capacity(self.arrivals.len());
        let mut full = false;
        while let Some(hash) = self.arrivals.pop_front() {
            if full {
                kept.push_back(hash);
                continue;
            }
            let Some(queued) = self.queued.get(&hash) else {
                continue; // taken with its predecessor, or dropped
            };
            let sender = queued.tx.sender;
            let next = self.next_nonce(&sender, &ledger_nonce);
            if queued.tx.nonce < next {
                self.remove(&hash);
                continue;
            }
            if queued.tx.nonce > next {
                if now.saturating_sub(queued.since) > self.hold_ticks {
                    self.remove(&hash);
                } else {
                    kept.push_back(hash);
                }
                continue;
            }
            // Ready: take it and whatever of the sender's follows it without a gap.
            let mut nonce = next;
            while let Some(&ready) = self.by_nonce.get(&(sender, nonce)) {
                let size = self.queued[&ready].tx.bytes.len();
                if out.len() >= max_count || (!out.is_empty() && bytes + size > max_bytes) {
                    full = true;
                    break;
                }
                let tx = self.remove(&ready).expect("indexed, so queued");
                self.in_flight_txs.insert(tx.hash, index);
                bytes += size;
                out.push(tx);
                nonce += 1;
                self.in_flight
                    .insert(sender, InFlight { next: nonce, index });
            }
            if self.queued.contains_key(&hash) {
                kept.push_back(hash);
            }
        }
        self.arrivals = kept;
        out
    }

    /// Puts transactions back (the block they were taken for was not proposed), ahead of
    /// the others; their senders' next nonces go back to before them.
    pub fn restore(&mut self, txs: Vec<PendingTx>, now: u64) {
        for tx in txs.into_iter().rev() {
            self.in_flight_txs.remove(&tx.hash);
            if let Some(flight) = self.in_flight.get_mut(&tx.sender) {
                flight.next = flight.next.min(tx.nonce);
            }
            if self.queued.contains_key(&tx.hash)
                || self.by_nonce.contains_key(&(tx.sender, tx.nonce))
            {
                continue;
            }
            self.by_nonce.insert((tx.sender, tx.nonce), tx.hash);
            self.arrivals.push_front(tx.hash);
            self.queued.insert(tx.hash, Queued { tx, since: now });
        }
    }

    /// The entry at `index` applied: what was taken for blocks up to it is in the
    /// ledger's nonces now (or, were a block replaced, never will be: the ledger decides).
    pub fn applied_through(&mut self, index: u64) {
        self.in_flight.retain(|_, flight| flight.index > index);
        self.in_flight_txs.retain(|_, &mut at| at > index);
    }

    /// Drops what the chain has passed (`ledger_nonce` gives the applied ledger's next
    /// nonce) and what was kept past `hold_ticks`. A follower keeps the transactions it
    /// forwarded in a mempool of its own, to apply the same per-sender rules, and prunes
    /// it so as it applies blocks.
    pub fn prune(&mut self, now: u64, ledger_nonce: impl Fn(&AccountId) -> u64) {
        if self.queued.is_empty() && self.arrivals.is_empty() {
            return; // the leader's record of forwards, every block
        }
        let hold = self.hold_ticks;
        let stale: Vec<Hash32> = self
            .queued
            .iter()
            .filter(|(_, q)| {
                q.tx.nonce < ledger_nonce(&q.tx.sender) || now.saturating_sub(q.since) > hold
            })
            .map(|(hash, _)| *hash)
            .collect();
        for hash in &stale {
            self.remove(hash);
        }
        let queued = &self.queued;
        self.arrivals.retain(|hash| queued.contains_key(hash));
    }

    /// Takes every queued transaction out, oldest first (blocks in flight stay counted):
    /// what a node hands on to a new leader.
    pub fn drain(&mut self) -> Vec<PendingTx> {
        let mut out = Vec::with_capacity(self.queued.len());
        for hash in std::mem::take(&mut self.arrivals) {
            if let Some(tx) = self.remove(&hash) {
                out.push(tx);
            }
        }
        out
    }

    /// This node stopped leading: none of its blocks is in flight any more.
    pub fn nothing_in_flight(&mut self) {
        self.in_flight.clear();
        self.in_flight_txs.clear();
    }

    /// Whether the transaction `hash` is queued here or in a block in flight.
    pub fn holds(&self, hash: &Hash32) -> bool {
        self.queued.contains_key(hash) || self.in_flight_txs.contains_key(hash)
    }

    /// Queued transactions.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    fn next_nonce(&self, sender: &AccountId, ledger_nonce: &impl Fn(&AccountId) -> u64) -> u64 {
        let ledger = ledger_nonce(sender);
        self.in_flight
            .get(sender)
            .map_or(ledger, |flight| flight.next.max(ledger))
    }

    fn remove(&mut self, hash: &Hash32) -> Option<PendingTx> {
        let queued = self.queued.remove(hash)?;
        self.by_nonce.remove(&(queued.tx.sender, queued.tx.nonce));
        Some(queued.tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(sender: u8, nonce: u64, tag: u8) -> PendingTx {
        PendingTx {
            hash: Hash32([sender ^ (nonce as u8).wrapping_mul(31) ^ tag.wrapping_mul(7); 32]),
            bytes: vec![sender, nonce as u8, tag],
            sender: AccountId(Hash32([sender; 32])),
            nonce,
        }
    }

    fn nonces(txs: &[PendingTx]) -> Vec<(u8, u64)> {
        txs.iter().map(|t| (t.bytes[0], t.nonce)).collect()
    }

    #[test]
    fn a_transaction_is_held_while_queued_or_in_flight_and_not_once_applied() {
        let mut pool = Mempool::new(100, 100);
        let (first, second) = (tx(1, 0, 0), tx(2, 0, 0));
        assert!(!pool.holds(&first.hash));
        pool.push(first.clone(), 0, SenderLimit::NONE).unwrap();
        pool.push(second.clone(), 0, SenderLimit::NONE).unwrap();
        assert!(pool.holds(&first.hash));
        let taken = pool.take(1, 100, 0, 7, |_| 0);
        assert_eq!(taken, vec![first.clone()]);
        assert!(
            pool.holds(&first.hash),
            "in the block at index 7, not applied yet"
        );
        pool.applied_through(6);
        assert!(pool.holds(&first.hash));
        pool.restore(taken, 0);
        assert!(pool.holds(&first.hash), "back in the queue");
        let taken = pool.take(2, 100, 0, 8, |_| 0);
        assert_eq!(taken.len(), 2);
        pool.applied_through(8);
        assert!(!pool.holds(&first.hash) && !pool.holds(&second.hash));
        pool.push(tx(3, 0, 0), 0, SenderLimit::NONE).unwrap();
        pool.take(1, 100, 0, 9, |_| 0);
        pool.nothing_in_flight();
        assert!(
            !pool.holds(&tx(3, 0, 0).hash),
            "no longer leading: nothing in flight"
        );
    }

    #[test]
    fn bounded_deduplicated_and_oldest_first() {
        let mut pool = Mempool::new(2, 100);
        pool.push(tx(1, 0, 0), 0, SenderLimit::NONE).unwrap();
        assert_eq!(
            pool.push(tx(1, 0, 0), 0, SenderLimit::NONE),
            Err(MempoolError::Duplicate)
        );
        pool.push(tx(2, 0, 0), 0, SenderLimit::NONE).unwrap();
        assert_eq!(
            pool.push(tx(3, 0, 0), 0, SenderLimit::NONE),
            Err(MempoolError::Full)
        );
        let taken = pool.take(10, 1, 0, 1, |_| 0);
        assert_eq!(
            nonces(&taken),
            vec![(1, 0)],
            "byte budget, but always at least one"
        );
        pool.restore(taken, 0);
        assert_eq!(
            nonces(&pool.take(10, 100, 0, 1, |_| 0)),
            vec![(1, 0), (2, 0)]
        );
        assert!(pool.is_empty());
    }

    #[test]
    fn one_transaction_per_sender_and_nonce_including_those_in_flight() {
        let mut pool = Mempool::new(100, 100);
        pool.push(tx(1, 5, 0), 0, SenderLimit::NONE).unwrap();
        assert_eq!(
            pool.push(tx(1, 5, 1), 0, SenderLimit::NONE),
            Err(MempoolError::NonceTaken)
        );
        pool.push(tx(2, 5, 1), 0, SenderLimit::NONE)
            .expect("another sender's nonce 5");
        assert_eq!(pool.take(10, 100, 0, 1, |_| 5).len(), 2);
        // Taken into a block that has not applied: the ledger still says 5.
        assert_eq!(
            pool.push(tx(1, 5, 2), 0, SenderLimit::NONE),
            Err(MempoolError::NonceTaken)
        );
        assert_eq!(pool.pending_for(&tx(1, 0, 0).sender, 5), 1);
        pool.push(tx(1, 6, 0), 0, SenderLimit::NONE)
            .expect("the next one");
        assert_eq!(pool.pending_for(&tx(1, 0, 0).sender, 5), 2);
        pool.applied_through(0);
        assert_eq!(
            pool.push(tx(1, 5, 2), 0, SenderLimit::NONE),
            Err(MempoolError::NonceTaken),
            "an earlier entry applying leaves the block at index 1 in flight"
        );
        pool.applied_through(1);
        // The block applied: the ledger is at 6 now.
        assert_eq!(nonces(&pool.take(10, 100, 0, 1, |_| 6)), vec![(1, 6)]);
    }

    #[test]
    fn a_sender_holds_at_most_its_limit_counting_blocks_in_flight() {
        let mut pool = Mempool::new(100, 100);
        let limit = SenderLimit {
            ledger_nonce: 0,
            max_pending: 2,
        };
        pool.push(tx(1, 0, 0), 0, limit).unwrap();
        pool.push(tx(1, 1, 0), 0, limit).unwrap();
        assert_eq!(
            pool.push(tx(1, 2, 0), 0, limit),
            Err(MempoolError::SenderFull)
        );
        pool.push(tx(2, 0, 0), 0, limit)
            .expect("another sender has its own limit");
        assert_eq!(pool.take(1, 100, 0, 1, |_| 0).len(), 1);
        assert_eq!(
            pool.push(tx(1, 2, 0), 0, limit),
            Err(MempoolError::SenderFull),
            "a transaction in a block in flight still counts"
        );
        pool.applied_through(1);
        let applied = SenderLimit {
            ledger_nonce: 1,
            ..limit
        };
        pool.push(tx(1, 2, 0), 0, applied)
            .expect("applied, so no longer pending");
    }

    #[test]
    fn a_full_mempool_drops_a_held_transaction_for_a_ready_one() {
        let mut pool = Mempool::new(3, 100);
        let ledger = |_: &AccountId| 0;
        // Sender 1 holds nonces 2 and 5 (1 missing), sender 2 has its nonce 0: full.
        pool.push(tx(1, 2, 0), 0, SenderLimit::NONE).unwrap();
        pool.push(tx(1, 5, 0), 1, SenderLimit::NONE).unwrap();
        pool.push(tx(2, 0, 0), 2, SenderLimit::NONE).unwrap();
        // A held transaction is refused, and makes no room.
        assert_eq!(
            pool.push_evicting(tx(3, 4, 0), 3, SenderLimit::NONE, ledger),
            Err(MempoolError::Full)
        );
        assert_eq!(pool.len(), 3);
        // A ready one (nonce 0 of sender 3) takes the place of the held transaction
        // furthest ahead: sender 1's nonce 5.
        pool.push_evicting(tx(3, 0, 0), 3, SenderLimit::NONE, ledger)
            .unwrap();
        assert!(!pool.holds(&tx(1, 5, 0).hash) && pool.holds(&tx(1, 2, 0).hash));
        // Sender 1's missing nonce 0 — the ledger says its next is 0 — is ready too: it
        // drops nonce 2, the last held transaction.
        pool.push_evicting(tx(1, 0, 0), 4, SenderLimit::NONE, ledger)
            .unwrap();
        assert!(!pool.holds(&tx(1, 2, 0).hash));
        // Nothing is held any more: full, and a ready transaction is refused too.
        assert_eq!(
            pool.push_evicting(tx(4, 0, 0), 5, SenderLimit::NONE, ledger),
            Err(MempoolError::Full)
        );
        assert_eq!(
            nonces(&pool.take(10, 100, 5, 1, ledger)),
            vec![(2, 0), (3, 0), (1, 0)]
        );
    }

    #[test]
    fn a_gap_is_held_not_included_and_a_held_transaction_expires() {
        let mut pool = Mempool::new(100, 10);
        pool.push(tx(1, 2, 0), 0, SenderLimit::NONE).unwrap();
        pool.push(tx(1, 1, 0), 0, SenderLimit::NONE).unwrap();
        assert!(
            pool.take(10, 100, 0, 1, |_| 0).is_empty(),
            "nonce 0 is missing"
        );
        assert_eq!(pool.len(), 2, "held");
        pool.push(tx(1, 0, 0), 1, SenderLimit::NONE).unwrap();
        assert_eq!(
            nonces(&pool.take(10, 100, 1, 1, |_| 0)),
            vec![(1, 0), (1, 1), (1, 2)],
            "the predecessor arriving last releases the others, in nonce order"
        );
        pool.push(tx(1, 9, 0), 2, SenderLimit::NONE).unwrap();
        assert!(pool.take(10, 100, 12, 1, |_| 0).is_empty());
        assert_eq!(pool.len(), 1, "not yet past the hold");
        assert!(pool.take(10, 100, 13, 1, |_| 0).is_empty());
        assert!(pool.is_empty(), "held past hold_ticks: dropped");
    }

    #[test]
    fn pruning_drops_what_the_chain_passed_and_what_was_held_too_long() {
        let mut pool = Mempool::new(100, 10);
        pool.push(tx(1, 3, 0), 0, SenderLimit::NONE).unwrap();
        pool.push(tx(1, 4, 0), 5, SenderLimit::NONE).unwrap();
        pool.push(tx(2, 0, 0), 0, SenderLimit::NONE).unwrap();
        pool.prune(10, |sender| if sender.0 .0[0] == 1 { 4 } else { 0 });
        assert_eq!(pool.len(), 2, "sender 1's nonce 3 is passed");
        pool.prune(11, |_| 0);
        assert_eq!(pool.len(), 1, "sender 2's, kept 11 ticks, is dropped");
        assert_eq!(pool.arrivals.len(), 1, "arrival order forgets them too");
        pool.push(tx(1, 3, 1), 11, SenderLimit::NONE)
            .expect("nonce 3 is free again");
    }

    #[test]
    fn what_the_chain_passed_is_dropped_and_count_limits_cut_a_sender_run() {
        let mut pool = Mempool::new(100, 100);
        for nonce in 3..8 {
            pool.push(tx(1, nonce, 0), 0, SenderLimit::NONE).unwrap();
        }
        let taken = pool.take(2, 1_000, 0, 1, |_| 4);
        assert_eq!(
            nonces(&taken),
            vec![(1, 4), (1, 5)],
            "3 was passed by the chain"
        );
        assert_eq!(pool.len(), 2, "3 dropped, 6 and 7 wait for the next block");
        assert_eq!(
            nonces(&pool.take(10, 1_000, 0, 1, |_| 4)),
            vec![(1, 6), (1, 7)]
        );
        // Restoring puts the sender's next nonce back.
        pool.restore(vec![tx(1, 6, 0), tx(1, 7, 0)], 0);
        assert_eq!(
            nonces(&pool.take(10, 1_000, 0, 1, |_| 4)),
            vec![(1, 6), (1, 7)]
        );
    }

    #[test]
    fn draining_hands_out_the_queue_oldest_first_and_keeps_blocks_in_flight() {
        let mut pool = Mempool::new(100, 100);
        pool.push(tx(1, 0, 0), 0, SenderLimit::NONE).unwrap();
        assert_eq!(nonces(&pool.take(1, 100, 0, 5, |_| 0)), vec![(1, 0)]);
        pool.push(tx(2, 4, 0), 1, SenderLimit::NONE).unwrap();
        pool.push(tx(1, 1, 0), 2, SenderLimit::NONE).unwrap();
        pool.push(tx(3, 0, 0), 3, SenderLimit::NONE).unwrap();
        assert_eq!(
            nonces(&pool.drain()),
            vec![(2, 4), (1, 1), (3, 0)],
            "arrival order, held ones included"
        );
        assert!(pool.is_empty());
        assert!(pool.drain().is_empty());
        assert!(pool.take(10, 1_000, 0, 6, |_| 0).is_empty());
        assert!(
            pool.holds(&tx(1, 0, 0).hash),
            "still in the block in flight"
        );
        assert_eq!(
            pool.push(tx(1, 0, 9), 4, SenderLimit::NONE),
            Err(MempoolError::NonceTaken)
        );
        pool.push(tx(1, 1, 0), 4, SenderLimit::NONE)
            .expect("a drained transaction can come back");
    }
}
