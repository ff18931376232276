//! The ledger's unit tests: weights, restore, and the rules not covered by the vectors.

use super::*;
use proptest::prelude::*;

/// The reputation arithmetic, stated in integers for independent implementations
/// (vectors/README.md): keep = floor(n * 2^64 / d); points' = floor(points * keep / 2^64).
fn reference_decay(points_bits: u128, numerator: u64, denominator: u64) -> u128 {
    let keep = ((numerator as u128) << 64) / denominator as u128;
    // points * keep / 2^64 without overflow: split points into high and low 64 bits.
    let (high, low) = (points_bits >> 64, points_bits & u64::MAX as u128);
    high * keep + ((low * keep) >> 64)
}

proptest! {
    #[test]
    fn fixed_point_decay_truncates_like_the_integer_reference(points in any::<u128>(), d in 1u64..10_000, n_share in 0u64..10_000) {
        let n = n_share % (d + 1);
        let keep = U64F64::from_num(n).checked_div(U64F64::from_num(d)).unwrap();
        prop_assert_eq!(keep.to_bits(), ((n as u128) << 64) / d as u128);
        let decayed = U64F64::from_bits(points).checked_mul(keep).unwrap();
        prop_assert_eq!(decayed.to_bits(), reference_decay(points, n, d));
    }
}

#[test]
fn no_validator_holds_half_the_consensus_weight_among_three_or_more() {
    assert_eq!(consensus_weights(&[210, 10, 10]), vec![19, 10, 10]);
    assert_eq!(consensus_weights(&[10, 10, 10]), vec![10, 10, 10]);
    assert_eq!(consensus_weights(&[5, 3, 2]), vec![4, 3, 2], "exactly half");
    assert_eq!(consensus_weights(&[1, 1, 1, 0]), vec![1, 1, 1, 0]);
    assert_eq!(
        consensus_weights(&[9, 1]),
        vec![9, 1],
        "two voters: as they are"
    );
    assert_eq!(
        consensus_weights(&[9, 0, 0]),
        vec![9, 0, 0],
        "learners do not count"
    );
    for weights in [[1u64 << 32, 1, 1, 7], [3, 1 << 32, 5, 1 << 31]] {
        let capped = consensus_weights(&weights);
        let total: u64 = capped.iter().sum();
        for (i, w) in capped.iter().enumerate() {
            assert!(2 * w < total, "{weights:?} -> {capped:?} at {i}");
        }
    }
    // Weights no valid state holds (a forged snapshot's) sum past u64: no overflow.
    assert_eq!(
        consensus_weights(&[u64::MAX, u64::MAX, 1]),
        vec![u64::MAX, u64::MAX, 1]
    );
    assert_eq!(consensus_weights(&[u64::MAX, 2, 1]), vec![2, 2, 1]);
}

/// A snapshot whose numbers no valid state holds is refused with the reason, before
/// anything is derived from it (the fuzzer's first finding: a validator weight near
/// u64::MAX overflowed the consensus-weight sum and panicked the restore).
#[test]
fn a_snapshot_with_impossible_numbers_is_refused_not_a_panic() {
    use crate::encoding::Canonical;
    let genesis = crate::Genesis {
        witnesses: vec![],
        chain_name: "restore".into(),
        params: crate::Params::default(),
        accounts: vec![],
        validators: (0..3u8)
            .map(|i| crate::genesis::GenesisValidator {
                public_key: crate::SecretKey::from_seed(crate::KeyKind::MlDsa44, [i; 32])
                    .public_key()
                    .clone(),
                peer: vec![i],
                base_reputation: 10,
            })
            .collect(),
        treasury: crate::Amount(100),
    }
    .normalized()
    .unwrap();
    let ledger = Ledger::from_genesis(&genesis);
    let root = ledger.state_root();
    let mut heavy = ledger.snapshot();
    for validator in heavy.state.validators.values_mut() {
        validator.weight = u64::MAX;
    }
    let error = Ledger::restore(&heavy.to_canonical_bytes(), &root).unwrap_err();
    assert!(
        matches!(&error, RestoreError::Invariant(reason) if reason.contains("above the limit")),
        "{error}"
    );
    let mut rich = ledger.snapshot();
    rich.state.globals.treasury = crate::Amount(u128::MAX);
    rich.state.accounts.insert(
        crate::AccountId(crate::Hash32([7; 32])),
        crate::state::Account {
            balance: crate::Amount(u128::MAX),
            ..Default::default()
        },
    );
    let error = Ledger::restore(&rich.to_canonical_bytes(), &root).unwrap_err();
    assert!(
        matches!(&error, RestoreError::Invariant(reason) if reason.contains("overflows")),
        "{error}"
    );
    // The fuzzer's second finding: recent roots other than one per height up to the
    // state's were accepted, a second byte form of the same ledger.
    let mut gapped = ledger.snapshot();
    gapped.recent_roots.clear();
    let error = Ledger::restore(&gapped.to_canonical_bytes(), &root).unwrap_err();
    assert!(
        matches!(&error, RestoreError::Decode(DecodeError::Invalid(reason)) if reason.contains("recent roots")),
        "{error}"
    );
    let mut ahead = ledger.snapshot();
    ahead.recent_roots.push((1, root));
    assert!(Ledger::restore(&ahead.to_canonical_bytes(), &root).is_err());
    // The third: the rule itself overflowed at a state height of u64::MAX.
    let mut last = ledger.snapshot();
    last.state.globals.height = u64::MAX;
    assert!(Ledger::restore(&last.to_canonical_bytes(), &root).is_err());
    assert!(Ledger::restore(&ledger.snapshot().to_canonical_bytes(), &root).is_ok());
}

