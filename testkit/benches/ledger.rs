//! Ledger benchmarks (numbers in BENCHMARKS.md):
//! - `apply`: transfers per second through `apply_prepared` (signatures, decoding and the
//!   transaction root checked ahead by `prepare`), and through the whole `apply`;
//! - `verify`: ML-DSA verifications per second for each parameter set;
//! - `state_root`: 1,000 changed keys (one batch, as a block's) then a new root, on trees of
//!   10k, 100k and 1M leaves;
//! - `sha3x4` (its own crate) times the batched hashing alone.
//!
//! Run: `cargo bench -p agora-core --bench ledger`

use agora_core::block::{Block, Entry, EntryPayload};
use agora_core::crypto::{KeyKind, Purpose};
use agora_core::encoding::Canonical;
use agora_core::genesis::{Genesis, GenesisAccount, GenesisValidator};
use agora_core::state_tree::StateTree;
use agora_core::tx::Action;
use agora_core::{AccountId, Amount, Hash32, Ledger, Params};
use agora_testkit::vectors::{seeded_key, Scenario};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

const SENDERS: usize = 1_000;
const ACCOUNTS: usize = 10_000;
const BLOCK_TXS: usize = 1_000;

/// A ledger with ACCOUNTS funded accounts, SENDERS of which have registered keys, and the
/// next block: BLOCK_TXS transfers from distinct senders to pseudo-random accounts.
fn transfer_fixture(kind: KeyKind) -> (Ledger, Entry) {
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| seeded_key(kind, &format!("bench-{i}")))
        .collect();
    let validator = seeded_key(KeyKind::MlDsa44, "bench-validator");
    let mut accounts: Vec<GenesisAccount> = senders
        .iter()
        .map(|k| GenesisAccount {
            account: AccountId::from_public_key(k.public_key()),
            balance: Amount(1 << 40),
            staked: Amount::ZERO,
        })
        .collect();
    for i in SENDERS..ACCOUNTS {
        accounts.push(GenesisAccount {
            account: AccountId(agora_core::hash::tagged_hash(
                b"bench",
                &[&(i as u64).to_le_bytes()],
            )),
            balance: Amount(1),
            staked: Amount::ZERO,
        });
    }
    let genesis = Genesis {
        witnesses: vec![],
        chain_name: "bench".into(),
        params: Params {
            max_block_txs: BLOCK_TXS as u32,
            ..Params::default()
        },
        accounts,
        validators: vec![GenesisValidator {
            public_key: validator.public_key().clone(),
            peer: vec![],
            base_reputation: 1,
        }],
        treasury: Amount::ZERO,
    }
    .normalized()
    .unwrap();
    let targets: Vec<AccountId> = genesis.accounts.iter().map(|a| a.account).collect();
    let mut s = Scenario::with_genesis("bench", "", genesis, senders.clone(), vec![validator]);
    // Block 1 registers every sender's key.
    let txs = (0..SENDERS)
        .map(|i| {
            s.sign(
                i,
                Action::Transfer {
                    to: targets[i],
                    amount: Amount(1),
                },
            )
        })
        .collect();
    s.block(0, "", txs);
    let txs: Vec<Vec<u8>> = (0..BLOCK_TXS)
        .map(|i| {
            let to = targets[(i * 7919 + 13) % targets.len()];
            s.sign(
                i % SENDERS,
                Action::Transfer {
                    to,
                    amount: Amount(5),
                },
            )
        })
        .collect();
    let ledger = s.ledger().clone();
    let block = Block::build(
        ledger.chain_id(),
        ledger.height() + 1,
        &s.validators[0],
        ledger.state().globals.last_block_hash,
        ledger.height(),
        ledger.state_root(),
        txs,
        vec![],
        [0; 32],
    );
    let entry = Entry {
        index: ledger.height() + 1,
        term: 1,
        payload: EntryPayload::Block(block.to_canonical_bytes()),
    };
    (ledger, entry)
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BLOCK_TXS as u64));
    for kind in [KeyKind::MlDsa44, KeyKind::MlDsa65] {
        let (ledger, entry) = transfer_fixture(kind);
        let prepared = ledger.prepare(&entry).unwrap();
        // Sanity: every transfer applies.
        let outcome = ledger.clone().apply_prepared(prepared.clone()).unwrap();
        assert!(outcome
            .receipts
            .iter()
            .all(|r| r.status == agora_core::TxStatus::Applied));
        group.bench_function(
            BenchmarkId::new("transfers_preverified", kind.name()),
            |b| {
                b.iter_batched(
                    || (ledger.clone(), prepared.clone()),
                    // The ledger is returned, not dropped here: criterion drops a
                    // routine's output outside the timed section, and freeing a whole
                    // state tree is not part of applying a block.
                    |(mut l, p)| {
                        let outcome = l.apply_prepared(p).unwrap();
                        (l, outcome)
                    },
                    BatchSize::LargeInput,
                )
            },
        );
        group.bench_function(BenchmarkId::new("transfers_full", kind.name()), |b| {
            b.iter_batched(
                || ledger.clone(),
                |mut l| {
                    let outcome = l.apply(&entry).unwrap();
                    (l, outcome)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    for kind in KeyKind::ALL {
        let key = seeded_key(kind, "verify");
        let message = vec![7u8; 200];
        let signature = key.sign(Purpose::Transaction, &message, [1; 32]);
        group.bench_function(kind.name(), |b| {
            b.iter(|| {
                key.public_key()
                    .verify(Purpose::Transaction, &message, &signature)
                    .unwrap()
            })
        });
    }
    group.finish();
    // One node's verification throughput on 1 and 2 threads (a node checks signatures on
    // one thread per core): 64 ML-DSA-65 checks split over the threads.
    let mut group = c.benchmark_group("verify_threads_ml-dsa-65");
    const CHECKS: usize = 64;
    group.throughput(Throughput::Elements(CHECKS as u64));
    let key = seeded_key(KeyKind::MlDsa65, "verify");
    let message = vec![7u8; 200];
    let signature = key.sign(Purpose::Transaction, &message, [1; 32]);
    for threads in [1usize, 2] {
        group.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter(|| {
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(|| {
                            for _ in 0..CHECKS / threads {
                                key.public_key()
                                    .verify(Purpose::Transaction, &message, &signature)
                                    .unwrap();
                            }
                        });
                    }
                })
            })
        });
    }
    group.finish();
}

