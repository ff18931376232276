//! Properties of the ledger over random transaction sequences: supply is conserved (it
//! grows by exactly the proposer rewards), replay is deterministic, and a snapshot taken
//! anywhere restores to the same root and continues identically.

use agora_core::block::{Block, Entry, EntryPayload};
use agora_core::crypto::{KeyKind, SecretKey};
use agora_core::encoding::Canonical;
use agora_core::tx::{Action, ProposalKind, Sender, SignedTransaction, Transaction, VoteChoice};
use agora_core::vectors::VectorFile;
use agora_core::{AccountId, Amount, Ledger, Params};
use agora_testkit::vectors::{seeded_key, Scenario, MEMBER_FUNDS};
use proptest::prelude::*;
use std::sync::OnceLock;

const MEMBERS: usize = 4;

fn keys() -> &'static [SecretKey] {
    static KEYS: OnceLock<Vec<SecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..MEMBERS)
            .map(|i| seeded_key(KeyKind::MlDsa44, &format!("member-{i}")))
            .collect()
    })
}

#[derive(Clone, Debug)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: u128,
    },
    Stake {
        who: usize,
        amount: u128,
    },
    Unstake {
        who: usize,
        amount: u128,
    },
    ProposeSpend {
        who: usize,
        amount: u128,
    },
    Vote {
        who: usize,
        proposal: u64,
        choice: u8,
    },
    Garbage(Vec<u8>),
    StaleNonce {
        who: usize,
    },
    EndBlock,
    Noop,
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..MEMBERS;
    let amount = prop_oneof![0u128..2_000, Just(MEMBER_FUNDS * 2)];
    prop_oneof![
        6 => (who.clone(), who.clone(), amount.clone()).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        2 => (who.clone(), amount.clone()).prop_map(|(who, amount)| Op::Stake { who, amount }),
        2 => (who.clone(), amount.clone()).prop_map(|(who, amount)| Op::Unstake { who, amount }),
        1 => (who.clone(), 1u128..100_000).prop_map(|(who, amount)| Op::ProposeSpend { who, amount }),
        3 => (who.clone(), 0u64..4, 0u8..4).prop_map(|(who, proposal, choice)| Op::Vote { who, proposal, choice }),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Op::Garbage),
        1 => who.clone().prop_map(|who| Op::StaleNonce { who }),
        3 => Just(Op::EndBlock),
        1 => Just(Op::Noop),
    ]
}

