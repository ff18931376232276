//! The one harness of Agora's end-to-end tests: real `agora-node`, `agora` and
//! `agora-load` processes on loopback ports below the kernel's ephemeral range, their logs
//! kept in the test's directory when it fails.
//!
//! - [`cluster`]: a cluster of validators made by `agora-node init` and `genesis`, started,
//!   killed, paused and restarted as processes;
//! - [`members`]: the `agora` CLI run as a process, and single nodes on seeded keys and a
//!   hand-made genesis;
//! - [`faults`]: a proxy on every directed peer link that partitions (whole, one-way,
//!   bridge) and delays the traffic between chosen nodes;
//! - [`history`]: the clients' operations with their invoke and complete times, and the
//!   checker that judges them against the chain the nodes archived.

pub mod cluster;
pub mod disk;
pub mod faults;
pub mod history;
pub mod members;

pub use cluster::*;
pub use disk::*;
pub use members::*;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of one of the workspace's binaries (`agora-node`, `agora`, `agora-load`),
/// built once per test process, from the sources under test, by the same `cargo` that
/// runs the tests, into the same target directory and profile (an up-to-date build costs
/// a second). The node has its test-only switches (`inject-bugs`: `AGORA_INJECT_BUG`,
/// `AGORA_INJECT_LIE`), which do nothing unless set: this crate enables the feature.
///
/// The build asks for what `cargo test --workspace` builds — every package's tests, which
/// include the binaries — so that under CI's command it finds everything fresh. Building
/// only the two packages resolves their dependencies' features differently and compiled
/// much of the dependency tree a second time on a cold machine.
pub fn binary(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // target/<profile dir>/deps/<this test> → target/
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("a test runs from target/<profile>/deps")
            .to_path_buf();
        let target = profile_dir.parent().expect("a target directory");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
        let output = Command::new(cargo)
            .args(["build", "--profile", "test", "--locked", "--quiet"])
            .args(["--workspace", "--tests"])
            .arg("--manifest-path")
            .arg(manifest)
            .arg("--target-dir")
            .arg(target)
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building the binaries under test failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        profile_dir
    })
    .join(name)
}
