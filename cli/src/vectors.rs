//! `agora vectors generate|check`: the test vectors, regenerated or replayed through
//! agora-core in this process, or through a live replay cluster
//! (`agora-node devnet --vector FILE`).

use crate::client::{Failure, Node};
use agora_api::{BlockResponse, ChainResponse, ReplayResponse};
use agora_core::outcome::{Event, Receipt};
use agora_core::vectors::{Divergence, VectorFile};
use agora_core::Hash32;
use agora_testkit::generate_all;
use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one entry may take to apply on a live cluster (elections included).
const ENTRY_LIMIT: Duration = Duration::from_secs(60);

/// Writes every vector into `dir` as `<name>.json`; returns the paths.
pub fn generate(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    generate_all()
        .into_iter()
        .map(|file| {
            let path = dir.join(format!("{}.json", file.name));
            std::fs::write(&path, file.to_json())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// The vector files at `path`: the file itself, or the `*.json` in a directory.
pub fn files(path: &Path) -> Result<Vec<(PathBuf, VectorFile)>> {
    let mut paths = if path.is_dir() {
        std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            let file = VectorFile::from_json(&text)
                .map_err(|e| anyhow!("{}: not a vector file: {e}", p.display()))?;
            Ok((p, file))
        })
        .collect()
}

/// One file's result.
pub fn report(path: &Path, file: &VectorFile, result: &Result<usize, Divergence>) -> Value {
    json!({
        "file": path,
        "name": file.name,
        "entries": file.entries.len(),
        "ok": result.is_ok(),
        "divergence": result.as_ref().err().map(|d| d.to_string()),
    })
}

/// The vectors a live replay cluster can check: those whose chain every node runs (a
/// replay cluster runs one vector's chain). None is an error that says how to start one.
pub fn for_cluster(
    files: Vec<(PathBuf, VectorFile)>,
    nodes: &[Node],
) -> Result<Vec<(PathBuf, VectorFile)>, Failure> {
    let mut chains = Vec::new();
    for node in nodes {
        let chain: ChainResponse = node.get("/v1/chain?consistency=local")?;
        chains.push(chain.chain_id);
    }
    if chains.iter().any(|c| *c != chains[0]) {
        return Err(Failure::Other(anyhow!(
            "the nodes given run different chains: {chains:?}"
        )));
    }
    let matching: Vec<_> = files
        .into_iter()
        .filter(|(_, f)| f.chain_id == chains[0])
        .collect();
    if matching.is_empty() {
        return Err(Failure::Other(anyhow!(
            "{} runs chain {}, which no vector here has; start a replay cluster with `agora-node devnet --vector FILE`",
            nodes[0].url(),
            chains[0]
        )));
    }
    Ok(matching)
}

/// Replays `file` through the live replay cluster whose APIs are `nodes` (running its
/// chain: see [`for_cluster`]), entry by entry, comparing what the leader applied with
/// what the vector expects. An entry the cluster applied already (a second run) is
/// compared through its archived block.
pub fn check_live(
    file: &VectorFile,
    nodes: &[Node],
    progress: &indicatif::ProgressBar,
) -> Result<Result<usize, Divergence>, Failure> {
    for vector in &file.entries {
        let index = vector.entry.index;
        let (root, receipts, events) = apply_live(nodes, &vector.entry)?;
        if let Err(divergence) = vector
            .expected
            .compare(index, &root, &receipts, events.as_deref())
        {
            return Ok(Err(divergence));
        }
        progress.inc(1);
    }
    Ok(Ok(file.entries.len()))
}

type Applied = (Hash32, Vec<Receipt>, Option<Vec<Event>>);

/// Gets `entry` applied by the cluster's leader; returns the root, receipts and (when the
/// node applied it just now) events.
fn apply_live(nodes: &[Node], entry: &agora_core::Entry) -> Result<Applied, Failure> {
    let body = serde_json::to_vec(entry).expect("serializes");
    let started = Instant::now();
    let mut last_error = String::new();
    while started.elapsed() < ENTRY_LIMIT {
        for node in nodes {
            let answer = match node.request(reqwest::Method::POST, "/v1/replay", Some(body.clone()))
            {
                Ok(answer) => answer,
                Err(Failure::Unreachable(e)) => {
                    last_error = e;
                    continue;
                }
                Err(other) => return Err(other),
            };
            match (answer.status, answer.code().as_str()) {
                (200, _) => {
                    let applied: ReplayResponse = answer.into_result()?;
                    return Ok((applied.state_root, applied.receipts, Some(applied.events)));
                }
                (409, "already_applied") => {
                    let block: BlockResponse = node.get(&format!("/v1/blocks/{}", entry.index))?;
                    return Ok((block.state_root, block.receipts, None));
                }
                (421, _) | (503, _) => last_error = format!("{}: {}", node.url(), answer.body),
                _ => {
                    return Err(answer.into_result::<Value>().err().unwrap_or_else(|| {
                        Failure::Other(anyhow!("unexpected answer to a replay"))
                    }))
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(Failure::Unreachable(format!(
        "entry {} was not applied within {ENTRY_LIMIT:?}: {last_error}",
        entry.index
    )))
}

/// A progress bar over `total` entries; invisible when stderr is not a terminal.
pub fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:30} [{bar:40}] {pos}/{len} entries")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}
