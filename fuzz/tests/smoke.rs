//! The CI fuzz run: every target on its seeds, on every committed regression input, and
//! on seeded mutations of the seeds (bit flips, byte changes, insertions, deletions,
//! truncations, duplicated spans, splices of two seeds). proptest draws and shrinks the
//! mutations; `PROPTEST_CASES` sets how many per target (default 2,000 here; a failure
//! prints the seed to replay and the smallest input found). The long, coverage-guided
//! run is AFL++ (`fuzz/README.md`).

use agora_fuzz::{run, seeds, Reached, Target};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::Path;

/// A position, taken modulo the length it indexes into.
type Pos = usize;

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(Pos, u8),
    SetByte(Pos, u8),
    Insert(Pos, Vec<u8>),
    Delete(Pos, usize),
    Truncate(Pos),
    Duplicate(Pos, usize),
    Splice(Pos, Pos, Pos),
    /// A little-endian integer written over four bytes: borsh lengths and tags.
    SetU32(Pos, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        Just(0x7fff_ffff),
        Just(1 << 20),
        any::<u32>()
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, bit)| Mutation::FlipBit(i, bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, bytes)| Mutation::Insert(i, bytes)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(other, at, from)| Mutation::Splice(other, at, from)),
        (any::<usize>(), interesting).prop_map(|(i, v)| Mutation::SetU32(i, v)),
    ]
}

fn apply(data: &mut Vec<u8>, mutation: &Mutation, pool: &[Vec<u8>]) {
    let at = |i: &Pos, len: usize| if len == 0 { 0 } else { i % len };
    match mutation {
        Mutation::FlipBit(i, bit) if !data.is_empty() => {
            let p = at(i, data.len());
            data[p] ^= 1 << bit;
        }
        Mutation::SetByte(i, byte) if !data.is_empty() => {
            let p = at(i, data.len());
            data[p] = *byte;
        }
        Mutation::Insert(i, bytes) => {
            let p = at(i, data.len() + 1);
            data.splice(p..p, bytes.iter().copied());
        }
        Mutation::Delete(i, n) if !data.is_empty() => {
            let p = at(i, data.len());
            let end = (p + n).min(data.len());
            data.drain(p..end);
        }
        Mutation::Truncate(i) => {
            let p = at(i, data.len() + 1);
            data.truncate(p);
        }
        Mutation::Duplicate(i, n) if !data.is_empty() => {
            let p = at(i, data.len());
            let span: Vec<u8> = data[p..(p + n).min(data.len())].to_vec();
            data.splice(p..p, span);
        }
        Mutation::Splice(other, at_index, from) => {
            let other = &pool[other % pool.len()];
            let p = at(at_index, data.len() + 1);
            let q = at(from, other.len() + 1);
            data.truncate(p);
            data.extend_from_slice(&other[q..]);
        }
        Mutation::SetU32(i, value) if data.len() >= 4 => {
            let p = at(i, data.len() - 3);
            data[p..p + 4].copy_from_slice(&value.to_le_bytes());
        }
        _ => {}
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn fuzz(target: Target) {
    let pool = seeds(target);
    assert!(!pool.is_empty(), "{} has seeds", target.name());
    for (i, seed) in pool.iter().enumerate() {
        assert_eq!(
            run(target, seed),
            Reached::Decoded,
            "{} seed {i} is refused: the mutations would start from nothing",
            target.name()
        );
    }
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(target.name());
    if let Ok(dir) = std::fs::read_dir(&regressions) {
        for file in dir {
            let path = file.unwrap().path();
            run(target, &std::fs::read(&path).unwrap());
        }
    }
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (any::<usize>(), prop::collection::vec(mutation(), 1..8));
    let decoded = std::cell::Cell::new(0u32);
    runner
        .run(&strategy, |(seed, mutations)| {
            let mut data = pool[seed % pool.len()].clone();
            for mutation in &mutations {
                apply(&mut data, mutation, &pool);
            }
            if run(target, &data) == Reached::Decoded {
                decoded.set(decoded.get() + 1);
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{}: {failure}", target.name()));
    // Some mutants must get past the decoder, or the run tested the decoder's first check
    // only. (Counts include proptest's shrinking runs, of which there are none on success.)
    eprintln!(
        "{}: {} of {} mutants decoded",
        target.name(),
        decoded.get(),
        cases()
    );
    assert!(
        decoded.get() > 0,
        "{}: no mutant got past the decoder",
        target.name()
    );
}

#[test]
fn tx() {
    fuzz(Target::Tx);
}

#[test]
fn block() {
    fuzz(Target::Block);
}

#[test]
fn peer() {
    fuzz(Target::Peer);
}

#[test]
fn snapshot() {
    fuzz(Target::Snapshot);
}

#[test]
fn stored() {
    fuzz(Target::Stored);
}

#[test]
fn genesis() {
    fuzz(Target::Genesis);
}

#[test]
fn api() {
    fuzz(Target::Api);
}

/// The mutations change the bytes they say they change (a mutator that did nothing would
/// make every run above a run of the seeds alone).
#[test]
fn mutations_change_the_input() {
    let pool = vec![vec![1, 2, 3, 4, 5, 6, 7, 8]];
    let index = |n: usize| -> Pos { n };
    let cases = [
        (Mutation::FlipBit(index(0), 0), vec![0, 2, 3, 4, 5, 6, 7, 8]),
        (Mutation::SetByte(index(1), 9), vec![1, 9, 3, 4, 5, 6, 7, 8]),
        (Mutation::Delete(index(0), 2), vec![3, 4, 5, 6, 7, 8]),
        (Mutation::Truncate(index(3)), vec![1, 2, 3]),
        (Mutation::SetU32(index(0), 0), vec![0, 0, 0, 0, 5, 6, 7, 8]),
    ];
    for (mutation, expected) in cases {
        let mut data = pool[0].clone();
        apply(&mut data, &mutation, &pool);
        assert_eq!(data, expected, "{mutation:?}");
    }
}
