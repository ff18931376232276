//! SHA3-256 of 1,000 state-tree-sized messages (78 bytes: a tag and two 32-byte hashes) and
//! of 1,000 transaction-sized ones (3,409 bytes, an ML-DSA-65 transfer), one by one with
//! `sha3` and four at a time where the CPU allows (numbers in BENCHMARKS.md).
//! Run: `cargo bench -p agora-sha3x4`

use agora_sha3x4::Messages;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn hashes(c: &mut Criterion) {
    let mut group = c.benchmark_group("sha3_256");
    for size in [78usize, 3_409] {
        let mut messages = Messages::default();
        for i in 0u32..1_000 {
            let mut m = vec![0u8; size];
            m[..4].copy_from_slice(&i.to_le_bytes());
            messages.push([m.as_slice()]);
        }
        group.throughput(Throughput::Elements(messages.len() as u64));
        group.bench_function(format!("one_by_one/1000x{size}B"), |b| {
            b.iter(|| messages.digests_one_by_one())
        });
        group.bench_function(format!("batched/1000x{size}B"), |b| {
            b.iter(|| messages.digests())
        });
        // Each message on its own through `digest` (four lanes for a long one, alone).
        group.bench_function(format!("alone/1000x{size}B"), |b| {
            b.iter(|| {
                (0..messages.len())
                    .map(|i| agora_sha3x4::digest([messages.get(i)]))
                    .collect::<Vec<_>>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hashes);
criterion_main!(benches);
