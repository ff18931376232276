//! The per-block transaction root, built with `rs_merkle` over SHA3-256.
//!
//! A leaf is the tagged hash of the transaction's id (itself the hash of its bytes), not of
//! the bytes again: a node hashes each transaction's bytes once, for its id, and the root
//! costs only 32-byte hashes on top.
//!
//! rs_merkle's `Hasher::hash` is used for inner nodes only (rs_merkle calls it on the
//! concatenation of two children); leaves are hashed by us under a different tag before
//! they reach rs_merkle. Without that split an inner node would pass as a leaf. rs_merkle
//! also promotes an unpaired last node unchanged, so the trees of `n` and `n + 1` leaves can
//! share a root: the root committed in a block binds the leaf count too. Its multi-proof
//! verifier accepts duplicate indices, so [`verify_tx_proof`] refuses duplicate or unsorted
//! indices before rs_merkle sees them.

use crate::hash::{tagged_hash, tagged_hashes, tags, Hash32};
use crate::tx::tx_hash;
use rs_merkle::{Hasher, MerkleProof, MerkleTree};

/// rs_merkle hasher for inner nodes of the transaction tree.
#[derive(Clone, Copy, Debug)]
pub struct TxNodeHasher;

impl Hasher for TxNodeHasher {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        tagged_hash(tags::TX_NODE, &[data]).0
    }
}

/// The leaf for one transaction's bytes (as carried in the block, decodable or not).
pub fn tx_leaf(tx_bytes: &[u8]) -> [u8; 32] {
    tx_leaf_of_id(&tx_hash(tx_bytes))
}

/// The leaf for a transaction whose id ([`tx_hash`]) is `id`.
pub fn tx_leaf_of_id(id: &Hash32) -> [u8; 32] {
    tagged_hash(tags::TX_LEAF, &[id.as_bytes()]).0
}

fn bind_count(tree_root: [u8; 32], count: u64) -> Hash32 {
    tagged_hash(tags::TX_ROOT, &[&count.to_le_bytes(), &tree_root])
}

/// The transaction root of a block: the rs_merkle root bound to the transaction count.
pub fn tx_root<T: AsRef<[u8]>>(txs: &[T]) -> Hash32 {
    tx_root_of_ids(&tx_ids(txs))
}

/// The ids of `txs` (each one's [`tx_hash`]), in order, hashed in a batch.
pub fn tx_ids<T: AsRef<[u8]>>(txs: &[T]) -> Vec<Hash32> {
    let inputs: Vec<[&[u8]; 1]> = txs.iter().map(|tx| [tx.as_ref()]).collect();
    tagged_hashes(tags::TX, &inputs)
}

/// [`tx_root`] from the transactions' ids, in block order.
pub fn tx_root_of_ids(ids: &[Hash32]) -> Hash32 {
    let inputs: Vec<[&[u8]; 1]> = ids.iter().map(|id| [id.as_bytes().as_slice()]).collect();
    let leaves: Vec<[u8; 32]> = tagged_hashes(tags::TX_LEAF, &inputs)
        .into_iter()
        .map(|leaf| leaf.0)
        .collect();
    let tree = MerkleTree::<TxNodeHasher>::from_leaves(&leaves);
    bind_count(tree.root().unwrap_or([0u8; 32]), ids.len() as u64)
}

/// A proof that some transactions are in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxProof {
    /// How many transactions the block has.
    pub count: u64,
    /// The rs_merkle proof hashes.
    pub hashes: Vec<[u8; 32]>,
}

/// Why a transaction proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxProofError {
    /// Indices must be strictly increasing (rs_merkle would accept duplicates).
    #[error("proof indices must be sorted and distinct")]
    Indices,
    /// An index is past the end of the block, or the lists differ in length.
    #[error("proof indices do not fit the block")]
    Shape,
    /// The proof does not lead to the root.
    #[error("proof does not lead to the transaction root")]
    RootMismatch,
}

/// Builds a proof for the transactions at `indices` (sorted, distinct).
pub fn prove_txs<T: AsRef<[u8]>>(txs: &[T], indices: &[usize]) -> Result<TxProof, TxProofError> {
    if !indices.windows(2).all(|pair| pair[0] < pair[1]) {
        return Err(TxProofError::Indices);
    }
    if indices.iter().any(|&index| index >= txs.len()) {
        return Err(TxProofError::Shape);
    }
    let leaves: Vec<[u8; 32]> = txs.iter().map(|tx| tx_leaf(tx.as_ref())).collect();
    let tree = MerkleTree::<TxNodeHasher>::from_leaves(&leaves);
    Ok(TxProof {
        count: txs.len() as u64,
        hashes: tree.proof(indices).proof_hashes().to_vec(),
    })
}

