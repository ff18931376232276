//! Admission: a transaction is checked against the applied state by the ledger's own rules
//! ([`Ledger::authorize`](agora_core::Ledger::authorize)) — its signature once per node,
//! off the event loop ([`super::verify`]) — and queued (leader) or forwarded to the leader
//! (follower).

use super::verify::{Then, VerifyJob};
use super::{Answer, Replica, RequestId};
use crate::mempool::{MempoolError, PendingTx, SenderLimit};
use crate::raft::{Role, VoteCrypto};
use agora_api::{ApiError, SubmitResponse, SubmitStatus};
use agora_core::encoding::Canonical;
use agora_core::tx::{tx_hash, SignedTransaction};
use agora_core::{AccountId, Hash32, NonceRule, TxError};

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

/// Where a submission stands after the checks that need no signature verification.
pub(super) enum Checked {
    /// Every rule holds, the signature included (its verdict was cached).
    Admissible(Admit),
    /// Every rule but the signature holds; its check is to be done.
    Unverified(Hash32, Box<VerifyJob>),
}

/// An admissible transaction: what the mempool needs to order and bound it.
pub(super) struct Admit {
    hash: Hash32,
    sender: AccountId,
    nonce: u64,
    limit: SenderLimit,
}

/// Refusals (by code) that state fresher than this replica's could undo: the account may
/// be registered, or funded, in a block it has not applied yet. The others are final: a
/// used nonce stays used, a key stays registered, bytes stay malformed.
const STALE_REFUSALS: [&str; 2] = ["unknown_account", "insufficient_funds_for_fee"];

impl<C: VoteCrypto> Replica<C> {
    /// A submission; `fresh`: the state was just brought up to the leader's commit;
    /// `hash`: the bytes' hash, if this replica computed it already.
    pub(super) fn submit_checked(
        &mut self,
        id: RequestId,
        bytes: Vec<u8>,
        hash: Option<Hash32>,
        wait: bool,
        fresh: bool,
    ) {
        match self.check(&bytes, hash) {
            // This replica's state may lag the leader's commit (a follower that has not
            // applied the block registering the account, or funding it): such a refusal
            // is only given after checking again on state as fresh as the leader's.
            Err(error) if !fresh && STALE_REFUSALS.contains(&error.code.as_str()) => {
                self.recheck_when_fresh(id, bytes, wait)
            }
            Err(error) => self.reply(id, Err(error)),
            Ok(Checked::Admissible(admit)) => self.admitted(id, admit, bytes, wait),
            Ok(Checked::Unverified(hash, job)) => {
                let then = Then::Submit {
                    id,
                    bytes,
                    hash,
                    wait,
                };
                if self.verifier.start(hash, *job, then).is_err() {
                    let error =
                        ApiError::busy("too many signatures are being checked; retry shortly");
                    self.reply(id, Err(error));
                }
            }
        }
    }

