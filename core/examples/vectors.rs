//! Replays the test vectors through the ledger and prints, per file, how many entries
//! matched and the final state root. Exits non-zero on the first divergence.
//!
//! `cargo run --release -p agora-core --example vectors -- [DIR]` (default `vectors/`).

use agora_core::vectors::{check, VectorFile};
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "vectors".to_string());
    let mut paths: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(e) => {
            eprintln!("cannot read {dir}: {e}");
            return ExitCode::from(2);
        }
    };
    paths.sort();
    let mut failures = 0;
    for path in &paths {
        let result = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| VectorFile::from_json(&text))
            .and_then(|file| {
                let last = file.entries.last().map(|e| e.expected.state_root);
                check(&file).map(|n| (n, last)).map_err(|e| e.to_string())
            });
        match result {
            Ok((entries, root)) => {
                let root = root.map(|r| r.to_hex()).unwrap_or_default();
                println!(
                    "ok    {:<40} {entries:>3} entries  root {}",
                    path.display(),
                    &root[..16.min(root.len())]
                );
            }
            Err(e) => {
                failures += 1;
                println!("FAIL  {}: {e}", path.display());
            }
        }
    }
    println!("{} passed, {failures} failed", paths.len() - failures);
    if failures == 0 && !paths.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
