//! Clients waiting for their transaction to commit. A waiting submission is re-sent until
//! it commits or its nonce is taken, so neither a forward to a leader that died nor a block
//! lost with its leader strands the client.

use super::{Answer, Replica, RequestId};
use crate::raft::VoteCrypto;
use agora_api::{ApiError, SubmitResponse, SubmitStatus};
use agora_core::{Hash32, Receipt};
use std::collections::BTreeMap;

/// A submission some clients wait on.
struct Waiting {
    bytes: Vec<u8>,
    /// When it was last sent (ticks); none: send it at the next tick.
    last_sent: Option<u64>,
    /// The clients, with the tick each submitted at.
    clients: Vec<(u64, RequestId)>,
}

/// Every waiting submission, by transaction hash.
#[derive(Default)]
pub(super) struct Waiters {
    by_hash: BTreeMap<Hash32, Waiting>,
    clients: usize,
}

impl Waiters {
    /// Clients waiting.
    pub(super) fn clients(&self) -> usize {
        self.clients
    }

    pub(super) fn add(&mut self, hash: Hash32, bytes: Vec<u8>, id: RequestId, now: u64) {
        self.by_hash
            .entry(hash)
            .or_insert_with(|| Waiting {
                bytes,
                last_sent: Some(now),
                clients: Vec::new(),
            })
            .clients
            .push((now, id));
        self.clients += 1;
    }

    /// Everything is sent again at the next tick.
    pub(super) fn make_all_due(&mut self) {
        for waiting in self.by_hash.values_mut() {
            waiting.last_sent = None;
        }
    }

    fn take(&mut self, hash: &Hash32) -> Vec<(u64, RequestId)> {
        let clients = self
            .by_hash
            .remove(hash)
            .map(|w| w.clients)
            .unwrap_or_default();
        self.clients -= clients.len();
        clients
    }
}

impl<C: VoteCrypto> Replica<C> {
    /// Answers the clients waiting on any of `receipts`, committed at `height`.
    pub(super) fn notify_waiters(&mut self, height: u64, receipts: &[Receipt]) {
        for receipt in receipts {
            for (_, id) in self.waiters.take(&receipt.tx_hash) {
                let answer = SubmitResponse {
                    tx_hash: receipt.tx_hash,
                    status: SubmitStatus::Committed,
                    height: Some(height),
                    receipt: Some(receipt.clone()),
                };
                self.reply(id, Ok(Answer::Submitted(answer)));
            }
        }
    }

    /// Re-sends awaited submissions that are due; answers clients that waited too long,
    /// or whose transaction the ledger now refuses (its nonce was taken).
    pub(super) fn resend_awaited(&mut self) {
        #[cfg(any(test, feature = "inject-bugs"))]
        if self.bugs.no_resend {
            return;
        }
        let now = self.now;
        let interval = self.config.resend_interval_ticks;
        let due: Vec<Hash32> = self
            .waiters
            .by_hash
            .iter()
            .filter(|(_, w)| {
                w.last_sent
                    .is_none_or(|sent| now.saturating_sub(sent) >= interval)
            })
            .map(|(hash, _)| *hash)
            .collect();
        for hash in due {
            let bytes = self.waiters.by_hash[&hash].bytes.clone();
            let refused = self
                .send_again(bytes, Some(hash))
                .filter(|e| e.status != 503);
            if let Some(error) = refused {
                for (_, id) in self.waiters.take(&hash) {
                    self.reply(id, Err(error.clone()));
                }
                continue;
            }
            let limit = self.config.commit_wait_limit_ticks;
            let waiting = self.waiters.by_hash.get_mut(&hash).expect("listed");
            waiting.last_sent = Some(now);
            let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut waiting.clients)
                .into_iter()
                .partition(|(since, _)| now.saturating_sub(*since) >= limit);
            waiting.clients = kept;
            let emptied = waiting.clients.is_empty();
            self.waiters.clients -= expired.len();
            if emptied {
                self.waiters.by_hash.remove(&hash);
            }
            for (_, id) in expired {
                let error = ApiError::new(504, "commit_timeout", format!("not committed within {limit} ticks; it may still commit: query the account's nonce before resubmitting"));
                self.reply(id, Err(error));
            }
        }
    }
}