#[test]
fn weight_is_base_plus_whole_points_capped() {
    assert_eq!(derive_weight(10, (5u128 << 64) | (1 << 63)), 15);
    assert_eq!(derive_weight(0, u128::MAX), MAX_VALIDATOR_WEIGHT);
}

fn key(i: u8) -> crate::PublicKey {
    crate::SecretKey::from_seed(crate::KeyKind::MlDsa44, [i; 32])
        .public_key()
        .clone()
}

fn genesis_with_witnesses(weights: &[u64]) -> crate::Genesis {
    crate::Genesis {
        witnesses: weights
            .iter()
            .enumerate()
            .map(|(i, w)| crate::genesis::GenesisWitness {
                public_key: key(100 + i as u8),
                peer: vec![100 + i as u8],
                weight: *w,
            })
            .collect(),
        chain_name: "witnesses".into(),
        params: crate::Params::default(),
        accounts: vec![],
        validators: (0..2u8)
            .map(|i| crate::genesis::GenesisValidator {
                public_key: key(i),
                peer: vec![i],
                base_reputation: 10,
            })
            .collect(),
        treasury: crate::Amount(100),
    }
}

/// A witness in the genesis: it moves the chain id and the state root (a leaf of its own),
/// joins the target configuration as a witness (not the committee that certifies), counts
/// in the weight cap, and survives a snapshot round trip; without witnesses the chain id is
/// the hash of the genesis bytes alone, as before witnesses existed.
#[test]
fn witnesses_in_the_genesis_join_the_configuration_but_not_the_committee() {
    use crate::encoding::Canonical;
    let plain = genesis_with_witnesses(&[]).normalized().unwrap();
    assert_eq!(
        plain.chain_id(),
        crate::hash::tagged_hash(
            crate::hash::tags::GENESIS,
            &[&borsh::to_vec(&plain).unwrap()]
        )
    );
    let genesis = genesis_with_witnesses(&[30]).normalized().unwrap();
    assert_ne!(genesis.chain_id(), plain.chain_id());
    let ledger = Ledger::from_genesis(&genesis);
    let witness = ValidatorId::from_public_key(&key(100));
    let target = ledger.target_config();
    assert_eq!(target.members.len(), 2);
    assert_eq!(target.witnesses.len(), 1);
    assert_eq!(target.witnesses[0].validator, witness);
    assert_eq!(
        target.witnesses[0].weight, 19,
        "capped as a validator would be: below the others' sum"
    );
    assert_eq!(ledger.state().committee.members, target.members);
    assert!(ledger.prove(&StateKey::Witness(witness)).is_some());
    assert_ne!(
        ledger.state_root(),
        Ledger::from_genesis(&plain).state_root()
    );
    let bytes = ledger.snapshot().to_canonical_bytes();
    let restored = Ledger::restore(&bytes, &ledger.state_root()).unwrap();
    assert_eq!(restored.state().witnesses, ledger.state().witnesses);
    assert_eq!(restored.target_config(), ledger.target_config());
    // A snapshot without witnesses carries no trailing map; an empty one written out is
    // a second byte form, refused.
    let plain_ledger = Ledger::from_genesis(&plain);
    let mut padded = plain_ledger.snapshot().to_canonical_bytes();
    padded.extend(0u32.to_le_bytes());
    assert!(Ledger::restore(&padded, &plain_ledger.state_root()).is_err());
}

/// What a genesis may not say about witnesses.
#[test]
fn bad_witnesses_are_refused_with_the_reason() {
    let mut zero = genesis_with_witnesses(&[0]);
    assert!(zero.clone().normalized().is_err());
    zero.witnesses[0].weight = MAX_VALIDATOR_WEIGHT + 1;
    assert!(zero.normalized().is_err());
    let mut twice = genesis_with_witnesses(&[1, 1]);
    twice.witnesses[1].public_key = key(100);
    assert!(matches!(
        twice.normalized(),
        Err(crate::genesis::GenesisError::Duplicate(_))
    ));
    let mut both = genesis_with_witnesses(&[1]);
    both.witnesses[0].public_key = key(0);
    let error = both.normalized().unwrap_err();
    assert!(
        error.to_string().contains("both a validator and a witness"),
        "{error}"
    );
}
