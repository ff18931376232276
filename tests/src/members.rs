//! What the CLI's process tests share: the `agora` binary run as a process, and single
//! `agora-node` processes on seeded validator keys and a genesis the test writes.

use crate::cluster::{bin, free_port, Terminate};
use agora_core::genesis::{Genesis, GenesisValidator};
use agora_core::KeyKind;
use agora_node::config::NodeConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `agora` CLI under test.
pub fn cli() -> PathBuf {
    crate::binary("agora")
}

pub struct Agora {
    pub node: String,
    pub dir: PathBuf,
}

impl Agora {
    /// Runs `agora --node … --key <dir>/<key> ARGS` and returns its output.
    pub fn run(&self, key: &str, args: &[&str]) -> Output {
        Command::new(cli())
            .args(["--node", &self.node, "--key"])
            .arg(self.dir.join(key))
            .args(args)
            .env("AGORA_PASSPHRASE", "lifecycle passphrase")
            .env("AGORA_CONFIG", self.dir.join("no-config.toml"))
            .output()
            .unwrap()
    }

    /// Runs with `--json`, asserting success; the parsed output.
    pub fn json(&self, key: &str, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(key, &all);
        assert!(
            output.status.success(),
            "agora {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("--json output parses")
    }

    /// Runs with `--json`, asserting success; the output as the API's type for it.
    pub fn answer<T: serde::de::DeserializeOwned>(&self, key: &str, args: &[&str]) -> T {
        serde_json::from_value(self.json(key, args)).expect("the output has the API's type")
    }

    /// Runs for people, asserting success; the text.
    pub fn text(&self, key: &str, args: &[&str]) -> String {
        let output = self.run(key, args);
        assert!(output.status.success(), "agora {args:?} failed");
        String::from_utf8(output.stdout).unwrap()
    }
}

/// One node to run in this process: the seeded validator `label` (ML-DSA-44 and
/// network keys from `agora_testkit::test_seed`).
pub struct TestNode {
    pub label: String,
    pub p2p_port: u16,
    pub http_port: u16,
}

impl TestNode {
    pub fn new(label: &str) -> TestNode {
        TestNode {
            label: label.into(),
            p2p_port: free_port(),
            http_port: free_port(),
        }
    }

    pub fn address(&self) -> String {
        let peer = agora_node::keys::seeded_network_key(&self.label)
            .public()
            .to_peer_id();
        format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer}", self.p2p_port)
    }
}

/// The genesis record of the seeded validator `label` (its ML-DSA-44 key and the peer id
/// of its seeded network key), with base reputation 10.
pub fn seeded_validator(label: &str) -> GenesisValidator {
    GenesisValidator {
        public_key: agora_testkit::seeded_key(KeyKind::MlDsa44, label)
            .public_key()
            .clone(),
        peer: agora_node::keys::seeded_network_key(label)
            .public()
            .to_peer_id()
            .to_bytes(),
        base_reputation: 10,
    }
}

/// Waits until `agora status` answers from `url`.
pub fn wait_up(url: &str, dir: &Path) {
    let started = Instant::now();
    while !Command::new(cli())
        .args(["--node", url, "status"])
        .env("AGORA_CONFIG", dir.join("no-config.toml"))
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(started.elapsed() < Duration::from_secs(30), "{url} up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `node` on `genesis` (with `peers`, in replay mode or not) as an `agora-node`
/// process whose log is `<dir>/<label>/node.log`; returns its HTTP base URL and the
/// process, stopped with SIGTERM when dropped.
pub fn start_node(
    dir: &Path,
    genesis: &Genesis,
    node: &TestNode,
    peers: Vec<String>,
    replay: bool,
) -> (String, Terminate) {
    let data = dir.join(&node.label);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("genesis.json"), genesis.to_json()).unwrap();
    let key = agora_testkit::seeded_key(KeyKind::MlDsa44, &node.label);
    agora_node::keys::save_ml_dsa(&data.join(agora_node::keys::VALIDATOR_KEY_FILE), &key).unwrap();
    agora_node::keys::save_network_key(
        &data.join(agora_node::keys::NETWORK_KEY_FILE),
        &agora_node::keys::seeded_network_key(&node.label),
    )
    .unwrap();
    let http = format!("127.0.0.1:{}", node.http_port);
    let config = NodeConfig {
        data_dir: Some(PathBuf::from(".")),
        genesis: Some(PathBuf::from("genesis.json")),
        listen: Some(format!("/ip4/127.0.0.1/tcp/{}", node.p2p_port)),
        http: Some(http.clone()),
        peers,
        tick_ms: Some(20),
        empty_block_ms: Some(200),
        replay: Some(replay),
        ..NodeConfig::default()
    };
    config.save(&data.join("node.toml")).unwrap();
    let log = std::fs::File::create(data.join("node.log")).unwrap();
    let child = Command::new(bin())
        .args(["run", "--config"])
        .arg(data.join("node.toml"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("agora-node starts");
    (format!("http://{http}"), Terminate(child))
}
