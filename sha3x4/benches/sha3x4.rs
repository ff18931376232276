//! SHA3-256 of 1,000 state-tree-sized messages (78 bytes: a tag and two 32-byte hashes),
//! one by one with `sha3` and four at a time where the CPU allows (numbers in
//! BENCHMARKS.md). Run: `cargo bench -p agora-sha3x4`

use agora_sha3x4::Messages;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn hashes(c: &mut Criterion) {
    let mut messages = Messages::default();
    for i in 0u32..1_000 {
        let mut m = [0u8; 78];
        m[..4].copy_from_slice(&i.to_le_bytes());
        messages.push([m.as_slice()]);
    }
    let mut group = c.benchmark_group("sha3_256");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("one_by_one/1000x78B", |b| {
        b.iter(|| messages.digests_one_by_one())
    });
    group.bench_function("batched/1000x78B", |b| b.iter(|| messages.digests()));
    group.finish();
}

criterion_group!(benches, hashes);
criterion_main!(benches);
