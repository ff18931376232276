//! The committed test vectors are exactly what the generator produces, and every one of
//! them replays through the ledger to its recorded roots, receipts and events.
//!
//! To regenerate after an intended change of encoding or rules:
//! `AGORA_BLESS=1 cargo test -p agora-testkit --test vectors` (then review the diff).

use agora_core::vectors::{check, VectorFile};
use agora_testkit::generate_all;
use std::path::PathBuf;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

#[test]
fn committed_vectors_match_the_generator_byte_for_byte() {
    let bless = std::env::var_os("AGORA_BLESS").is_some();
    let generated = generate_all();
    assert!(generated.len() >= 11, "every scenario kind is generated");
    let mut stale = Vec::new();
    for file in &generated {
        let path = vectors_dir().join(format!("{}.json", file.name));
        let text = file.to_json();
        if bless {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == text => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(e) => stale.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "vectors changed (encoding, hashing or rules); if intended, regenerate with AGORA_BLESS=1 and review:\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_committed_vector_replays() {
    let mut checked = 0;
    let mut entries = 0;
    let mut paths: Vec<_> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let file = VectorFile::from_json(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        entries += check(&file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert!(checked >= 11, "found only {checked} vector files");
    assert!(entries > 100, "vectors hold only {entries} entries");
}
