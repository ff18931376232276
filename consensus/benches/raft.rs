//! The Raft core alone: three cores in one process, messages handed over directly, no
//! storage, stand-in vote signatures. Measures committed-and-applied entries per second.
//!
//! Run: `cargo bench -p agora-consensus --bench raft`

use agora_consensus::sim::cluster::Cluster;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn commit_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("raft_commit");
    for (batch, payload_bytes) in [(1usize, 256usize), (100, 256), (100, 4096)] {
        let mut cluster = Cluster::with(&[1, 1, 1], |cfg| cfg.reputation_transfer = false);
        let leader = cluster.elect();
        let payload = vec![7u8; payload_bytes];
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(
            BenchmarkId::new(format!("batch_{batch}"), format!("{payload_bytes}B")),
            |b| {
                b.iter(|| {
                    for _ in 0..batch {
                        cluster.node(leader).propose(payload.clone()).unwrap();
                    }
                    cluster.settle();
                    let commit = cluster.node(leader).commit_index();
                    let applied: Vec<u64> = cluster
                        .nodes
                        .iter()
                        .flatten()
                        .map(|r| r.applied_index())
                        .collect();
                    assert!(
                        applied.iter().all(|a| *a == commit),
                        "commit {commit}, applied {applied:?}, last {}",
                        cluster.node(leader).last_index()
                    );
                    if commit % 4096 < batch as u64 {
                        cluster.compact_all();
                    }
                })
            },
        );
        cluster.compact_all();
    }
    group.finish();
}

/// Decoding a log entry that carries a block of about 240 KB (68 ML-DSA-65 transfers), as
/// a follower does for every append it is sent.
fn decode_block_entry(c: &mut Criterion) {
    use agora_consensus::raft::{EntryData, LogEntry};
    let payload: Vec<u8> = (0..240_000u32).map(|i| (i * 7) as u8).collect();
    let entry = LogEntry {
        index: 7,
        term: 2,
        data: EntryData::Normal(payload.into()),
    };
    let bytes = borsh::to_vec(&entry).unwrap();
    let mut group = c.benchmark_group("entry");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("decode_240kb_block", |b| {
        b.iter(|| borsh::from_slice::<LogEntry>(std::hint::black_box(&bytes)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, commit_throughput, decode_block_entry);
criterion_main!(benches);
