//! The Merkle state tree: a compressed binary radix tree over key hashes.
//!
//! Every state key sits at the path `SHA3(agora/key/v1 || key)`. The tree's shape is a
//! function of the set of paths alone: a subtree holding no leaf is empty (hash zero), a
//! subtree holding exactly one leaf *is* that leaf (lifted as high as it goes), any other
//! subtree is an inner node. So the root depends only on the set of (key, value) leaves,
//! never on the order they were written, and a node restored from a snapshot reaches the
//! same root as one that replayed every block.
//!
//! Leaves hash as `H(agora/leaf/v1 || path || H(agora/value/v1 || value))` and inner nodes
//! as `H(agora/node/v1 || left || right)`: different tags, so an inner node can never be
//! passed off as a leaf. The leaf hash commits to the full path, which is what makes a
//! lifted leaf's position unambiguous in a proof.
//!
//! Updates mark the inner nodes on their path dirty; [`StateTree::root`] rehashes only
//! dirty nodes. A block that changes `k` keys in a tree of `n` leaves costs about
//! `k * log2(n)` hashes (the expected depth of a random-path radix tree is log2(n) + O(1)).
//!
//! rs_merkle is not used here: it builds a tree over an ordered list of leaves, so an
//! insertion shifts every later leaf and changes O(n) hashes, and its root depends on the
//! order of the leaves; neither fits a state root that must be incremental and
//! order-independent.

use crate::hash::{tagged_hash, tags, Hash32};
use serde::{Deserialize, Serialize};

/// The 256-bit position of a key in the tree.
pub type Path = [u8; 32];

/// The path of a state key.
pub fn key_path(key: &[u8]) -> Path {
    tagged_hash(tags::KEY, &[key]).0
}

/// The leaf hash of a key's path and value.
pub fn leaf_hash(path: &Path, value: &[u8]) -> Hash32 {
    let value_hash = tagged_hash(tags::VALUE, &[value]);
    tagged_hash(tags::LEAF, &[path, value_hash.as_bytes()])
}

/// The hash of an inner node.
pub fn inner_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    tagged_hash(tags::NODE, &[left.as_bytes(), right.as_bytes()])
}

fn bit(path: &Path, depth: usize) -> bool {
    (path[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

#[derive(Clone, Debug)]
enum Node {
    Empty,
    Leaf { path: Path, hash: Hash32 },
    Inner(Box<Inner>),
}

#[derive(Clone, Debug)]
struct Inner {
    left: Node,
    right: Node,
    hash: Hash32,
    dirty: bool,
}

impl Node {
    fn inner(left: Node, right: Node) -> Node {
        Node::Inner(Box::new(Inner {
            left,
            right,
            hash: Hash32::ZERO,
            dirty: true,
        }))
    }

    /// The hash of a clean node.
    fn hash(&self) -> Hash32 {
        match self {
            Node::Empty => Hash32::ZERO,
            Node::Leaf { hash, .. } => *hash,
            Node::Inner(inner) => {
                assert!(!inner.dirty, "hash read from a dirty node");
                inner.hash
            }
        }
    }
}

/// An inclusion proof: the sibling hashes from the root down to the leaf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateProof {
    /// Siblings, root first; their count is the leaf's depth.
    pub siblings: Vec<Hash32>,
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// More siblings than the tree can be deep.
    #[error("proof has {0} siblings; a path has only 256 bits")]
    TooDeep(usize),
    /// The recomputed root differs.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
}

impl StateProof {
    /// Checks that `key` holds `value` in the state with root `root`.
    pub fn verify(&self, root: &Hash32, key: &[u8], value: &[u8]) -> Result<(), ProofError> {
        if self.siblings.len() > 256 {
            return Err(ProofError::TooDeep(self.siblings.len()));
        }
        let path = key_path(key);
        let mut hash = leaf_hash(&path, value);
        for (depth, sibling) in self.siblings.iter().enumerate().rev() {
            hash = if bit(&path, depth) {
                inner_hash(sibling, &hash)
            } else {
                inner_hash(&hash, sibling)
            };
        }
        if &hash == root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        }
    }
}

/// The tree of leaf hashes. It does not hold the values; the ledger does.
#[derive(Clone, Debug)]
pub struct StateTree {
    root: Node,
    leaves: u64,
}

impl Default for StateTree {
    fn default() -> Self {
        StateTree {
            root: Node::Empty,
            leaves: 0,
        }
    }
}

impl StateTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many leaves the tree holds.
    pub fn len(&self) -> u64 {
        self.leaves
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves == 0
    }

    /// Sets `key` to `value` (inserting or replacing).
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        let path = key_path(key);
        let hash = leaf_hash(&path, value);
        if insert_at(&mut self.root, path, hash) {
            self.leaves += 1;
        }
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let path = key_path(key);
        let root = std::mem::replace(&mut self.root, Node::Empty);
        let (root, removed) = remove_at(root, &path, 0);
        self.root = root;
        if removed {
            self.leaves -= 1;
        }
        removed
    }

    /// The root hash, rehashing the nodes changed since the last call.
    pub fn root(&mut self) -> Hash32 {
        rehash(&mut self.root);
        self.root.hash()
    }

    /// The inclusion proof for `key`, if it is present. The tree must be clean: call
    /// [`StateTree::root`] after changing it (the ledger does after every entry).
    pub fn prove(&self, key: &[u8]) -> Option<StateProof> {
        let path = key_path(key);
        let mut siblings = Vec::new();
        let mut node = &self.root;
        let mut depth = 0;
        loop {
            match node {
                Node::Empty => return None,
                Node::Leaf {
                    path: leaf_path, ..
                } => {
                    return (leaf_path == &path).then_some(StateProof { siblings });
                }
                Node::Inner(inner) => {
                    let (next, sibling) = if bit(&path, depth) {
                        (&inner.right, &inner.left)
                    } else {
                        (&inner.left, &inner.right)
                    };
                    siblings.push(sibling.hash());
                    node = next;
                    depth += 1;
                }
            }
        }
    }
}

