//! A chain in memory for the light client's tests and benchmark: every height's state
//! (or those asked for), the certificates its blocks carried, and a [`Source`] that
//! serves them honestly or tells one of the lies a node could tell.

use agora_core::block::{Block, BlockHeader, EntryPayload};
use agora_core::encoding::Canonical;
use agora_core::light::{CertifiedRoot, ProvedValue, Source};
use agora_core::state::StateKey;
use agora_core::vectors::VectorFile;
use agora_core::{Certificate, ChainId, Hash32, Ledger};
use std::collections::BTreeMap;

/// What a lying node does to its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lie {
    /// Serves a value changed in its last byte (a forged balance), with the honest proof.
    Value,
    /// Serves a certified root that is not the one signed.
    Root,
    /// Serves certificates with one signature's bytes changed.
    Signature,
    /// Serves certificates cut down to fewer than half their signers.
    Underweight,
    /// Serves certificates that say they are from another chain.
    OtherChain,
}

impl Lie {
    /// Every lie with its name (`AGORA_INJECT_LIE` of a test build of `agora-node`).
    pub const ALL: [(&'static str, Lie); 5] = [
        ("value", Lie::Value),
        ("root", Lie::Root),
        ("signature", Lie::Signature),
        ("underweight", Lie::Underweight),
        ("other-chain", Lie::OtherChain),
    ];

    /// The lie named `name`.
    pub fn named(name: &str) -> Option<Lie> {
        Lie::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, lie)| *lie)
    }
}

/// Heights of a replayed chain: their ledgers (as kept) and the certificates for them.
pub struct MemoryChain {
    chain_id: ChainId,
    ledgers: BTreeMap<u64, Ledger>,
    certificates: BTreeMap<u64, Certificate>,
    headers: BTreeMap<u64, BlockHeader>,
}

impl MemoryChain {
    /// Replays `file`, keeping the ledger after every height `keep` accepts (the newest
    /// height is always kept).
    pub fn replay(file: &VectorFile, keep: impl Fn(u64) -> bool) -> MemoryChain {
        let mut ledger = Ledger::from_genesis(&file.genesis);
        let mut chain = MemoryChain {
            chain_id: ledger.chain_id(),
            ledgers: BTreeMap::new(),
            certificates: BTreeMap::new(),
            headers: BTreeMap::new(),
        };
        let last = file.entries.last().map_or(0, |e| e.entry.index);
        for vector in &file.entries {
            let outcome = ledger.apply(&vector.entry);
            assert!(outcome.is_ok(), "the vector replays");
            if let EntryPayload::Block(bytes) = &vector.entry.payload {
                let block = Block::from_canonical_bytes(bytes).expect("a vector's block decodes");
                for certificate in block.certificates {
                    chain.certificates.insert(certificate.height, certificate);
                }
                chain.headers.insert(block.header.height, block.header);
            }
            let height = ledger.height();
            if keep(height) || height == last {
                chain.ledgers.insert(height, ledger.clone());
            }
        }
        chain
    }

    /// The chain.
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// The ledger after `height`, if kept.
    pub fn ledger(&self, height: u64) -> Option<&Ledger> {
        self.ledgers.get(&height)
    }

    /// The header of the block at `height`, if that height is a block.
    pub fn header(&self, height: u64) -> Option<&BlockHeader> {
        self.headers.get(&height)
    }

    /// Every certified height whose state is kept.
    pub fn certified_heights(&self) -> impl Iterator<Item = u64> + '_ {
        self.certificates
            .keys()
            .copied()
            .filter(|h| self.ledgers.contains_key(h))
    }

    /// An honest source over this chain, or one telling `lie`.
    pub fn source(&self, lie: Option<Lie>) -> MemorySource<'_> {
        MemorySource {
            chain: self,
            lie,
            answers: 0,
            bytes: 0,
        }
    }

    fn certified(&self, height: u64) -> CertifiedRoot {
        CertifiedRoot {
            chain_id: self.chain_id,
            height,
            state_root: self.ledgers[&height].state_root(),
            certificate: self.certificates[&height].clone(),
        }
    }
}

/// Serves a [`MemoryChain`] to a light client, counting answers and their canonical bytes.
pub struct MemorySource<'a> {
    chain: &'a MemoryChain,
    lie: Option<Lie>,
    /// Answers given.
    pub answers: u64,
    /// Canonical bytes of those answers (keys, values, proofs, roots, certificates).
    pub bytes: u64,
}

impl MemorySource<'_> {
    fn serve(&mut self, certified: CertifiedRoot) -> CertifiedRoot {
        self.answers += 1;
        self.bytes += 32
            + 8
            + 32
            + borsh::to_vec(&certified.certificate)
                .expect("in memory")
                .len() as u64;
        let mut served = certified;
        match self.lie {
            Some(Lie::Root) => served.state_root = Hash32([0x5a; 32]),
            Some(Lie::Signature) => {
                if let Some(first) = served.certificate.signatures.first_mut() {
                    let mut bytes = first.signature.as_bytes().to_vec();
                    bytes[0] ^= 1;
                    first.signature = agora_core::Signature::new(first.signature.kind(), bytes)
                        .expect("same length");
                }
            }
            Some(Lie::Underweight) => {
                let keep = served.certificate.signatures.len().saturating_sub(1) / 2;
                served.certificate.signatures.truncate(keep);
            }
            Some(Lie::OtherChain) => served.chain_id = Hash32([0x0c; 32]),
            Some(Lie::Value) | None => {}
        }
        served
    }
}

impl Source for MemorySource<'_> {
    fn latest_certified(&mut self) -> Result<Option<CertifiedRoot>, String> {
        let newest = self.chain.certified_heights().last();
        Ok(newest.map(|h| {
            let certified = self.chain.certified(h);
            self.serve(certified)
        }))
    }

    fn certified_from(&mut self, from: u64) -> Result<Option<CertifiedRoot>, String> {
        let found = self.chain.certified_heights().find(|&h| h >= from);
        Ok(found.map(|h| {
            let certified = self.chain.certified(h);
            self.serve(certified)
        }))
    }

    fn prove(&mut self, key: &StateKey, height: u64) -> Result<ProvedValue, String> {
        let ledger = self
            .chain
            .ledger(height)
            .ok_or_else(|| format!("height {height} is not kept"))?;
        let (mut value, proof) = ledger
            .prove(key)
            .ok_or_else(|| format!("{key:?} is not in the state at {height}"))?;
        self.answers += 1;
        self.bytes += (key.to_bytes().len() + value.len() + 32 * proof.siblings.len() + 32) as u64;
        if self.lie == Some(Lie::Value) && *key != StateKey::Committee {
            if let Some(last) = value.last_mut() {
                *last ^= 1;
            }
        }
        Ok(ProvedValue {
            value,
            proof,
            state_root: ledger.state_root(),
        })
    }
}
