//! The bounded mempool: transactions checked against the ledger, waiting for a block.
//! When full it refuses (the API answers 503 with Retry-After); it never grows past its
//! capacity.

use agora_core::Hash32;
use std::collections::{BTreeSet, VecDeque};

/// Why a transaction was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MempoolError {
    /// At capacity: retry later.
    Full,
    /// Already queued.
    Duplicate,
}

/// The mempool.
#[derive(Debug)]
pub struct Mempool {
    queue: VecDeque<(Hash32, Vec<u8>)>,
    hashes: BTreeSet<Hash32>,
    capacity: usize,
}

impl Mempool {
    /// An empty mempool holding at most `capacity` transactions.
    pub fn new(capacity: usize) -> Mempool {
        Mempool {
            queue: VecDeque::new(),
            hashes: BTreeSet::new(),
            capacity,
        }
    }

    /// Queues a checked transaction.
    pub fn push(&mut self, hash: Hash32, bytes: Vec<u8>) -> Result<(), MempoolError> {
        if self.hashes.contains(&hash) {
            return Err(MempoolError::Duplicate);
        }
        if self.queue.len() >= self.capacity {
            return Err(MempoolError::Full);
        }
        self.hashes.insert(hash);
        self.queue.push_back((hash, bytes));
        Ok(())
    }

    /// Takes up to `max_count` transactions and `max_bytes` bytes, oldest first.
    pub fn take(&mut self, max_count: usize, max_bytes: usize) -> Vec<(Hash32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut bytes = 0;
        while out.len() < max_count {
            let Some((_, tx)) = self.queue.front() else {
                break;
            };
            if !out.is_empty() && bytes + tx.len() > max_bytes {
                break;
            }
            let (hash, tx) = self.queue.pop_front().expect("front exists");
            self.hashes.remove(&hash);
            bytes += tx.len();
            out.push((hash, tx));
        }
        out
    }

    /// Puts transactions back at the front (a proposal was refused).
    pub fn restore(&mut self, txs: Vec<(Hash32, Vec<u8>)>) {
        for (hash, tx) in txs.into_iter().rev() {
            if self.hashes.insert(hash) {
                self.queue.push_front((hash, tx));
            }
        }
    }

    /// Queued transactions.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_deduplicated_and_fifo() {
        let mut pool = Mempool::new(2);
        pool.push(Hash32([1; 32]), vec![1]).unwrap();
        assert_eq!(
            pool.push(Hash32([1; 32]), vec![1]),
            Err(MempoolError::Duplicate)
        );
        pool.push(Hash32([2; 32]), vec![2]).unwrap();
        assert_eq!(pool.push(Hash32([3; 32]), vec![3]), Err(MempoolError::Full));
        let taken = pool.take(10, 1);
        assert_eq!(taken.len(), 1, "byte budget, but always at least one");
        assert_eq!(taken[0].1, vec![1]);
        pool.restore(taken);
        assert_eq!(
            pool.take(10, 100)
                .iter()
                .map(|t| t.1[0])
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(pool.is_empty());
    }
}