    /// A submission passed every rule: queue or forward it, then answer (now, or once it
    /// commits).
    fn admitted(&mut self, id: RequestId, admit: Admit, bytes: Vec<u8>, wait: bool) {
        let hash = admit.hash;
        if let Err(error) = self.route(admit, &bytes) {
            return self.reply(id, Err(error));
        }
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

    /// An awaited submission, sent again: checked against the state of now, then queued or
    /// forwarded. Refusals are the caller's to handle; busy ones are tried again later.
    pub(super) fn send_again(&mut self, bytes: Vec<u8>, hash: Option<Hash32>) -> Option<ApiError> {
        match self.check(&bytes, hash) {
            Err(error) => Some(error),
            Ok(Checked::Admissible(admit)) => self.route(admit, &bytes).err(),
            Ok(Checked::Unverified(hash, job)) => {
                let then = Then::Resend { bytes, hash };
                let _ = self.verifier.start(hash, *job, then);
                None
            }
        }
    }

    /// Checks a transaction against the applied state by the ledger's own rules; the
    /// signature by its cached verdict, or not yet (see [`Checked`]). `hash`: the bytes'
    /// hash as this replica computed it before (after a verification), so that a
    /// submission is hashed once.
    pub(super) fn check(&self, bytes: &[u8], hash: Option<Hash32>) -> Result<Checked, ApiError> {
        if self.config.replay {
            return Err(ApiError::new(
                409,
                "replay_mode",
                "this node replays test vectors; it takes entries at /v1/replay, not transactions",
            ));
        }
        if let Some(index) = self.raft.voted_out() {
            // A committed configuration removed this node: it hears from no leader any
            // more, so what it forwarded would never be seen committed here. Final: an
            // awaited submission is answered so at its next resend.
            return Err(ApiError::new(
                421,
                "not_a_member",
                format!("governance removed this node from the validators (configuration entry {index}); the transaction may still commit if it was sent before: query the account's nonce, and send to a validator"),
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
        let hash = hash.unwrap_or_else(|| tx_hash(bytes));
        let verdict = self.cached_verdict(&hash, &signed);
        let ledger = self.app.ledger();
        // Every other rule first: a stale nonce or an empty account costs no verification.
        let authorized = ledger
            .authorize(&signed, Some(verdict.unwrap_or(true)), NonceRule::AtLeast)
            .map_err(refused)?;
        let (nonce, next) = (signed.tx.nonce, authorized.account.nonce);
        let window = self.config.max_nonce_ahead;
        if nonce - next >= window {
            // The account's next nonce here may be old: a node far behind its leader (or
            // rejoining, or without a leader) cannot call a nonce too far ahead (found by
            // the nemesis: a restarted follower refused a client's next transfer with a
            // 400). Entries committed but not yet applied are the normal state of a busy
            // follower and do not count.
            let status = self.status();
            let behind = status
                .leader_commit_index
                .saturating_sub(status.applied_index);
            let unsure = if status.rejoining {
                Some("rejoining after lost state".to_string())
            } else if status.leader.is_none() {
                Some("no leader known".to_string())
            } else {
                (behind > agora_api::CATCH_UP_BOUND)
                    .then(|| format!("{behind} entries behind its leader's commit"))
            };
            if let Some(reason) = unsure {
                return Err(ApiError::busy(format!(
                    "this node cannot judge nonce {nonce} yet ({reason}); retry, or send to \
                     another node"
                )));
            }
            return Err(ApiError::new(
                400,
                "nonce_too_far_ahead",
                format!(
                    "nonce {nonce} is {} past the account's next nonce {next}; \
                     a node takes nonces below {} only",
                    nonce - next,
                    next + window
                ),
            ));
        }
        if verdict.is_some() {
            // As many transactions may wait as the balance pays fees for (a fee-less
            // ledger: the window's worth).
            let fee = authorized.fee.0;
            let affordable = authorized
                .account
                .balance
                .0
                .checked_div(fee)
                .unwrap_or(u128::MAX);
            let limit = SenderLimit {
                ledger_nonce: next,
                max_pending: u64::try_from(affordable).unwrap_or(u64::MAX).min(window),
            };
            return Ok(Checked::Admissible(Admit {
                hash,
                sender: authorized.sender,
                nonce,
                limit,
            }));
        }
        let key = ledger
            .signer_key(&signed)
            .cloned()
            .expect("authorized, so its key is known");
        Ok(Checked::Unverified(
            hash,
            Box::new(VerifyJob::tx(signed, key)),
        ))
    }

    /// A leader is known again (another, or this node): what this node accepted and holds
    /// but the leader may lack goes to it now, checked against the state of now — what it
    /// queued while it led (unless it still leads) and what it forwarded (to a leader that
    /// may have halted, crashed or handed over before proposing it). A client told
    /// "accepted" does not lose its transaction to a leader change while this node lives
    /// (a zone test found one: a leader's disk filled, and what a follower had forwarded
    /// to it was gone, with every later nonce of the sender held behind the gap). Nonces
    /// the chain has passed are refused by the check and dropped; the leader takes a
    /// duplicate as one.
    pub(super) fn hand_on_accepted(&mut self) {
        let mut accepted = if self.raft.role() == Role::Leader {
            Vec::new()
        } else {
            self.mempool.drain()
        };
        accepted.extend(self.forwarded.drain());
        for tx in accepted {
            self.counters.handed_on_txs += 1;
            let _ = self.send_again(tx.bytes, Some(tx.hash));
        }
    }

    /// Queues an admissible transaction (leader) or hands it to the leader (follower).
    fn route(&mut self, admit: Admit, bytes: &[u8]) -> Result<(), ApiError> {
        match (self.raft.role(), self.raft.leader()) {
            (Role::Leader, _) => {
                let tx = PendingTx {
                    hash: admit.hash,
                    bytes: bytes.to_vec(),
                    sender: admit.sender,
                    nonce: admit.nonce,
                };
                let ledger = self.app.ledger();
                let pushed = self
                    .mempool
                    .push_evicting(tx, self.now, admit.limit, |sender| {
                        ledger.next_nonce(sender)
                    });
                match pushed {
                    Ok(()) | Err(MempoolError::Duplicate) => Ok(()),
                    Err(error) => Err(self.mempool_refusal(error, &admit)),
                }
            }
            (_, Some(leader)) => {
                // The leader applies the mempool's rules; a follower applies them to what
                // it forwarded, so that it too answers a second transaction for a pending
                // nonce, or one past the sender's limit, with a refusal and not a 200.
                // The bytes stay too: should the leader change before they commit, they
                // go to the next one (see `hand_on_accepted`).
                let tx = PendingTx {
                    hash: admit.hash,
                    bytes: bytes.to_vec(),
                    sender: admit.sender,
                    nonce: admit.nonce,
                };
                let mut pushed = self.forwarded.push(tx.clone(), self.now, admit.limit);
                if pushed == Err(MempoolError::Full) {
                    // Pruned as blocks apply; an idle chain may have let it fill. Like the
                    // leader's, it makes room for a ready transaction over held ones.
                    let ledger = self.app.ledger();
                    self.forwarded
                        .prune(self.now, |sender| ledger.next_nonce(sender));
                    pushed = self
                        .forwarded
                        .push_evicting(tx, self.now, admit.limit, |sender| {
                            ledger.next_nonce(sender)
                        });
                }
                match pushed {
                    Ok(()) | Err(MempoolError::Duplicate) => {}
                    Err(error) => return Err(self.mempool_refusal(error, &admit)),
                }
                self.pending.forwards.push((leader, bytes.to_vec()));
                self.counters.forwarded_txs += 1;
                Ok(())
            }
            (_, None) => Err(ApiError::busy("no leader is known yet; retry shortly")),
        }
    }

    /// The API's answer to a transaction the mempool's rules refuse.
    fn mempool_refusal(&self, error: MempoolError, admit: &Admit) -> ApiError {
        match error {
            MempoolError::Full | MempoolError::Duplicate => {
                ApiError::busy("the mempool is full; retry later")
            }
            MempoolError::NonceTaken => ApiError::new(
                409,
                "nonce_pending",
                format!(
                    "another transaction with nonce {} from this account is pending; \
                     the first one is kept",
                    admit.nonce
                ),
            ),
            MempoolError::SenderFull => ApiError::new(
                429,
                "too_many_pending",
                format!(
                    "this account has {} transactions pending, as many as it may (its \
                     balance pays the fees of that many, and at most {} wait); retry once \
                     some commit",
                    admit.limit.max_pending, self.config.max_nonce_ahead
                ),
            ),
        }
    }
}