/// Checks that `txs[i]` is the transaction at `indices[i]` of the block with `root`.
pub fn verify_tx_proof<T: AsRef<[u8]>>(
    root: &Hash32,
    proof: &TxProof,
    indices: &[usize],
    txs: &[T],
) -> Result<(), TxProofError> {
    if !indices.windows(2).all(|pair| pair[0] < pair[1]) {
        return Err(TxProofError::Indices);
    }
    if indices.is_empty()
        || indices.len() != txs.len()
        || indices.iter().any(|&index| index as u64 >= proof.count)
    {
        return Err(TxProofError::Shape);
    }
    let leaves: Vec<[u8; 32]> = txs.iter().map(|tx| tx_leaf(tx.as_ref())).collect();
    let merkle_proof = MerkleProof::<TxNodeHasher>::new(proof.hashes.clone());
    let tree_root = merkle_proof
        .root(indices, &leaves, proof.count as usize)
        .map_err(|_| TxProofError::RootMismatch)?;
    if &bind_count(tree_root, proof.count) == root {
        Ok(())
    } else {
        Err(TxProofError::RootMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txs(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("tx{i}").into_bytes()).collect()
    }

    /// The batched ids and leaves are each transaction's own, for transactions of many
    /// lengths (one and several sponge blocks, equal lengths and not) in any order.
    #[test]
    fn batched_ids_and_leaves_equal_one_by_one() {
        let txs: Vec<Vec<u8>> = (0..23usize)
            .map(|i| vec![i as u8; [3_409, 12, 3_409, 300, 135, 3_300][i % 6] + i % 2])
            .collect();
        let ids = tx_ids(&txs);
        let single: Vec<Hash32> = txs.iter().map(|tx| tx_hash(tx)).collect();
        assert_eq!(ids, single);
        let leaves: Vec<[u8; 32]> = txs.iter().map(|tx| tx_leaf(tx)).collect();
        let tree = MerkleTree::<TxNodeHasher>::from_leaves(&leaves);
        assert_eq!(
            tx_root_of_ids(&ids),
            bind_count(tree.root().unwrap(), txs.len() as u64)
        );
    }

    #[test]
    fn count_is_bound() {
        // With 3 leaves rs_merkle promotes the third; the root still differs from other
        // counts, and the empty block has a root too.
        let roots: Vec<_> = (0..6).map(|n| tx_root(&txs(n))).collect();
        for i in 0..roots.len() {
            for j in 0..i {
                assert_ne!(roots[i], roots[j]);
            }
        }
    }

    #[test]
    fn proofs_verify_and_duplicates_are_refused() {
        let all = txs(7);
        let root = tx_root(&all);
        let proof = prove_txs(&all, &[1, 4]).unwrap();
        verify_tx_proof(&root, &proof, &[1, 4], &[&all[1], &all[4]]).unwrap();
        assert_eq!(
            verify_tx_proof(&root, &proof, &[4, 1], &[&all[4], &all[1]]),
            Err(TxProofError::Indices)
        );
        assert_eq!(
            verify_tx_proof(&root, &proof, &[1, 1], &[&all[1], &all[1]]),
            Err(TxProofError::Indices)
        );
        assert_eq!(
            verify_tx_proof(&root, &proof, &[1, 4], &[&all[1], &all[5]]),
            Err(TxProofError::RootMismatch)
        );
        assert_eq!(prove_txs(&all, &[2, 2]), Err(TxProofError::Indices));
    }

    #[test]
    fn leaf_cannot_pose_as_inner_node() {
        // Two leaves l0, l1 give root node(l0 || l1). A one-transaction block whose bytes
        // are l0 || l1 must not have the same tree root: leaves use another tag.
        let all = txs(2);
        let joined: Vec<u8> = [tx_leaf(&all[0]), tx_leaf(&all[1])].concat();
        let two = MerkleTree::<TxNodeHasher>::from_leaves(&[tx_leaf(&all[0]), tx_leaf(&all[1])]);
        let one = MerkleTree::<TxNodeHasher>::from_leaves(&[tx_leaf(&joined)]);
        assert_ne!(two.root(), one.root());
    }
}
