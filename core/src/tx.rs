//! Transactions: what members sign.

use crate::crypto::{PublicKey, Purpose, SecretKey, Signature};
use crate::encoding::{check_len, Canonical, DecodeError};
use crate::hash::{tagged_hash, tags, Hash32};
use crate::params::ParamChange;
use crate::types::{AccountId, Amount, ChainId, ValidatorId};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Largest canonical signed transaction, in bytes: an ML-DSA-87 key and signature plus a
/// text proposal at its limits fits with room to spare.
pub const MAX_TX_BYTES: usize = 16 * 1024;
/// Longest proposal title, in bytes of UTF-8.
pub const MAX_TITLE_BYTES: usize = 128;
/// Longest proposal body, in bytes of UTF-8.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// Most parameter changes in one proposal.
pub const MAX_PARAM_CHANGES: usize = 12;
/// Longest network address binding of a validator (a libp2p peer id is 38 bytes).
pub const MAX_PEER_BYTES: usize = 64;

/// Who sends a transaction. The first transaction of an account registers its key; later
/// ones name the account only (an ML-DSA key is 1.3 to 2.6 KB, too much for every entry).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// First use of a key: registers it on the account it derives.
    Register(PublicKey),
    /// An account whose key is registered already.
    Account(AccountId),
}

impl Sender {
    /// The account this sender acts for.
    pub fn account_id(&self) -> AccountId {
        match self {
            Sender::Register(key) => AccountId::from_public_key(key),
            Sender::Account(id) => *id,
        }
    }
}

/// A vote on a proposal.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VoteChoice {
    /// In favour.
    Yes,
    /// Against.
    No,
    /// Counts toward quorum only.
    Abstain,
    /// Against, and if enough agree the deposit is forfeited.
    Veto,
}

/// What a passed proposal does.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProposalKind {
    /// Nothing but a recorded decision.
    Text {
        /// A short title.
        title: String,
        /// The text.
        body: String,
    },
    /// Changes parameters; the result must be a valid parameter set.
    ParameterChange {
        /// The changes, applied in order.
        changes: Vec<ParamChange>,
    },
    /// Pays from the treasury.
    TreasurySpend {
        /// The recipient.
        to: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Adds a validator.
    AddValidator {
        /// Its ML-DSA validator key (signs blocks and votes).
        public_key: PublicKey,
        /// Its network identity (the libp2p peer id bytes), bound to the key.
        peer: Vec<u8>,
        /// Its base reputation.
        base_reputation: u64,
    },
    /// Removes a validator.
    RemoveValidator {
        /// Which one.
        validator: ValidatorId,
    },
    /// Sets a validator's base reputation.
    SetReputation {
        /// Which one.
        validator: ValidatorId,
        /// The new base.
        base_reputation: u64,
    },
    /// Adds a witness: a consensus member that votes and keeps the log but never leads
    /// and does not execute the ledger.
    AddWitness {
        /// Its ML-DSA key (signs its votes).
        public_key: PublicKey,
        /// Its network identity (the libp2p peer id bytes), bound to the key.
        peer: Vec<u8>,
        /// Its consensus weight (1 to 2^32; the cap applies as to validators).
        weight: u64,
    },
    /// Removes a witness.
    RemoveWitness {
        /// Which one.
        witness: ValidatorId,
    },
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Moves spendable tokens.
    Transfer {
        /// The recipient (created if new).
        to: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Locks spendable tokens as stake (which carries governance weight).
    Stake {
        /// How much.
        amount: Amount,
    },
    /// Starts unbonding stake; spendable after `unbonding_blocks`.
    Unstake {
        /// How much.
        amount: Amount,
    },
    /// Opens a proposal, escrowing a deposit.
    Propose {
        /// What it would do.
        proposal: ProposalKind,
        /// Escrowed until the tally.
        deposit: Amount,
    },
    /// Votes, or changes a vote, on an open proposal.
    Vote {
        /// The proposal id.
        proposal: u64,
        /// The choice.
        choice: VoteChoice,
    },
}

/// The signed part of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transaction {
    /// The chain this is for; a transaction never replays on another chain.
    pub chain_id: ChainId,
    /// Who sends it.
    pub sender: Sender,
    /// Must equal the account's next nonce (0 for a new account).
    pub nonce: u64,
    /// What it does.
    pub action: Action,
}

