//! Signature verdicts reached before apply (admission, entry arrival) change nothing that
//! apply decides: every vector applies to the same roots, receipts and events with honest
//! verdicts as without; and apply really uses a verdict instead of verifying again.

use agora_core::block::{Block, EntryPayload};
use agora_core::encoding::Canonical;
use agora_core::tx::tx_hash;
use agora_core::{AccountId, Hash32, Ledger, SignatureVerdicts, SignedTransaction, TxStatus};
use std::cell::Cell;
use std::collections::BTreeMap;

/// Verdicts reached honestly beforehand, as a node's cache holds them.
struct Honest {
    verdicts: BTreeMap<Hash32, bool>,
    consulted: Cell<usize>,
}

impl SignatureVerdicts for Honest {
    fn verdict(&self, tx: &Hash32, _: &AccountId) -> Option<bool> {
        self.consulted.set(self.consulted.get() + 1);
        self.verdicts.get(tx).copied()
    }
}

/// Claims every signature is bad: shows apply takes the verdict instead of verifying.
struct AllBad;

impl SignatureVerdicts for AllBad {
    fn verdict(&self, _: &Hash32, _: &AccountId) -> Option<bool> {
        Some(false)
    }
}

fn block_txs(payload: &EntryPayload) -> Vec<Vec<u8>> {
    match payload {
        EntryPayload::Block(bytes) => Block::from_canonical_bytes(bytes)
            .map(|b| b.txs)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[test]
fn honest_verdicts_change_no_outcome_and_are_used() {
    let mut consulted = 0;
    let mut overridden = 0;
    for file in agora_testkit::vectors::generate_all() {
        let genesis = file.genesis.clone().normalized().unwrap();
        let mut plain = Ledger::from_genesis(&genesis);
        let mut cached = Ledger::from_genesis(&genesis);
        for vector in &file.entries {
            // The verdicts a node would have reached at admission, against its state then.
            let mut verdicts = BTreeMap::new();
            for bytes in block_txs(&vector.entry.payload) {
                if let Ok(signed) = SignedTransaction::from_canonical_bytes(&bytes) {
                    if let Some(key) = cached.signer_key(&signed) {
                        verdicts.insert(tx_hash(&bytes), signed.signature_verifies(key));
                    }
                }
            }
            let honest = Honest {
                verdicts,
                consulted: Cell::new(0),
            };
            let lied_to = cached.clone().apply_with(&vector.entry, &AllBad);
            let a = plain.apply(&vector.entry).unwrap();
            let b = cached.apply_with(&vector.entry, &honest).unwrap();
            assert_eq!(a, b, "{} at {}", file.name, vector.entry.index);
            assert_eq!(plain.state_root(), cached.state_root());
            consulted += honest.consulted.get();
            if let Ok(lied) = lied_to {
                let applied = |o: &agora_core::Outcome| {
                    o.receipts
                        .iter()
                        .filter(|r| r.status == TxStatus::Applied)
                        .count()
                };
                if applied(&lied) < applied(&a) {
                    overridden += 1;
                }
            }
        }
    }
    assert!(consulted > 50, "apply asked for verdicts ({consulted})");
    assert!(
        overridden > 10,
        "a verdict replaces verification ({overridden})"
    );
}