/// Runs `ops` as blocks (checking supply after each) and returns the finished vector.
fn run(ops: &[Op]) -> VectorFile {
    let params = Params {
        voting_period_blocks: 3,
        unbonding_blocks: 5,
        epoch_blocks: 4,
        ..Params::default()
    };
    let mut s = Scenario::new("property", "random", &[KeyKind::MlDsa44; MEMBERS], params);
    let mut txs: Vec<Vec<u8>> = Vec::new();
    let mut proposer = 0;
    let genesis_supply = s.ledger().state().globals.total_supply.0;
    let mut blocks = 0u128;
    let member = |i: usize| AccountId::from_public_key(keys()[i].public_key());
    for op in ops.iter().chain(std::iter::once(&Op::EndBlock)) {
        let (signer, action) = match op {
            Op::Transfer { from, to, amount } => (
                *from,
                Action::Transfer {
                    to: member(*to),
                    amount: Amount(*amount),
                },
            ),
            Op::Stake { who, amount } => (
                *who,
                Action::Stake {
                    amount: Amount(*amount),
                },
            ),
            Op::Unstake { who, amount } => (
                *who,
                Action::Unstake {
                    amount: Amount(*amount),
                },
            ),
            Op::ProposeSpend { who, amount } => {
                let proposal = ProposalKind::TreasurySpend {
                    to: member((who + 1) % MEMBERS),
                    amount: Amount(*amount),
                };
                (
                    *who,
                    Action::Propose {
                        proposal,
                        deposit: Amount(1_000),
                    },
                )
            }
            Op::Vote {
                who,
                proposal,
                choice,
            } => {
                let choice = [
                    VoteChoice::Yes,
                    VoteChoice::No,
                    VoteChoice::Abstain,
                    VoteChoice::Veto,
                ][*choice as usize];
                (
                    *who,
                    Action::Vote {
                        proposal: *proposal,
                        choice,
                    },
                )
            }
            Op::Garbage(bytes) => {
                txs.push(bytes.clone());
                continue;
            }
            Op::StaleNonce { who } => {
                let tx = Transaction {
                    chain_id: s.ledger().chain_id(),
                    sender: Sender::Account(member(*who)),
                    nonce: 0,
                    action: Action::Stake { amount: Amount(1) },
                };
                txs.push(tx.sign(&keys()[*who], [6; 32]).to_canonical_bytes());
                continue;
            }
            Op::EndBlock | Op::Noop => {
                s.block(proposer, "", std::mem::take(&mut txs));
                proposer = (proposer + 1) % 3;
                blocks += 1;
                // Supply grows by exactly the proposer rewards; the scenario also checks
                // after every entry that all holdings sum to the supply.
                let reward = s.ledger().state().params.proposer_reward.0;
                assert_eq!(
                    s.ledger().state().globals.total_supply.0,
                    genesis_supply + blocks * reward
                );
                if matches!(op, Op::Noop) {
                    s.noop("");
                }
                continue;
            }
        };
        let key = keys()[signer].clone();
        let tx = s.next_tx(&key, action);
        // Hedged signing with varying randomness: receipts must not depend on it.
        let randomness = [(txs.len() as u8).wrapping_mul(31); 32];
        txs.push(tx.sign(&key, randomness).to_canonical_bytes());
    }
    s.finish()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Over random blocks: supply conserved (in `run`), a replay from genesis reaches every
    /// recorded root, and a snapshot taken at a random height restores to that height's
    /// root and then continues to the same roots.
    #[test]
    fn supply_is_conserved_and_replay_and_snapshots_agree(ops in prop::collection::vec(op(), 1..60), cut in any::<prop::sample::Index>()) {
        let vector = run(&ops);
        let mut replay = Ledger::from_genesis(&vector.genesis);
        let cut = cut.index(vector.entries.len());
        let mut restored: Option<Ledger> = None;
        for (i, recorded) in vector.entries.iter().enumerate() {
            let outcome = replay.apply(&recorded.entry).unwrap();
            prop_assert_eq!(outcome.state_root, recorded.expected.state_root);
            prop_assert_eq!(&outcome.receipts, &recorded.expected.receipts);
            if let Some(ledger) = restored.as_mut() {
                prop_assert_eq!(ledger.apply(&recorded.entry).unwrap().state_root, recorded.expected.state_root);
            }
            if i == cut {
                let bytes = replay.snapshot().to_canonical_bytes();
                let wrong = agora_core::Hash32([9; 32]);
                prop_assert!(Ledger::restore(&bytes, &wrong).is_err());
                let ledger = Ledger::restore(&bytes, &replay.state_root()).unwrap();
                prop_assert_eq!(ledger.state_root(), replay.state_root());
                restored = Some(ledger);
            }
        }
        prop_assert!(restored.is_some());
    }

    /// Canonical encoding: decode(encode(x)) == x, and bytes that decode at all are the
    /// encoding of what they decode to, so no other bytes decode to x.
    #[test]
    fn only_canonical_bytes_decode(amount in any::<u128>(), nonce in any::<u64>(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), extend in prop::option::of(any::<u8>())) {
        let key = &keys()[0];
        let tx = Transaction {
            chain_id: agora_core::Hash32([7; 32]),
            sender: Sender::Account(AccountId::from_public_key(key.public_key())),
            nonce,
            action: Action::Transfer { to: AccountId(agora_core::Hash32([8; 32])), amount: Amount(amount) },
        }
        .sign(key, [0; 32]);
        let bytes = tx.to_canonical_bytes();
        prop_assert_eq!(SignedTransaction::from_canonical_bytes(&bytes).unwrap(), tx.clone());
        let mut mutated = bytes.clone();
        for (index, value) in &flips {
            let i = index.index(mutated.len());
            mutated[i] = *value;
        }
        if let Some(byte) = extend {
            mutated.push(byte);
        }
        if let Ok(decoded) = SignedTransaction::from_canonical_bytes(&mutated) {
            prop_assert_eq!(decoded.to_canonical_bytes(), mutated.clone());
            prop_assert_eq!(decoded == tx, mutated == bytes);
        }
    }
}

#[test]
fn snapshot_of_other_bytes_is_refused() {
    let vector = run(&[Op::Stake { who: 0, amount: 5 }]);
    let mut ledger = Ledger::from_genesis(&vector.genesis);
    for e in &vector.entries {
        ledger.apply(&e.entry).unwrap();
    }
    let mut bytes = ledger.snapshot().to_canonical_bytes();
    bytes.push(0);
    assert!(Ledger::restore(&bytes, &ledger.state_root()).is_err());
    bytes.pop();
    let last = bytes.len() - 40;
    bytes[last] ^= 1;
    assert!(Ledger::restore(&bytes, &ledger.state_root()).is_err());
}

/// Block-level halts: each is refused with the reason, and the ledger is unchanged.
mod halts {
    use super::*;
    use agora_core::outcome::Halt;
    use agora_core::Hash32;

    struct Fixture {
        ledger: Ledger,
        validator: SecretKey,
    }

