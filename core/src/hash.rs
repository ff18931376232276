//! SHA3-256 with one domain tag per purpose.
//!
//! Every hash in Agora is `SHA3-256(len(tag) as u8 || tag || data)`. The tag says what the
//! bytes are (a transaction, a block header, a Merkle leaf, a Merkle inner node, ...), so
//! a value hashed for one purpose can never be passed off as a value of another.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Domain tags, one per purpose. Changing any of these changes every vector.
pub mod tags {
    /// A signed transaction's canonical bytes (its hash is the transaction id).
    pub const TX: &[u8] = b"agora/tx/v1";
    /// A block header.
    pub const BLOCK: &[u8] = b"agora/block/v1";
    /// A consensus vote (used by the Raft layer).
    pub const VOTE: &[u8] = b"agora/vote/v1";
    /// A state-tree leaf.
    pub const LEAF: &[u8] = b"agora/leaf/v1";
    /// A state-tree inner node.
    pub const NODE: &[u8] = b"agora/node/v1";
    /// The position of a state key in the state tree.
    pub const KEY: &[u8] = b"agora/key/v1";
    /// A state value, hashed into its leaf.
    pub const VALUE: &[u8] = b"agora/value/v1";
    /// An account id, derived from a tagged public key.
    pub const ACCOUNT: &[u8] = b"agora/account/v1";
    /// The canonical genesis; its hash is the chain id.
    pub const GENESIS: &[u8] = b"agora/genesis/v1";
    /// A leaf of the per-block transaction tree.
    pub const TX_LEAF: &[u8] = b"agora/txleaf/v1";
    /// An inner node of the per-block transaction tree.
    pub const TX_NODE: &[u8] = b"agora/txnode/v1";
    /// The transaction root: the tree root bound to the leaf count.
    pub const TX_ROOT: &[u8] = b"agora/txroot/v1";
    /// A validator's commit statement (signature context and verdict key).
    pub const COMMIT: &[u8] = b"agora/commit/v1";
    /// The certificates a block carries, hashed into its header.
    pub const CERTS: &[u8] = b"agora/certs/v1";
    /// The consensus committee's hash (light-client checkpoints).
    pub const COMMITTEE: &[u8] = b"agora/committee/v1";
    /// Signature-cache keys (never leaves the process, never reaches state).
    pub const SIG_CACHE: &[u8] = b"agora/sigcache/v1";
}

/// A 32-byte SHA3-256 digest. Shown and parsed as lowercase hex.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero digest; the hash of an empty subtree.
    pub const ZERO: Hash32 = Hash32([0u8; 32]);

    /// The bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, HexError> {
        let bytes = hex::decode(text).map_err(|_| HexError::NotHex)?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|bytes: Vec<u8>| HexError::Length(bytes.len()))?;
        Ok(Hash32(array))
    }
}

/// Why a hex string is not a 32-byte digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// Not hexadecimal.
    #[error("not a hex string")]
    NotHex,
    /// Hex of the wrong length.
    #[error("expected 32 bytes (64 hex digits), got {0} bytes")]
    Length(usize),
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as Deserialize>::deserialize(deserializer)?;
        Hash32::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// `SHA3-256(len(tag) || tag || parts...)`.
pub fn tagged_hash(tag: &[u8], parts: &[&[u8]]) -> Hash32 {
    assert!(tag.len() <= u8::MAX as usize, "domain tags are short");
    let prefix = [tag.len() as u8];
    // A long input (a transaction) is hashed four-lane where the CPU allows.
    Hash32(agora_sha3x4::digest(
        [prefix.as_slice(), tag]
            .into_iter()
            .chain(parts.iter().copied()),
    ))
}

/// [`tagged_hash`] of many inputs under one tag, in order: the same digests, computed
/// several at a time where the CPU allows (see `agora-sha3x4`). Each input is its parts.
pub fn tagged_hashes<const N: usize>(tag: &[u8], inputs: &[[&[u8]; N]]) -> Vec<Hash32> {
    assert!(tag.len() <= u8::MAX as usize, "domain tags are short");
    let prefix = [tag.len() as u8];
    let each = 1
        + tag.len()
        + inputs
            .first()
            .map_or(0, |parts| parts.iter().map(|p| p.len()).sum());
    let mut messages = agora_sha3x4::Messages::with_capacity(inputs.len(), each);
    for parts in inputs {
        messages.push(
            [prefix.as_slice(), tag]
                .into_iter()
                .chain(parts.iter().copied()),
        );
    }
    messages.digests().into_iter().map(Hash32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batched hashes are the one-at-a-time hashes, for inputs on both sides of a
    /// single sponge block and any count (partial groups included).
    #[test]
    fn tagged_hashes_equal_tagged_hash_one_by_one() {
        for count in [0usize, 1, 3, 4, 5, 9] {
            for len in [0usize, 32, 64, 119, 120, 121, 200] {
                let data: Vec<Vec<u8>> = (0..count).map(|i| vec![i as u8; len]).collect();
                let inputs: Vec<[&[u8]; 2]> = data.iter().map(|d| [d.as_slice(), b"x"]).collect();
                let batched = tagged_hashes(tags::NODE, &inputs);
                let single: Vec<_> = inputs.iter().map(|p| tagged_hash(tags::NODE, p)).collect();
                assert_eq!(batched, single, "{count} inputs of {len} + 1 bytes");
            }
        }
    }

    #[test]
    fn tags_separate_domains() {
        let data = b"same bytes";
        assert_ne!(
            tagged_hash(tags::LEAF, &[data]),
            tagged_hash(tags::NODE, &[data])
        );
    }

    #[test]
    fn tag_length_prefix_prevents_shifting_bytes_between_tag_and_data() {
        // Without the length prefix, ("ab", "c") and ("a", "bc") would hash alike.
        assert_ne!(tagged_hash(b"ab", &[b"c"]), tagged_hash(b"a", &[b"bc"]));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = tagged_hash(tags::TX, &[b"x"]);
        assert_eq!(Hash32::from_hex(&h.to_hex()).unwrap(), h);
        assert_eq!(Hash32::from_hex("zz"), Err(HexError::NotHex));
        assert_eq!(Hash32::from_hex("abcd"), Err(HexError::Length(2)));
    }
}