fn state_root(c: &mut Criterion) {
    let mut group = c.benchmark_group("state_root_1000_changes");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1_000));
    for size in [10_000u64, 100_000, 1_000_000] {
        let mut tree = StateTree::new();
        let keys: Vec<[u8; 8]> = (0..size).map(u64::to_le_bytes).collect();
        let entries: Vec<(&[u8], &[u8])> = keys
            .iter()
            .map(|k| (k.as_slice(), [0u8; 64].as_slice()))
            .collect();
        tree.insert_many(&entries);
        tree.root();
        let mut round = 0u64;
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                round += 1;
                let mut value = [0u8; 64];
                value[..8].copy_from_slice(&round.to_le_bytes());
                // Distinct keys (7,919 is prime to every size), set in one batch as the
                // ledger sets a block's changes.
                let keys: Vec<[u8; 8]> = (0..1_000u64)
                    .map(|j| ((j * 7_919 + round * 104_729) % size).to_le_bytes())
                    .collect();
                let entries: Vec<(&[u8], &[u8])> = keys
                    .iter()
                    .map(|k| (k.as_slice(), value.as_slice()))
                    .collect();
                tree.insert_many(&entries);
                tree.root()
            })
        });
        assert_ne!(tree.root(), Hash32::ZERO);
    }
    group.finish();
}

criterion_group!(benches, apply, verify, state_root);
criterion_main!(benches);