    fn fixture() -> Fixture {
        let s = Scenario::new("halts", "", &[KeyKind::MlDsa44; 1], Params::default());
        let validator = s.validators[0].clone();
        let genesis = s.finish().genesis;
        Fixture {
            ledger: Ledger::from_genesis(&genesis),
            validator,
        }
    }

    fn block_entry(f: &Fixture, edit: impl FnOnce(&mut Block), resign: bool) -> Entry {
        let l = &f.ledger;
        let mut block = Block::build(
            l.chain_id(),
            l.height() + 1,
            &f.validator,
            l.state().globals.last_block_hash,
            l.height(),
            l.state_root(),
            vec![b"tx".to_vec()],
            vec![],
            [0; 32],
        );
        edit(&mut block);
        if resign {
            block.signature = f.validator.sign_deterministic(
                agora_core::Purpose::Block,
                &borsh::to_vec(&block.header).unwrap(),
            );
        }
        Entry {
            index: l.height() + 1,
            term: 1,
            payload: EntryPayload::Block(block.to_canonical_bytes()),
        }
    }

    fn assert_halts(f: &mut Fixture, entry: Entry, expected: impl Fn(&Halt) -> bool) {
        let root = f.ledger.state_root();
        let height = f.ledger.height();
        let halt = f.ledger.apply(&entry).unwrap_err();
        assert!(expected(&halt), "unexpected halt: {halt}");
        assert_eq!(f.ledger.state_root(), root, "a halt changes nothing");
        assert_eq!(f.ledger.height(), height);
    }

    #[test]
    fn a_valid_block_applies() {
        let mut f = fixture();
        let entry = block_entry(&f, |_| {}, false);
        f.ledger.apply(&entry).unwrap();
    }

    #[test]
    fn the_checked_root_must_match_ours() {
        let mut f = fixture();
        let entry = block_entry(&f, |b| b.header.checked_state_root = Hash32([1; 32]), true);
        assert_halts(&mut f, entry, |h| {
            matches!(h, Halt::StateDivergence { height: 0, .. })
        });
    }

    #[test]
    fn a_bad_proposer_signature_halts() {
        let mut f = fixture();
        let entry = block_entry(&f, |b| b.header.checked_height = 0, false);
        let mut tampered = entry.clone();
        if let EntryPayload::Block(bytes) = &mut tampered.payload {
            let mut block = Block::from_canonical_bytes(bytes).unwrap();
            block.header.parent_hash = Hash32([3; 32]);
            *bytes = block.to_canonical_bytes();
        }
        assert_halts(
            &mut f,
            tampered,
            |h| matches!(h, Halt::InvalidBlock { reason, .. } if reason.contains("signature")),
        );
    }

    #[test]
    fn transactions_must_match_the_root() {
        let mut f = fixture();
        let entry = block_entry(&f, |b| b.txs.push(b"smuggled".to_vec()), false);
        assert_halts(
            &mut f,
            entry,
            |h| matches!(h, Halt::InvalidBlock { reason, .. } if reason.contains("transaction root")),
        );
    }

    #[test]
    fn parent_and_proposer_and_order_are_checked() {
        let mut f = fixture();
        let entry = block_entry(&f, |b| b.header.parent_hash = Hash32([4; 32]), true);
        assert_halts(
            &mut f,
            entry,
            |h| matches!(h, Halt::InvalidBlock { reason, .. } if reason.contains("parent")),
        );
        let stranger = seeded_key(KeyKind::MlDsa44, "stranger");
        let stranger_fixture = Fixture {
            ledger: f.ledger.clone(),
            validator: stranger,
        };
        let entry = block_entry(&stranger_fixture, |_| {}, false);
        assert_halts(
            &mut f,
            entry,
            |h| matches!(h, Halt::InvalidBlock { reason, .. } if reason.contains("not a validator")),
        );
        let mut entry = block_entry(&f, |_| {}, false);
        entry.index += 1;
        assert_halts(&mut f, entry, |h| {
            matches!(h, Halt::InvalidBlock { .. } | Halt::OutOfOrder { .. })
        });
        let entry = Entry {
            index: 5,
            term: 1,
            payload: EntryPayload::Noop,
        };
        assert_halts(&mut f, entry, |h| {
            matches!(h, Halt::OutOfOrder { height: 0, got: 5 })
        });
    }

    #[test]
    fn corrupt_block_bytes_halt() {
        let mut f = fixture();
        let entry = Entry {
            index: 1,
            term: 1,
            payload: EntryPayload::Block(vec![1, 2, 3]),
        };
        assert_halts(&mut f, entry, |h| {
            matches!(h, Halt::CorruptBlock { index: 1, .. })
        });
    }
}
