//! Admission: a transaction is checked against the applied state by the ledger's own rules
//! ([`Ledger::authorize`](agora_core::Ledger::authorize)) and queued (leader) or forwarded
//! to the leader (follower).

use super::{Answer, Replica, RequestId};
use crate::mempool::MempoolError;
use crate::raft::{Role, VoteCrypto};
use agora_api::{ApiError, SubmitResponse, SubmitStatus};
use agora_core::encoding::Canonical;
use agora_core::tx::{tx_hash, SignedTransaction};
use agora_core::{Hash32, NonceRule, TxError};

/// The API's answer to a transaction the ledger's rules refuse: 409 for a used nonce
/// (resubmitting cannot help), 400 for the rest; the code names the rule.
pub(crate) fn refused(error: TxError) -> ApiError {
    let (status, code) = match &error {
        TxError::Malformed => (400, "malformed_transaction"),
        TxError::WrongChainId => (400, "wrong_chain"),
        TxError::UnknownAccount => (400, "unknown_account"),
        TxError::KeyAlreadyRegistered => (400, "key_already_registered"),
        TxError::BadSignature => (400, "bad_signature"),
        TxError::ReplayedNonce { .. } => (409, "replayed_nonce"),
        TxError::SkippedNonce { .. } => (400, "skipped_nonce"),
        TxError::InsufficientFundsForFee => (400, "insufficient_funds_for_fee"),
        _ => (400, "refused"),
    };
    ApiError::new(status, code, error.to_string())
}

impl<C: VoteCrypto> Replica<C> {
    pub(super) fn submit(&mut self, id: RequestId, bytes: Vec<u8>, wait: bool) {
        let hash = match self.admit(&bytes) {
            Ok(hash) => hash,
            Err(error) => return self.reply(id, Err(error)),
        };
        if !wait {
            let answer = SubmitResponse {
                tx_hash: hash,
                status: SubmitStatus::Accepted,
                height: None,
                receipt: None,
            };
            return self.reply(id, Ok(Answer::Submitted(answer)));
        }
        if self.waiters.clients() >= self.config.max_commit_waiters {
            let error =
                ApiError::busy("too many clients are waiting for commits; retry without wait");
            return self.reply(id, Err(error));
        }
        self.waiters.add(hash, bytes, id, self.now);
    }

    /// Checks a transaction against the applied state and queues it (leader) or hands it
    /// to the leader (follower). Returns its hash.
    pub(super) fn admit(&mut self, bytes: &[u8]) -> Result<Hash32, ApiError> {
        if self.config.replay {
            return Err(ApiError::new(
                409,
                "replay_mode",
                "this node replays test vectors; it takes entries at /v1/replay, not transactions",
            ));
        }
        if !self.raft.membership().contains(&self.raft.id()) {
            // A node outside the configuration (not yet added, or removed) hears from no
            // leader: what it forwarded would never be seen committed here.
            return Err(ApiError::busy(
                "this node is not a member of the cluster's configuration; send to a validator",
            ));
        }
        let signed = SignedTransaction::from_canonical_bytes(bytes)
            .map_err(|e| ApiError::new(400, "malformed_transaction", e.to_string()))?;
        self.app
            .ledger()
            .authorize(&signed, None, NonceRule::AtLeast)
            .map_err(refused)?;
        let hash = tx_hash(bytes);
        match (self.raft.role(), self.raft.leader()) {
            (Role::Leader, _) => match self.mempool.push(hash, bytes.to_vec()) {
                Ok(()) | Err(MempoolError::Duplicate) => Ok(hash),
                Err(MempoolError::Full) => Err(ApiError::busy("the mempool is full; retry later")),
            },
            (_, Some(leader)) => {
                self.pending.forwards.push((leader, bytes.to_vec()));
                self.counters.forwarded_txs += 1;
                Ok(hash)
            }
            (_, None) => Err(ApiError::busy("no leader is known yet; retry shortly")),
        }
    }
}
