//! Blocks and the log entries that carry them.

use crate::certificate::{
    certificates_hash, Certificate, MAX_CERTIFICATES_PER_BLOCK, MAX_CERTIFICATE_SIGNATURES,
};
use crate::crypto::{Purpose, SecretKey, Signature};
use crate::encoding::{check_len, Canonical, DecodeError};
use crate::hash::{tagged_hash, tags, Hash32};
use crate::params::MAX_BLOCK_TXS_LIMIT;
use crate::tx::MAX_TX_BYTES;
use crate::tx_root::tx_root;
use crate::types::{ChainId, ValidatorId};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Largest canonical block, in bytes.
pub const MAX_BLOCK_BYTES: usize = 16 * 1024 * 1024;
const _: () = assert!(
    MAX_BLOCK_BYTES >= 1_000 * MAX_TX_BYTES,
    "a block of 1,000 maximal transactions fits"
);

/// What the proposer signs.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockHeader {
    /// The chain.
    pub chain_id: ChainId,
    /// The Raft index of the entry carrying this block.
    pub height: u64,
    /// The validator that proposed it.
    pub proposer: ValidatorId,
    /// Hash of the previous block's header (the chain id for the first block).
    pub parent_hash: Hash32,
    /// See [`crate::tx_root::tx_root`]; binds the transaction count.
    pub tx_root: Hash32,
    /// The newest height whose state the proposer had applied when it proposed.
    pub checked_height: u64,
    /// The proposer's state root at `checked_height`. Every follower compares it with its
    /// own and halts on a difference.
    pub checked_state_root: Hash32,
    /// See [`crate::certificate::certificates_hash`]: binds the block's certificates.
    pub certificates_hash: Hash32,
}

impl BlockHeader {
    /// The block hash: the tagged hash of the canonical header.
    pub fn hash(&self) -> Hash32 {
        tagged_hash(tags::BLOCK, &[&borsh::to_vec(self).expect("in memory")])
    }
}

/// A block: header, the proposer's signature over it, and transactions as raw bytes.
/// Transactions stay bytes so that one that does not decode still gets a failed receipt
/// on every node rather than making the block unreadable.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The proposer's signature over the canonical header, under [`Purpose::Block`].
    pub signature: Signature,
    /// Canonical signed transactions (or whatever bytes the proposer included).
    pub txs: Vec<Vec<u8>>,
    /// Commit certificates for earlier heights, in increasing height order.
    pub certificates: Vec<Certificate>,
}

impl Block {
    /// Builds and signs a block over `txs`, computing the transaction root.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        chain_id: ChainId,
        height: u64,
        proposer_key: &SecretKey,
        parent_hash: Hash32,
        checked_height: u64,
        checked_state_root: Hash32,
        txs: Vec<Vec<u8>>,
        certificates: Vec<Certificate>,
        randomness: [u8; 32],
    ) -> Block {
        let root = tx_root(&txs);
        Block::build_with_tx_root(
            chain_id,
            height,
            proposer_key,
            parent_hash,
            checked_height,
            checked_state_root,
            txs,
            root,
            certificates,
            randomness,
        )
    }

    /// [`Block::build`] for a proposer that already holds its transactions' ids:
    /// `tx_root` must be [`crate::tx_root::tx_root_of_ids`] of their ids, in order (a
    /// block whose root does not match its transactions is refused by every node).
    #[allow(clippy::too_many_arguments)]
    pub fn build_with_tx_root(
        chain_id: ChainId,
        height: u64,
        proposer_key: &SecretKey,
        parent_hash: Hash32,
        checked_height: u64,
        checked_state_root: Hash32,
        txs: Vec<Vec<u8>>,
        tx_root: Hash32,
        certificates: Vec<Certificate>,
        randomness: [u8; 32],
    ) -> Block {
        let header = BlockHeader {
            chain_id,
            height,
            proposer: ValidatorId::from_public_key(proposer_key.public_key()),
            parent_hash,
            tx_root,
            checked_height,
            checked_state_root,
            certificates_hash: certificates_hash(&certificates),
        };
        let signature = proposer_key.sign(
            Purpose::Block,
            &borsh::to_vec(&header).expect("in memory"),
            randomness,
        );
        Block {
            header,
            signature,
            txs,
            certificates,
        }
    }
}

impl Canonical for Block {
    const MAX_BYTES: usize = MAX_BLOCK_BYTES;

    fn validate(&self) -> Result<(), DecodeError> {
        check_len(
            "block transactions",
            self.txs.len(),
            MAX_BLOCK_TXS_LIMIT as usize,
        )?;
        for tx in &self.txs {
            check_len("transaction bytes", tx.len(), MAX_TX_BYTES)?;
        }
        check_len(
            "block certificates",
            self.certificates.len(),
            MAX_CERTIFICATES_PER_BLOCK,
        )?;
        for certificate in &self.certificates {
            check_len(
                "certificate signatures",
                certificate.signatures.len(),
                MAX_CERTIFICATE_SIGNATURES,
            )?;
        }
        Ok(())
    }
}

/// What a committed log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryPayload {
    /// The empty entry a new Raft leader appends; advances the height only.
    Noop,
    /// A canonical [`Block`].
    Block(#[serde(with = "hex_bytes")] Vec<u8>),
    /// A consensus configuration change; the ledger advances the height only.
    Membership(#[serde(with = "hex_bytes")] Vec<u8>),
}

/// A committed log entry. Its index is the ledger height it produces.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    /// The Raft index, equal to the height after applying.
    pub index: u64,
    /// The Raft term (the ledger only uses it to find ids the node already hashed for
    /// this entry: see [`crate::SignatureVerdicts::tx_ids`]).
    pub term: u64,
    /// The contents.
    pub payload: EntryPayload,
}

/// serde helper: bytes as lowercase hex.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes bytes as hex.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    /// Parses hex into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = <String as Deserialize>::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}
