//! The seam between decisions and I/O is kept by the build, not by review: everything this
//! crate depends on, directly or not (dev-dependencies included), is read from the
//! workspace's Cargo.lock, and none of it may be an async runtime, a socket library, a
//! database driver or an HTTP framework. Adding one to agora-consensus fails this test.

use std::collections::{BTreeMap, BTreeSet};

const FORBIDDEN: &[&str] = &["tokio", "libp2p", "sqlx", "axum", "hyper", "mio", "reqwest"];

/// package name -> the names it depends on, from Cargo.lock (versions merged).
fn lock_graph() -> BTreeMap<String, BTreeSet<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");
    let lock = std::fs::read_to_string(path).expect("the workspace has a Cargo.lock");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_dependencies = false;
    for line in lock.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            current = None;
            in_dependencies = false;
        } else if let Some(name) = line.strip_prefix("name = ") {
            let name = name.trim_matches('"').to_string();
            graph.entry(name.clone()).or_default();
            current = Some(name);
        } else if line.starts_with("dependencies = [") {
            in_dependencies = true;
        } else if in_dependencies && line == "]" {
            in_dependencies = false;
        } else if in_dependencies {
            let dependency = line.trim_matches(|c| c == '"' || c == ',');
            let name = dependency.split(' ').next().unwrap_or_default().to_string();
            if let Some(package) = &current {
                graph.entry(package.clone()).or_default().insert(name);
            }
        }
    }
    graph
}

#[test]
fn agora_consensus_depends_on_no_io_crate() {
    let graph = lock_graph();
    assert!(
        graph.contains_key("tokio"),
        "the lock file was read (the node uses tokio)"
    );
    let mut seen = BTreeSet::new();
    let mut stack = vec!["agora-consensus".to_string()];
    while let Some(package) = stack.pop() {
        if !seen.insert(package.clone()) {
            continue;
        }
        for dependency in graph.get(&package).into_iter().flatten() {
            stack.push(dependency.clone());
        }
    }
    assert!(seen.contains("agora-core") && seen.contains("borsh"));
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|f| seen.contains(**f)).collect();
    assert!(
        found.is_empty(),
        "agora-consensus must stay free of I/O crates, but depends on {found:?}"
    );
}