/// Walks down in place, marking inner nodes dirty; returns whether a leaf was added.
fn insert_at(root: &mut Node, path: Path, hash: Hash32) -> bool {
    let mut node = root;
    let mut depth = 0;
    loop {
        match node {
            Node::Inner(inner) => {
                inner.dirty = true;
                node = if bit(&path, depth) {
                    &mut inner.right
                } else {
                    &mut inner.left
                };
                depth += 1;
            }
            Node::Leaf {
                path: existing,
                hash: existing_hash,
            } if *existing == path => {
                *existing_hash = hash;
                return false;
            }
            Node::Leaf { path: existing, .. } => {
                let existing_path = *existing;
                let existing = std::mem::replace(node, Node::Empty);
                *node = split(
                    existing,
                    &existing_path,
                    Node::Leaf { path, hash },
                    &path,
                    depth,
                );
                return true;
            }
            Node::Empty => {
                *node = Node::Leaf { path, hash };
                return true;
            }
        }
    }
}

/// The smallest subtree at `depth` holding two leaves with different paths.
fn split(a: Node, a_path: &Path, b: Node, b_path: &Path, depth: usize) -> Node {
    assert!(depth < 256, "distinct paths differ in some bit");
    match (bit(a_path, depth), bit(b_path, depth)) {
        (false, true) => Node::inner(a, b),
        (true, false) => Node::inner(b, a),
        (false, false) => Node::inner(split(a, a_path, b, b_path, depth + 1), Node::Empty),
        (true, true) => Node::inner(Node::Empty, split(a, a_path, b, b_path, depth + 1)),
    }
}

fn remove_at(node: Node, path: &Path, depth: usize) -> (Node, bool) {
    match node {
        Node::Empty => (Node::Empty, false),
        Node::Leaf {
            path: leaf_path,
            hash,
        } => {
            if &leaf_path == path {
                (Node::Empty, true)
            } else {
                (
                    Node::Leaf {
                        path: leaf_path,
                        hash,
                    },
                    false,
                )
            }
        }
        Node::Inner(mut inner) => {
            let removed = if bit(path, depth) {
                let child = std::mem::replace(&mut inner.right, Node::Empty);
                let (child, removed) = remove_at(child, path, depth + 1);
                inner.right = child;
                removed
            } else {
                let child = std::mem::replace(&mut inner.left, Node::Empty);
                let (child, removed) = remove_at(child, path, depth + 1);
                inner.left = child;
                removed
            };
            if !removed {
                return (Node::Inner(inner), false);
            }
            inner.dirty = true;
            // Keep the canonical shape: a subtree left with a single leaf becomes that leaf.
            // (A lone inner child holds two or more leaves, so it stays.)
            let inner = *inner;
            let collapsed = match (inner.left, inner.right) {
                (Node::Empty, Node::Empty) => Node::Empty,
                (Node::Empty, leaf @ Node::Leaf { .. })
                | (leaf @ Node::Leaf { .. }, Node::Empty) => leaf,
                (left, right) => Node::Inner(Box::new(Inner {
                    left,
                    right,
                    hash: Hash32::ZERO,
                    dirty: true,
                })),
            };
            (collapsed, true)
        }
    }
}

fn rehash(node: &mut Node) {
    if let Node::Inner(inner) = node {
        if inner.dirty {
            rehash(&mut inner.left);
            rehash(&mut inner.right);
            inner.hash = inner_hash(&inner.left.hash(), &inner.right.hash());
            inner.dirty = false;
        }
    }
}

