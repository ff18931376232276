//! The SQLite log store: entries made durable per second (WAL, `synchronous=FULL`, one
//! transaction and one fsync per `save`), one entry per save against many (group commit).
//!
//! Run: `cargo bench -p agora-node --bench storage`

use agora_consensus::raft::{EntryData, LogEntry};
use agora_consensus::storage::LogStore;
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
                            data: EntryData::Normal(vec![7; payload_bytes]),
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = durable_appends
}
criterion_main!(benches);
