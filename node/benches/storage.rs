//! The SQLite log store: entries made durable per second (WAL, `synchronous=FULL`, one
//! transaction and one fsync per `save`), one entry per save against many (group commit).
//!
//! `sqlite_archive`: one applied height archived (its block, receipts, events and traces,
//! and a transaction-index row per receipt), as the driver writes it after apply; without
//! the receipts (and so the index) and events for the cost they add.
//!
//! Run: `cargo bench -p agora-node --bench storage`

use agora_consensus::raft::{EntryData, LogEntry};
use agora_consensus::replica::Write;
use agora_consensus::storage::LogStore;
use agora_core::{AccountId, Amount, Event, Hash32, Receipt, TxStatus, TxTrace};
use agora_node::sqlite::SqliteStore;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn durable_appends(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("agora-bench-storage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut group = c.benchmark_group("sqlite_save");
    for (per_save, payload_bytes) in [(1usize, 256usize), (100, 256), (1_000, 256), (100, 4096)] {
        let path = dir.join(format!("bench-{per_save}-{payload_bytes}.db"));
        let mut store = runtime.block_on(SqliteStore::open(&path)).unwrap();
        let mut next = 1u64;
        group.throughput(Throughput::Elements(per_save as u64));
        group.bench_function(
            BenchmarkId::new(format!("entries_{per_save}"), format!("{payload_bytes}B")),
            |b| {
                b.iter(|| {
                    let entries: Vec<LogEntry> = (0..per_save as u64)
                        .map(|i| LogEntry {
                            index: next + i,
                            term: 1,
                            data: EntryData::Normal(vec![7; payload_bytes].into()),
                        })
                        .collect();
                    next += per_save as u64;
                    runtime.block_on(store.save(None, None, &entries)).unwrap();
                })
            },
        );
        runtime.block_on(store.close());
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A height of `txs` transfers (ML-DSA-65-sized block bytes); with `receipts`, one receipt
/// each (and so one index row); with `events`, one event and one trace each.
fn height(index: u64, txs: usize, receipts: bool, events: bool) -> Write {
    let account = |i: usize| AccountId(Hash32([(i % 251) as u8; 32]));
    let each = |on: bool| if on { txs } else { 0 };
    Write::Archive {
        entry: LogEntry {
            index,
            term: 1,
            data: EntryData::Normal(vec![7; txs * 3_400].into()),
        },
        receipts: (0..each(receipts))
            .map(|i| Receipt {
                tx_hash: Hash32(
                    *blake3::hash(&[index.to_le_bytes(), (i as u64).to_le_bytes()].concat())
                        .as_bytes(),
                ),
                status: TxStatus::Applied,
                fee: Amount(10),
            })
            .collect(),
        events: (0..each(events))
            .map(|i| Event::Transferred {
                from: account(i),
                to: account(i + 1),
                amount: Amount(1_000_000),
            })
            .collect(),
        traces: (0..each(events))
            .map(|i| TxTrace {
                sender: Some(account(i)),
                events: 1,
            })
            .collect(),
        state_root: Hash32([1; 32]),
    }
}

fn archived_heights(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("agora-bench-archive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut group = c.benchmark_group("sqlite_archive");
    const TXS: usize = 256;
    for (name, receipts, events) in [
        ("block_only", false, false),
        ("receipts_and_index", true, false),
        ("receipts_index_events", true, true),
    ] {
        let mut store = runtime
            .block_on(SqliteStore::open(&dir.join(format!("{name}.db"))))
            .unwrap();
        let mut next = 1u64;
        group.throughput(Throughput::Elements(TXS as u64));
        group.bench_function(BenchmarkId::new(name, format!("{TXS}_txs")), |b| {
            b.iter(|| {
                let write = height(next, TXS, receipts, events);
                next += 1;
                runtime.block_on(store.write(&[write])).unwrap();
            })
        });
        runtime.block_on(store.close());
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = durable_appends, archived_heights
}
criterion_main!(benches);