/// The root of a set of leaves computed from scratch, with no caching: the reference the
/// incremental tree is tested against. `leaves` are (path, leaf hash) pairs.
pub fn reference_root(leaves: &[(Path, Hash32)]) -> Hash32 {
    fn build(leaves: &[(Path, Hash32)], depth: usize) -> Hash32 {
        match leaves {
            [] => Hash32::ZERO,
            [(_, hash)] => *hash,
            _ => {
                let (left, right): (Vec<_>, Vec<_>) =
                    leaves.iter().partition(|(path, _)| !bit(path, depth));
                inner_hash(&build(&left, depth + 1), &build(&right, depth + 1))
            }
        }
    }
    let mut sorted = leaves.to_vec();
    sorted.sort();
    sorted.dedup_by(|a, b| a.0 == b.0);
    build(&sorted, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn reference(map: &BTreeMap<Vec<u8>, Vec<u8>>) -> Hash32 {
        let leaves: Vec<_> = map
            .iter()
            .map(|(k, v)| {
                let path = key_path(k);
                (path, leaf_hash(&path, v))
            })
            .collect();
        reference_root(&leaves)
    }

    #[test]
    fn empty_root_is_zero() {
        assert_eq!(StateTree::new().root(), Hash32::ZERO);
    }

    #[test]
    fn single_leaf_root_is_the_leaf() {
        let mut tree = StateTree::new();
        tree.insert(b"k", b"v");
        assert_eq!(tree.root(), leaf_hash(&key_path(b"k"), b"v"));
        let proof = tree.prove(b"k").unwrap();
        assert!(proof.siblings.is_empty());
        proof.verify(&tree.root(), b"k", b"v").unwrap();
    }

    #[test]
    fn removing_everything_returns_to_empty() {
        let mut tree = StateTree::new();
        for i in 0u32..100 {
            tree.insert(&i.to_le_bytes(), b"x");
        }
        for i in 0u32..100 {
            assert!(tree.remove(&i.to_le_bytes()));
        }
        assert!(!tree.remove(&0u32.to_le_bytes()));
        assert_eq!(tree.root(), Hash32::ZERO);
        assert_eq!(tree.len(), 0);
    }

    #[test]
    fn tampered_proofs_fail() {
        let mut tree = StateTree::new();
        for i in 0u32..50 {
            tree.insert(&i.to_le_bytes(), &i.to_be_bytes());
        }
        let root = tree.root();
        let key = 7u32.to_le_bytes();
        let proof = tree.prove(&key).unwrap();
        proof.verify(&root, &key, &7u32.to_be_bytes()).unwrap();
        assert_eq!(
            proof.verify(&root, &key, &8u32.to_be_bytes()),
            Err(ProofError::RootMismatch)
        );
        let mut bad = proof.clone();
        bad.siblings[0].0[0] ^= 1;
        assert_eq!(
            bad.verify(&root, &key, &7u32.to_be_bytes()),
            Err(ProofError::RootMismatch)
        );
        let mut short = proof.clone();
        short.siblings.pop();
        assert!(short.verify(&root, &key, &7u32.to_be_bytes()).is_err());
        assert!(tree.prove(&999u32.to_le_bytes()).is_none());
    }

    #[test]
    fn inner_node_cannot_pose_as_leaf() {
        // With two leaves, the root is inner(l, r). Claiming the root's preimage as a leaf
        // value must not verify, because leaves and inner nodes use different tags.
        let mut tree = StateTree::new();
        tree.insert(b"a", b"1");
        tree.insert(b"b", b"2");
        let root = tree.root();
        let forged = StateProof { siblings: vec![] };
        assert!(forged.verify(&root, b"a", root.as_bytes()).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The incremental root equals a full rebuild after any sequence of inserts,
        /// updates and removals, and every key's proof verifies.
        #[test]
        fn incremental_root_equals_rebuild(ops in prop::collection::vec((0u8..40, prop::option::of(0u8..4)), 1..200)) {
            let mut tree = StateTree::new();
            let mut model = BTreeMap::new();
            for (i, (key, value)) in ops.iter().enumerate() {
                let key = vec![*key];
                match value {
                    Some(v) => { tree.insert(&key, &[*v]); model.insert(key, vec![*v]); }
                    None => { prop_assert_eq!(tree.remove(&key), model.remove(&key).is_some()); }
                }
                if i % 7 == 0 {
                    prop_assert_eq!(tree.root(), reference(&model));
                }
            }
            let root = tree.root();
            prop_assert_eq!(root, reference(&model));
            prop_assert_eq!(tree.len(), model.len() as u64);
            for (key, value) in &model {
                let proof = tree.prove(key).unwrap();
                prop_assert!(proof.verify(&root, key, value).is_ok());
            }
        }

        /// The root depends only on the final set of leaves, not on write order.
        #[test]
        fn root_is_independent_of_insertion_order(keys in prop::collection::btree_set(any::<u32>(), 0..100), seed in any::<u64>()) {
            let keys: Vec<u32> = keys.into_iter().collect();
            let mut shuffled = keys.clone();
            // A deterministic shuffle driven by the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut a = StateTree::new();
            for k in &keys { a.insert(&k.to_le_bytes(), b"v"); }
            let mut b = StateTree::new();
            // Insert extra keys and remove them again: the detour must leave no trace.
            for k in &shuffled { b.insert(&k.to_le_bytes(), b"old"); b.insert(&(u64::from(*k) << 32 | 1).to_le_bytes(), b"tmp"); }
            for k in &shuffled { b.insert(&k.to_le_bytes(), b"v"); b.remove(&(u64::from(*k) << 32 | 1).to_le_bytes()); }
            prop_assert_eq!(a.root(), b.root());
        }
    }
}
