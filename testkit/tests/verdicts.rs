//! Signature verdicts reached before apply (admission, entry arrival) change nothing that
//! apply decides: every vector applies to the same roots, receipts and events with honest
//! verdicts as without; and apply really uses a verdict instead of verifying again.

use agora_core::block::{Block, EntryPayload};
use agora_core::encoding::Canonical;
use agora_core::tx::tx_hash;
use agora_core::tx_root::tx_ids;
use agora_core::{AccountId, Hash32, Ledger, SignatureVerdicts, SignedTransaction, TxStatus};
use std::cell::Cell;
use std::collections::BTreeMap;

/// Verdicts reached honestly beforehand, as a node's cache holds them.
struct Honest {
    verdicts: BTreeMap<Hash32, bool>,
    consulted: Cell<usize>,
}

impl Honest {
    /// A cache holding one verdict.
    fn one(tx: Hash32, ok: bool) -> Honest {
        Honest {
            verdicts: BTreeMap::from([(tx, ok)]),
            consulted: Cell::new(0),
        }
    }
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

/// A verdict is keyed by the hash of the transaction's signed bytes — the signature
/// included — and its signer, so a copy of a transaction whose signature was tampered with
/// never finds the genuine one's verdict: with the genuine verdict (valid) cached, the
/// forged copy in a block is verified at apply and fails exactly as without a cache, while
/// the genuine transaction in its place applies on the cached verdict.
#[test]
fn a_tampered_signature_never_borrows_the_genuine_verdict() {
    use agora_core::tx::Action;
    use agora_core::{Amount, KeyKind, Params, TxError};
    use agora_testkit::vectors::Scenario;

    // A scenario whose member 0 has signed the genuine transfer (deterministic signing:
    // the same bytes each time), its nonce to be used by the block that follows.
    let signed_once = || {
        let mut s = Scenario::new(
            "forged",
            "a tampered signature",
            &[KeyKind::MlDsa65],
            Params::default(),
        );
        let transfer = Action::Transfer {
            to: AccountId(Hash32([7; 32])),
            amount: Amount(5),
        };
        let genuine = s.sign(0, transfer);
        s.forget_pending();
        (s, genuine)
    };
    let (mut s, genuine) = signed_once();
    // The signature is the last field: flip its last byte.
    let mut forged = genuine.clone();
    *forged.last_mut().unwrap() ^= 1;
    let parsed = SignedTransaction::from_canonical_bytes(&forged).expect("still well formed");
    let original = SignedTransaction::from_canonical_bytes(&genuine).unwrap();
    assert_eq!(
        parsed.tx, original.tx,
        "the same transaction, another signature"
    );
    let (genuine_hash, forged_hash) = (tx_hash(&genuine), tx_hash(&forged));
    assert_ne!(
        genuine_hash, forged_hash,
        "the cache key covers the signature"
    );

    let before = s.ledger().clone();
    let plain = s.block(0, "the forged copy", vec![forged]);
    assert_eq!(
        plain.receipts[0].status,
        TxStatus::Failed(TxError::BadSignature)
    );
    let file = s.finish();
    let forged_entry = &file.entries.last().unwrap().entry;
    // A cache that holds the genuine transaction's verdict, and answers nothing else.
    let genuine_only = Honest::one(genuine_hash, true);
    let cached = before
        .clone()
        .apply_with(forged_entry, &genuine_only)
        .unwrap();
    assert_eq!(
        cached, plain,
        "same bytes, same outcome, with or without the cache"
    );
    assert_eq!(
        genuine_only.consulted.get(),
        1,
        "apply asked, and found no verdict"
    );

    // The genuine transaction in the same block position applies on its cached verdict,
    // looked up under its own hash: a cache claiming that one bad makes it fail.
    // (The same scenario again, so the same chain.)
    let (mut s, _) = signed_once();
    let applied = s.block(0, "the genuine transaction", vec![genuine.clone()]);
    assert_eq!(applied.receipts[0].status, TxStatus::Applied);
    let genuine_file = s.finish();
    let genuine_entry = &genuine_file.entries.last().unwrap().entry;
    let with_verdict = before
        .clone()
        .apply_with(genuine_entry, &genuine_only)
        .unwrap();
    assert_eq!(with_verdict, applied);
    let genuine_is_bad = Honest::one(genuine_hash, false);
    let lied_to = before
        .clone()
        .apply_with(genuine_entry, &genuine_is_bad)
        .unwrap();
    assert_eq!(
        lied_to.receipts[0].status,
        TxStatus::Failed(TxError::BadSignature)
    );
}

/// Transaction ids a node hashed before apply (when it built the block, or when its entry
/// arrived), handed to apply by index and term.
struct KnownIds {
    ids: BTreeMap<(u64, u64), Vec<Hash32>>,
    asked: Cell<usize>,
}

impl SignatureVerdicts for KnownIds {
    fn verdict(&self, _: &Hash32, _: &AccountId) -> Option<bool> {
        None
    }

    fn tx_ids(&self, index: u64, term: u64) -> Option<&[Hash32]> {
        self.asked.set(self.asked.get() + 1);
        self.ids.get(&(index, term)).map(Vec::as_slice)
    }
}

/// Apply asks for the ids it knows instead of hashing every transaction again, and ids
/// cannot change what it decides: with the true ids, with every id off by one bit, with the
/// ids in the wrong order or one missing, every vector applies to the same outcome as
/// without (ids that do not lead to the header's transaction root are ignored and the
/// bytes hashed).
#[test]
fn known_transaction_ids_change_no_outcome() {
    type Tamper = fn(Vec<Hash32>) -> Vec<Hash32>;
    let tampers: [(&str, Tamper); 4] = [
        ("true ids", |ids| ids),
        ("a bit off", |ids| {
            ids.into_iter()
                .map(|mut id| {
                    id.0[31] ^= 1;
                    id
                })
                .collect()
        }),
        ("reversed", |mut ids| {
            ids.reverse();
            ids
        }),
        ("one missing", |mut ids| {
            ids.pop();
            ids
        }),
    ];
    let mut blocks_with_txs = 0;
    for (name, tamper) in tampers {
        let mut asked = 0;
        for file in agora_testkit::vectors::generate_all() {
            let genesis = file.genesis.clone().normalized().unwrap();
            let mut plain = Ledger::from_genesis(&genesis);
            let mut known = Ledger::from_genesis(&genesis);
            for vector in &file.entries {
                let entry = &vector.entry;
                let txs = block_txs(&entry.payload);
                if name == "true ids" && txs.len() > 1 {
                    blocks_with_txs += 1;
                }
                let ids = tx_ids(&txs);
                let provider = KnownIds {
                    ids: BTreeMap::from([((entry.index, entry.term), tamper(ids))]),
                    asked: Cell::new(0),
                };
                let a = plain.apply(entry);
                let b = known.apply_with(entry, &provider);
                assert_eq!(a, b, "{name}: {} at {}", file.name, entry.index);
                assert_eq!(plain.state_root(), known.state_root());
                asked += provider.asked.get();
            }
        }
        assert!(asked > 50, "{name}: apply asked for known ids ({asked})");
    }
    assert!(
        blocks_with_txs > 10,
        "the vectors have blocks of several transactions"
    );
}