impl Transaction {
    /// Signs with `key`; `randomness` as in [`SecretKey::sign`].
    pub fn sign(self, key: &SecretKey, randomness: [u8; 32]) -> SignedTransaction {
        let signature = key.sign(
            Purpose::Transaction,
            &borsh::to_vec(&self).expect("in memory"),
            randomness,
        );
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

/// A transaction and its sender's signature over the transaction's canonical bytes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedTransaction {
    /// What was signed.
    pub tx: Transaction,
    /// The signature, under [`Purpose::Transaction`].
    pub signature: Signature,
}

impl SignedTransaction {
    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        borsh::to_vec(&self.tx).expect("in memory")
    }

    /// Whether the signature verifies under `key` (the sender's registered key, or the key
    /// the transaction registers).
    pub fn signature_verifies(&self, key: &PublicKey) -> bool {
        key.verify(
            crate::crypto::Purpose::Transaction,
            &self.signing_bytes(),
            &self.signature,
        )
        .is_ok()
    }

    /// The transaction id: the tagged hash of the canonical signed bytes.
    pub fn hash(&self) -> Hash32 {
        tx_hash(&self.to_canonical_bytes())
    }
}

/// The id of a transaction given its bytes (also for bytes that do not decode, so a
/// malformed transaction still has a receipt to find).
pub fn tx_hash(bytes: &[u8]) -> Hash32 {
    tagged_hash(tags::TX, &[bytes])
}

impl Canonical for SignedTransaction {
    const MAX_BYTES: usize = MAX_TX_BYTES;

    fn validate(&self) -> Result<(), DecodeError> {
        match &self.tx.action {
            Action::Propose { proposal, .. } => validate_proposal(proposal),
            _ => Ok(()),
        }
    }
}

fn validate_proposal(proposal: &ProposalKind) -> Result<(), DecodeError> {
    match proposal {
        ProposalKind::Text { title, body } => {
            check_len("proposal title (bytes)", title.len(), MAX_TITLE_BYTES)?;
            check_len("proposal body (bytes)", body.len(), MAX_BODY_BYTES)
        }
        ProposalKind::ParameterChange { changes } => {
            check_len("parameter changes", changes.len(), MAX_PARAM_CHANGES)
        }
        ProposalKind::AddValidator { peer, .. } => {
            check_len("validator peer id (bytes)", peer.len(), MAX_PEER_BYTES)
        }
        ProposalKind::AddWitness { peer, .. } => {
            check_len("witness peer id (bytes)", peer.len(), MAX_PEER_BYTES)
        }
        ProposalKind::TreasurySpend { .. }
        | ProposalKind::RemoveValidator { .. }
        | ProposalKind::SetReputation { .. }
        | ProposalKind::RemoveWitness { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyKind;

    fn sample() -> SignedTransaction {
        let key = SecretKey::from_seed(KeyKind::MlDsa44, [5u8; 32]);
        Transaction {
            chain_id: Hash32([1; 32]),
            sender: Sender::Register(key.public_key().clone()),
            nonce: 0,
            action: Action::Transfer {
                to: AccountId(Hash32([2; 32])),
                amount: Amount(7),
            },
        }
        .sign(&key, [0; 32])
    }

    #[test]
    fn round_trip_and_hash_are_stable() {
        let tx = sample();
        let bytes = tx.to_canonical_bytes();
        let back = SignedTransaction::from_canonical_bytes(&bytes).unwrap();
        assert_eq!(back, tx);
        assert_eq!(back.hash(), tx_hash(&bytes));
    }

    #[test]
    fn oversize_text_is_refused() {
        let key = SecretKey::from_seed(KeyKind::MlDsa44, [5u8; 32]);
        let tx = Transaction {
            chain_id: Hash32([1; 32]),
            sender: Sender::Account(AccountId::from_public_key(key.public_key())),
            nonce: 1,
            action: Action::Propose {
                proposal: ProposalKind::Text {
                    title: "t".repeat(MAX_TITLE_BYTES + 1),
                    body: String::new(),
                },
                deposit: Amount(1),
            },
        }
        .sign(&key, [0; 32]);
        let err = SignedTransaction::from_canonical_bytes(&tx.to_canonical_bytes()).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid(_)), "{err}");
    }

    #[test]
    fn every_strict_prefix_is_refused() {
        let bytes = sample().to_canonical_bytes();
        for cut in [0, 1, 33, bytes.len() / 2, bytes.len() - 1] {
            assert!(SignedTransaction::from_canonical_bytes(&bytes[..cut]).is_err());
        }
    }
}
