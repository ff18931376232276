//! A cluster of real `agora-node` processes on loopback, for end-to-end tests.

pub use agora_api::{
    AccountResponse, BatchItem, BlockResponse, ChainResponse, ErrorBody, ProofResponse, RoleName,
    StatusResponse, SubmitBatchResponse, SubmitResponse, SubmitStatus, ValidatorsResponse,
    MAX_BATCH_TXS,
};
use agora_core::encoding::Canonical;
use agora_core::tx::{Action, Sender, Transaction};
use agora_core::{AccountId, Amount, Genesis, SecretKey};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// End-to-end tests run one at a time: each starts several processes on a 2-core machine.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// The `agora-node` binary under test.
pub fn bin() -> PathBuf {
    crate::binary("agora-node")
}

/// A free loopback port below the kernel's ephemeral range (32768 and up on Linux), so
/// that no outgoing connection can take it as a source port while its node is down.
pub fn free_port() -> u16 {
    free_port_block(1)
}

/// The first of `count` consecutive free loopback ports (for `devnet`'s base ports). The
/// block is taken from this process's counter in one step, so a test running beside it
/// cannot be handed a port inside the block (it once was, between the block's first port
/// and the rest).
pub fn free_port_block(count: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const RANGE: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 500) as u16 * 20;
    loop {
        let offset = NEXT.fetch_add(count, Ordering::Relaxed) % RANGE;
        let first = 20_000 + (start + offset) % RANGE;
        if first + count <= 20_000 + RANGE
            && (0..count).all(|i| std::net::TcpListener::bind(("127.0.0.1", first + i)).is_ok())
        {
            return first;
        }
    }
}

/// How long a node may take to stop after SIGTERM before the harness kills it.
pub const STOP_LIMIT: Duration = Duration::from_secs(60);

/// SIGTERM, then waits up to [`STOP_LIMIT`]; a process still running then is killed
/// (SIGKILL) and `Err` names how it was left.
pub fn terminate(child: &mut Child) -> Result<std::process::ExitStatus, String> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let started = std::time::Instant::now();
    while started.elapsed() < STOP_LIMIT {
        if let Some(status) = child.try_wait().unwrap() {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "process {} still ran {} s after SIGTERM: killed",
        child.id(),
        STOP_LIMIT.as_secs()
    ))
}

/// Sends SIGTERM to a process and waits for it (killing it if it does not stop), when
/// dropped (also on panic).
pub struct Terminate(pub Child);

impl Drop for Terminate {
    fn drop(&mut self) {
        if let Err(error) = terminate(&mut self.0) {
            eprintln!("{error}");
        }
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agora-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A minimal HTTP/1.1 client: one request per connection.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> Option<(u16, Value)> {
    http_partial(
        port,
        method,
        path,
        body.len(),
        body,
        Duration::from_secs(40),
    )
}

/// A request that declares a body of `declared` bytes but sends only `sent`, then waits at
/// most `wait` for the answer: a server that answers did so without reading the body.
pub fn http_partial(
    port: u16,
    method: &str,
    path: &str,
    declared: usize,
    sent: &[u8],
    wait: Duration,
) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(wait)).ok()?;
    let head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(sent).ok()?;
    let mut response = Vec::new();
    // The server may close the connection once it answered: what was read counts.
    let _ = stream.read_to_end(&mut response);
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).to_string()));
    Some((status, value))
}

pub fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&body[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
        body = &body[line_end + 4 + size..];
    }
    out
}

/// Waits until `check` returns `Some`, polling every 100 ms, panicking after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct Node {
    pub dir: PathBuf,
    /// Where its stderr goes (default `dir/node.log`; elsewhere when `dir` is on a
    /// file system a test fills up).
    pub log: PathBuf,
    pub http_port: u16,
    pub p2p_port: u16,
    pub child: Option<Child>,
    pub public: Value,
}

pub struct Cluster {
    pub dir: PathBuf,
    pub nodes: Vec<Node>,
    pub genesis: Genesis,
    pub demo: SecretKey,
    pub snapshot_interval: u64,
    /// Flags added to every `agora-node run`.
    pub extra: Vec<String>,
    /// Environment added to every `agora-node run` (e.g. `AGORA_INJECT_BUG`).
    pub env: Vec<(String, String)>,
    /// The fault proxies every peer link goes through, when the cluster has them.
    pub net: Option<crate::faults::Net>,
}

/// How [`Cluster::start_opts`] starts a cluster.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub snapshot_interval: u64,
    /// Flags added to every `agora-node run`.
    pub extra: Vec<String>,
    /// Environment added to every `agora-node run`.
    pub env: Vec<(String, String)>,
    /// Every peer link through a fault proxy ([`crate::faults::Net`]).
    pub proxied: bool,
    /// How many of the genesis's nodes (the last ones) join it as witnesses.
    pub witnesses: usize,
    /// How many nodes (the very last ones) are not in the genesis: they run from the start,
    /// outside the configuration, until governance adds them.
    pub spares: usize,
}

