//! `core` must stay a pure function of (state, entry): this test fails if a float, a
//! hash map, a clock or a random number generator appears in `core/src`.

use std::path::{Path, PathBuf};

const FORBIDDEN: &[(&str, &str)] = &[
    (
        "f32",
        "floating point differs across platforms and compilers",
    ),
    (
        "f64",
        "floating point differs across platforms and compilers",
    ),
    ("HashMap", "iteration order is randomized per process"),
    ("HashSet", "iteration order is randomized per process"),
    ("std::time", "the ledger's only clock is the block height"),
    ("Instant", "the ledger's only clock is the block height"),
    ("SystemTime", "the ledger's only clock is the block height"),
    ("rand::", "randomness must come from the caller"),
    ("thread_rng", "randomness must come from the caller"),
    ("getrandom", "randomness must come from the caller"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// True when `word` occurs in `line` as a whole identifier (not inside a longer one).
fn contains_word(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(start, _)| {
        let before = line[..start].chars().next_back();
        let after = line[start + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[test]
fn core_src_has_no_floats_hash_maps_clocks_or_rngs() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 5, "found the sources");
    let mut hits = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (word, why) in FORBIDDEN {
                if contains_word(code, word) {
                    hits.push(format!(
                        "{}:{}: `{word}` ({why})",
                        file.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "core must stay deterministic:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_scanner_finds_what_it_looks_for() {
    assert!(contains_word("let x: f64 = 1.0;", "f64"));
    assert!(contains_word("use std::collections::HashMap;", "HashMap"));
    assert!(!contains_word("let buf64 = 1;", "f64"));
    assert!(!contains_word("MyHashMapLike", "HashMap"));
}
