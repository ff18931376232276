//! The light client's benchmark (numbers in BENCHMARKS.md):
//! - `light/accept`: certified roots accepted per second, each a commit certificate (three
//!   validators' ML-DSA signatures) checked under the trusted keys and by the ledger's
//!   rules, plus the `Committee` leaf's Merkle proof;
//! - a report, printed once: what a light client downloads to verify a balance at height
//!   10,000 of a chain whose validator set changed once (ML-DSA-65 validators), against
//!   what following every certified height would cost.
//!
//! Run: `cargo bench -p agora-testkit --bench light_client`

use agora_core::encoding::Canonical;
use agora_core::light::{LightClient, Source};
use agora_core::state::StateKey;
use agora_core::{Block, EntryPayload, KeyKind};
use agora_testkit::light::MemoryChain;
use agora_testkit::vectors::certified_chain;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Instant;

const HEIGHT: u64 = 10_000;
const CHANGE_AT: u64 = 5_000;

fn download_report() {
    let started = Instant::now();
    let file = certified_chain(KeyKind::MlDsa65, HEIGHT, CHANGE_AT);
    let chain = MemoryChain::replay(&file, |h| h + 16 >= HEIGHT);
    let built = started.elapsed();
    let member = StateKey::Account(file.genesis.accounts[0].account);
    let mut client = LightClient::from_genesis(&file.genesis);
    let mut source = chain.source(None);
    let started = Instant::now();
    let verified = client
        .verified_value(&mut source, &member)
        .expect("an honest chain");
    let took = started.elapsed();
    let certificate_bytes: u64 = file
        .entries
        .iter()
        .filter_map(|e| match &e.entry.payload {
            EntryPayload::Block(bytes) => {
                Some(Block::from_canonical_bytes(bytes).expect("decodes"))
            }
            _ => None,
        })
        .flat_map(|block| block.certificates)
        .map(|c| borsh::to_vec(&c).expect("in memory").len() as u64 + 32 + 8)
        .sum();
    println!(
        "light client, balance at height {} (ML-DSA-65 validators, a fourth added by governance near height {CHANGE_AT}, weights changing every epoch):",
        verified.height,
    );
    println!(
        "  {} certificate(s) checked, {} bisection step(s), {} answers, {} bytes (canonical), {:.1} ms",
        client.certificates_checked,
        client.bisection_steps,
        source.answers,
        source.bytes,
        took.as_secs_f64() * 1e3
    );
    println!(
        "  following every certified height instead: {certificate_bytes} bytes of certificates and roots alone; chain built and replayed in {:.1} s",
        built.as_secs_f64()
    );
}

fn accept(c: &mut Criterion) {
    download_report();
    let mut group = c.benchmark_group("light/accept");
    group.throughput(Throughput::Elements(1));
    for kind in [KeyKind::MlDsa44, KeyKind::MlDsa65] {
        let file = certified_chain(kind, 40, 20);
        let chain = MemoryChain::replay(&file, |_| true);
        let mut source = chain.source(None);
        let target = source.latest_certified().unwrap().expect("certified");
        let committee = source.prove(&StateKey::Committee, target.height).unwrap();
        let genesis = LightClient::from_genesis(&file.genesis);
        group.bench_with_input(BenchmarkId::from_parameter(kind.name()), &(), |b, _| {
            b.iter(|| {
                let mut client = genesis.clone();
                client.accept(&target, &committee).expect("accepted");
                client
            })
        });
    }
    group.finish();
}

criterion_group!(benches, accept);
criterion_main!(benches);