fn run_ok(args: &[&str]) {
    let output = Command::new(bin()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "agora-node {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Cluster {
    /// Initializes `count` validators, a genesis funding a demo account, and starts them.
    pub fn start(name: &str, count: usize, snapshot_interval: u64) -> Cluster {
        Self::start_with(name, count, snapshot_interval, &[])
    }

    /// Like [`Cluster::start`], passing `extra` flags to every `agora-node run`.
    pub fn start_with(name: &str, count: usize, snapshot_interval: u64, extra: &[&str]) -> Cluster {
        Self::start_opts(
            name,
            count,
            Options {
                snapshot_interval,
                extra: extra.iter().map(|s| s.to_string()).collect(),
                ..Options::default()
            },
        )
    }

    /// Initializes `count` validators and a genesis funding a demo account, and starts
    /// them as `options` say.
    pub fn start_opts(name: &str, count: usize, options: Options) -> Cluster {
        let dir = temp_dir(name);
        let demo = agora_node::keys::generate_ml_dsa(agora_core::KeyKind::MlDsa44);
        let mut nodes = Vec::new();
        for i in 0..count {
            let node_dir = dir.join(format!("node{i}"));
            let (http_port, p2p_port) = (free_port(), free_port());
            let listen = format!("/ip4/127.0.0.1/tcp/{p2p_port}");
            run_ok(&[
                "init",
                "--data-dir",
                node_dir.to_str().unwrap(),
                "--listen",
                &listen,
                "--key-kind",
                "ml-dsa-44",
            ]);
            let public: Value =
                serde_json::from_slice(&std::fs::read(node_dir.join("validator.json")).unwrap())
                    .unwrap();
            nodes.push(Node {
                log: node_dir.join("node.log"),
                dir: node_dir,
                http_port,
                p2p_port,
                child: None,
                public,
            });
        }
        let genesis_path = dir.join("genesis.json");
        let mut args: Vec<String> = vec![
            "genesis".into(),
            "--chain-name".into(),
            name.into(),
            "--out".into(),
            genesis_path.display().to_string(),
        ];
        let members = count - options.spares;
        for (i, node) in nodes.iter().enumerate().take(members) {
            let role = if i + options.witnesses >= members {
                "--witness"
            } else {
                "--validator"
            };
            args.push(role.into());
            args.push(node.dir.join("validator.json").display().to_string());
        }
        args.push("--account".into());
        args.push(format!(
            "{}=1000000000",
            AccountId::from_public_key(demo.public_key())
        ));
        run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let genesis = Genesis::from_json(&std::fs::read_to_string(&genesis_path).unwrap()).unwrap();
        let mut cluster = Cluster {
            dir,
            nodes,
            genesis,
            demo,
            snapshot_interval: options.snapshot_interval,
            extra: options.extra,
            env: options.env,
            net: None,
        };
        if options.proxied {
            let targets: Vec<u16> = cluster.nodes.iter().map(|n| n.p2p_port).collect();
            cluster.net = Some(crate::faults::Net::start(&targets, free_port));
        }
        for i in 0..count {
            cluster.launch(i);
        }
        cluster
    }

    pub fn launch(&mut self, i: usize) {
        let peers: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, n)| {
                let address = n.public["address"].as_str().unwrap();
                match &self.net {
                    // The same peer, reached through the proxy of the link i → j.
                    Some(net) => {
                        let peer = address.rsplit("/p2p/").next().unwrap();
                        format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer}", net.port(i, j))
                    }
                    None => address.to_string(),
                }
            })
            .collect();
        let node = &self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let child = Command::new(bin())
            .args([
                "run",
                "--data-dir",
                node.dir.to_str().unwrap(),
                "--genesis",
                self.dir.join("genesis.json").to_str().unwrap(),
            ])
            .args([
                "--listen",
                &format!("/ip4/127.0.0.1/tcp/{}", node.p2p_port),
                "--http",
                &format!("127.0.0.1:{}", node.http_port),
            ])
            .args([
                "--tick-ms",
                "50",
                "--snapshot-interval",
                &self.snapshot_interval.to_string(),
            ])
            .args(if peers.is_empty() {
                vec![]
            } else {
                vec!["--peer".to_string(), peers.join(",")]
            })
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("AGORA_LOG", "info,agora_node::network=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i].child = Some(child);
    }

    /// SIGTERM, then waits: a graceful stop (the database is closed and checkpointed).
    /// A node that does not stop within [`STOP_LIMIT`] fails the test.
    pub fn stop(&mut self, i: usize) -> std::process::ExitStatus {
        let mut child = self.nodes[i].child.take().expect("node is running");
        terminate(&mut child).unwrap_or_else(|error| panic!("node {i}: {error}"))
    }

    /// Waits up to `limit` for node `i` to exit on its own; its exit status.
    pub fn wait_exit(&mut self, i: usize, limit: Duration) -> std::process::ExitStatus {
        let status = wait_for(&format!("node {i} to exit"), limit, || {
            self.nodes[i].child.as_mut().unwrap().try_wait().unwrap()
        });
        self.nodes[i].child = None;
        status
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn get(&self, i: usize, path: &str) -> Option<(u16, Value)> {
        http(self.nodes[i].http_port, "GET", path, &[])
    }

    /// A successful answer from node `i`, as the API's type for it.
    pub fn get_as<T: serde::de::DeserializeOwned>(&self, i: usize, path: &str) -> Option<T> {
        self.get(i, path)
            .filter(|(s, _)| *s == 200)
            .map(|(_, v)| serde_json::from_value(v).expect("the answer has the API's type"))
    }

    /// A metric's value on node `i`: the node's own, or its first zone's (a zone's metrics
    /// carry a `zone` label).
    pub fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let (_, metrics) = self.get(i, "/metrics")?;
        metrics
            .as_str()?
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|series| series.split('{').next() == Some(name))
            })?
            .split_whitespace()
            .last()?
            .parse()
            .ok()
    }

    pub fn status(&self, i: usize) -> Option<StatusResponse> {
        self.get_as(i, "/v1/status")
    }

    /// The index of the node that reports itself leader.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|i| {
            self.nodes[*i].child.is_some()
                && self.status(*i).is_some_and(|s| s.role == RoleName::Leader)
        })
    }

    pub fn wait_ready(&self, limit: Duration) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].child.is_some() {
                wait_for(&format!("node {i} ready"), limit, || {
                    self.get(i, "/ready").filter(|(s, _)| *s == 200)
                });
            }
        }
    }

    pub fn demo_account(&self) -> AccountId {
        AccountId::from_public_key(self.demo.public_key())
    }

    /// Signs a transfer from the demo account with the given nonce.
    pub fn transfer(&self, nonce: u64, to: AccountId, amount: u128) -> Vec<u8> {
        self.transfer_on(self.genesis.chain_id(), nonce, to, amount)
    }

    /// Signs a transfer from the demo account on chain `chain_id` (a zone's).
    pub fn transfer_on(
        &self,
        chain_id: agora_core::ChainId,
        nonce: u64,
        to: AccountId,
        amount: u128,
    ) -> Vec<u8> {
        sign_transfer(&self.demo, chain_id, nonce, to, amount)
    }

    /// Submits to node `i` and waits for the commit, retrying while the node is busy or
    /// has no leader. Returns the committed answer.
    pub fn submit_and_wait(&self, i: usize, tx: &[u8], limit: Duration) -> SubmitResponse {
        self.submit_and_wait_in(None, i, tx, limit)
    }

    /// Like [`Cluster::submit_and_wait`], in zone `zone` of node `i` (`None`: its first).
    pub fn submit_and_wait_in(
        &self,
        zone: Option<&str>,
        i: usize,
        tx: &[u8],
        limit: Duration,
    ) -> SubmitResponse {
        let path = match zone {
            Some(zone) => format!("/v1/zones/{zone}/tx?wait=commit"),
            None => "/v1/tx?wait=commit".to_string(),
        };
        wait_for("a committed transaction", limit, || {
            match http(self.nodes[i].http_port, "POST", &path, tx) {
                Some((200, value)) => {
                    let answer: SubmitResponse =
                        serde_json::from_value(value).expect("a submit answer");
                    assert_eq!(answer.status, SubmitStatus::Committed, "{answer:?}");
                    Some(answer)
                }
                Some((503, _)) | None => None,
                Some((status, value)) => panic!("submission refused with {status}: {value}"),
            }
        })
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Signs a transfer from `key`'s account on chain `chain_id`; nonce 0 registers the key.
pub fn sign_transfer(
    key: &SecretKey,
    chain_id: agora_core::ChainId,
    nonce: u64,
    to: AccountId,
    amount: u128,
) -> Vec<u8> {
    let sender = if nonce == 0 {
        Sender::Register(key.public_key().clone())
    } else {
        Sender::Account(AccountId::from_public_key(key.public_key()))
    };
    Transaction {
        chain_id,
        sender,
        nonce,
        action: Action::Transfer {
            to,
            amount: Amount(amount),
        },
    }
    .sign(key, agora_node::keys::os_random())
    .to_canonical_bytes()
}

/// Whether a committed answer's receipt says the transaction applied.
pub fn applied(answer: &SubmitResponse) -> bool {
    answer
        .receipt
        .as_ref()
        .is_some_and(|r| r.status == agora_core::TxStatus::Applied)
}

/// The stable code of an error body.
pub fn error_code(body: &Value) -> Option<String> {
    serde_json::from_value::<ErrorBody>(body.clone())
        .ok()
        .map(|e| e.code)
}

pub fn random_account() -> AccountId {
    AccountId(agora_core::Hash32(agora_node::keys::os_random()))
}

pub fn path_exists(path: &Path) -> bool {
    path.exists()
}
