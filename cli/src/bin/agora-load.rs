//! `agora-load`: the cluster load generator. It funds fresh accounts from one funded key,
//! signs each account's transfers before the timed window (signing is the clients' cost,
//! on their own machines), then runs one closed-loop async client per account (submit a
//! transfer with `?wait=commit`, take the next) against the given nodes for a fixed time.
//! It reports committed transactions per second, commit latency percentiles, and, for
//! each process named with `--cpu-pid`, the CPU time it spent per committed transaction.
//!
//! With `--zone` (repeat it) the load goes to several zones of the same nodes at once,
//! `--clients` clients in each, and the report gives each zone's rate and the total.
//!
//! Example, with `agora-node devnet` running (its pid in $DEVNET):
//!   agora-load --funder devnet/demo.key --node http://127.0.0.1:8100 \
//!       --node http://127.0.0.1:8101 --node http://127.0.0.1:8102 --clients 256 \
//!       --seconds 20 --cpu-pid $DEVNET
//! and with `agora-node devnet --zones 3`, add
//!       --zone agora-devnet --zone agora-devnet-2 --zone agora-devnet-3

use agora_cli::client::{sign, Failure, Node};
use agora_cli::keyfile;
use agora_core::tx::Action;
use agora_core::{AccountId, Amount, Hash32, KeyKind, SecretKey};
use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Loads an Agora cluster with transfers and measures committed throughput and latency.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// A node's HTTP API (repeat: clients are spread over the nodes).
    #[arg(long = "node", required = true)]
    nodes: Vec<String>,
    /// A key file of a funded account (e.g. the devnet's demo.key).
    #[arg(long)]
    funder: PathBuf,
    /// Concurrent clients (in each zone), each with an account of its own.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// A zone to load, by name (repeat: each gets --clients clients; the funder must
    /// hold funds in each) [default: the nodes' first zone].
    #[arg(long = "zone")]
    zones: Vec<String>,
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Transfers each client signs before the timed window (default: 10 per second of
    /// the run). A client that runs out signs the rest inside the window; the report
    /// says how many.
    #[arg(long)]
    per_client: Option<usize>,
    /// ML-DSA parameter set of the client accounts.
    #[arg(long, default_value = "ml-dsa-65")]
    kind: String,
    /// A process whose CPU time per committed transaction to report (repeat; e.g. the
    /// devnet's pid, which runs every node).
    #[arg(long = "cpu-pid")]
    cpu_pids: Vec<u32>,
    /// Transfers a client sends per request: 1 posts each to `/v1/tx`, more post that many
    /// consecutive nonces at once to `/v1/txs` (at most 128), each waiting for its commit.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=128))]
    batch: u16,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
    signed_in_window: u64,
    /// Transfers committed in each zone loaded (by name; "" is the nodes' first zone).
    per_zone: BTreeMap<String, u64>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn failure(f: Failure) -> anyhow::Error {
    match f {
        Failure::Other(e) => e,
        Failure::Rejected(m) => anyhow!("rejected: {m}"),
        Failure::Unreachable(m) => anyhow!("unreachable: {m}"),
        Failure::NotVerified => anyhow!("not verified"),
    }
}

/// One client's account and its transfers, signed ahead.
struct Client {
    key: SecretKey,
    to: AccountId,
    signed: Vec<Vec<u8>>,
}

/// A zone under load: its nodes (as routes), its chain, its clients.
struct ZoneLoad {
    name: String,
    nodes: Vec<Node>,
    chain_id: Hash32,
    clients: Vec<Client>,
}

fn run(args: &Args) -> Result<()> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let kind = KeyKind::from_name(&args.kind).context("unknown key kind")?;
    let funder = keyfile::load(&args.funder)?;
    let per_client = args
        .per_client
        .unwrap_or_else(|| (args.seconds as usize).saturating_mul(10).max(1));
    let names: Vec<Option<&str>> = if args.zones.is_empty() {
        vec![None]
    } else {
        args.zones.iter().map(|z| Some(z.as_str())).collect()
    };
    let mut zones = Vec::new();
    for zone in names {
        let nodes: Vec<Node> = args
            .nodes
            .iter()
            .map(|n| Node::new(n).in_zone(zone))
            .collect();
        let chain_id = nodes[0]
            .chain_id()
            .map_err(failure)
            .with_context(|| format!("zone {}", zone.unwrap_or("(the first)")))?;
        let keys: Vec<SecretKey> = (0..args.clients)
            .map(|_| {
                let mut seed = [0u8; 32];
                rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut seed)
                    .map_err(|e| anyhow!("no OS randomness: {e}"))?;
                Ok(SecretKey::from_seed(kind, seed))
            })
            .collect::<Result<_>>()?;
        fund(&nodes[0], &funder, &keys)?;
        let signing = Instant::now();
        let clients = presign(&keys, chain_id, per_client)?;
        eprintln!(
            "zone {}: funded {} clients and signed {} transfers each ({}) in {:.1} s",
            zone.unwrap_or("(the first)"),
            clients.len(),
            per_client,
            args.kind,
            signing.elapsed().as_secs_f64(),
        );
        zones.push(ZoneLoad {
            name: zone.unwrap_or("").to_string(),
            nodes,
            chain_id,
            clients,
        });
    }
    eprintln!("loading for {} s", args.seconds);

    let cpu_before: Vec<Option<f64>> = args.cpu_pids.iter().map(|p| cpu_seconds(*p)).collect();
    let started = Instant::now();
    let tally = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(load(args, zones, started))?;
    let elapsed = started.elapsed();
    let cpu: Vec<serde_json::Value> = args
        .cpu_pids
        .iter()
        .zip(cpu_before)
        .map(|(pid, before)| {
            let spent = cpu_seconds(*pid).zip(before).map(|(after, b)| after - b);
            json!({ "pid": pid, "cpu_seconds": spent })
        })
        .collect();
    report(args, tally, elapsed, cpu)
}

fn report(
    args: &Args,
    mut tally: Tally,
    elapsed: Duration,
    cpu: Vec<serde_json::Value>,
) -> Result<()> {
    tally.latencies.sort();
    let committed = tally.latencies.len();
    let percentile = |p: usize| -> f64 {
        if committed == 0 {
            return 0.0;
        }
        tally.latencies[((committed - 1) * p) / 100].as_secs_f64() * 1_000.0
    };
    let per_tx_us = |seconds: f64| seconds * 1e6 / committed.max(1) as f64;
    let report = json!({
        "clients": args.clients,
        "batch": args.batch,
        "kind": args.kind,
        "nodes": args.nodes,
        "seconds": elapsed.as_secs_f64(),
        "committed": committed,
        "committed_per_second": committed as f64 / elapsed.as_secs_f64(),
        "zones": tally.per_zone.iter().map(|(zone, n)| json!({
            "zone": zone,
            "committed": n,
            "committed_per_second": *n as f64 / elapsed.as_secs_f64(),
        })).collect::<Vec<_>>(),
        "latency_ms": { "p50": percentile(50), "p90": percentile(90), "p99": percentile(99), "max": percentile(100) },
        "signed_in_window": tally.signed_in_window,
        "cpu": cpu,
        "errors": tally.errors,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{committed} transfers committed in {:.1} s by {} clients over {} node(s): {:.0} tx/s\ncommit latency ms: p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}\nsigned inside the window: {}\nerrors: {:?}",
        elapsed.as_secs_f64(),
        args.clients,
        args.nodes.len(),
        committed as f64 / elapsed.as_secs_f64(),
        percentile(50),
        percentile(90),
        percentile(99),
        percentile(100),
        tally.signed_in_window,
        tally.errors
    );
    if tally.per_zone.len() > 1 {
        for (zone, n) in &tally.per_zone {
            println!(
                "zone {zone}: {n} committed, {:.0} tx/s",
                *n as f64 / elapsed.as_secs_f64()
            );
        }
    }
    for entry in &cpu {
        match entry["cpu_seconds"].as_f64() {
            Some(seconds) => println!(
                "pid {}: {seconds:.1} CPU s, {:.0} µs per committed transaction",
                entry["pid"],
                per_tx_us(seconds)
            ),
            None => println!("pid {}: CPU time unreadable", entry["pid"]),
        }
    }
    Ok(())
}

/// Sends each client 100 tokens, one committed transfer after another (transactions sent
/// back to back through different nodes may reach the leader out of nonce order).
fn fund(node: &Node, funder: &SecretKey, clients: &[SecretKey]) -> Result<()> {
    for client in clients {
        let action = Action::Transfer {
            to: AccountId::from_public_key(client.public_key()),
            amount: Amount(100_000_000),
        };
        node.submit(funder, action, true, false)
            .map_err(failure)
            .context("funding a client")?;
    }
    Ok(())
}

/// Signs `per_client` transfers for every client (nonces 0.., each to the next client),
/// on every core.
fn presign(keys: &[SecretKey], chain_id: Hash32, per_client: usize) -> Result<Vec<Client>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = keys.len().div_ceil(threads);
    let indexes: Vec<usize> = (0..keys.len()).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = indexes
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&i| {
                            let key = keys[i].clone();
                            let to =
                                AccountId::from_public_key(keys[(i + 1) % keys.len()].public_key());
                            let signed = (0..per_client as u64)
                                .map(|nonce| sign(&key, chain_id, nonce, nonce > 0, transfer(to)))
                                .collect::<Result<Vec<_>>>()?;
                            Ok(Client { key, to, signed })
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut clients = Vec::new();
        for handle in handles {
            clients.extend(handle.join().map_err(|_| anyhow!("a signer panicked"))??);
        }
        Ok(clients)
    })
}

fn transfer(to: AccountId) -> Action {
    Action::Transfer {
        to,
        amount: Amount(1),
    }
}

/// The timed window: one async closed-loop client per account, in every zone at once.
async fn load(args: &Args, zones: Vec<ZoneLoad>, started: Instant) -> Result<Tally> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(40))
        .pool_max_idle_per_host(args.clients.saturating_mul(zones.len()))
        .build()?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for zone in zones {
        tally
            .lock()
            .expect("no client yet")
            .per_zone
            .insert(zone.name.clone(), 0);
        for (i, client) in zone.clients.into_iter().enumerate() {
            let node = &zone.nodes[i % zone.nodes.len()];
            let client_loop = ClientLoop {
                http: http.clone(),
                tx_url: node.route("/v1/tx?wait=commit"),
                txs_url: node.route("/v1/txs?wait=commit"),
                zone: zone.name.clone(),
                batch: usize::from(args.batch),
                chain_id: zone.chain_id,
                deadline,
                tally: tally.clone(),
            };
            tasks.spawn(client_loop.run(client));
        }
    }
    while tasks.join_next().await.is_some() {}
    let tally = Arc::try_unwrap(tally)
        .map_err(|_| anyhow!("a client outlived the window"))?
        .into_inner()
        .map_err(|_| anyhow!("a client panicked"))?;
    Ok(tally)
}

/// One client's connection to the cluster and where it reports.
struct ClientLoop {
    http: reqwest::Client,
    tx_url: String,
    txs_url: String,
    zone: String,
    batch: usize,
    chain_id: Hash32,
    deadline: Instant,
    tally: Arc<Mutex<Tally>>,
}

/// What one submitted transfer came to: committed (after how long) or an error code.
type ItemOutcome = Result<Duration, String>;

impl ClientLoop {
    /// Submit the next transfers (one, or a batch of consecutive nonces), wait for their
    /// commits, repeat until the deadline. A transfer refused for a passing reason (a full
    /// queue) is sent again; one whose nonce was used already committed after all.
    async fn run(self, client: Client) {
        let Client { key, to, signed } = client;
        let mut pending: std::collections::VecDeque<Vec<u8>> = signed.into_iter().collect();
        let mut nonce = 0u64;
        while Instant::now() < self.deadline {
            while pending.len() < self.batch {
                let next = nonce + pending.len() as u64;
                match sign(&key, self.chain_id, next, next > 0, transfer(to)) {
                    Ok(bytes) => {
                        self.tally
                            .lock()
                            .expect("no client panicked")
                            .signed_in_window += 1;
                        pending.push_back(bytes);
                    }
                    Err(_) => return,
                }
            }
            let sending: Vec<Vec<u8>> = pending.iter().take(self.batch).cloned().collect();
            let outcomes = self.submit(&sending).await;
            let mut advanced = 0;
            {
                let mut tally = self.tally.lock().expect("no client panicked");
                for outcome in &outcomes {
                    match outcome {
                        Ok(latency) => {
                            tally.latencies.push(*latency);
                            *tally.per_zone.entry(self.zone.clone()).or_default() += 1;
                        }
                        Err(code) => *tally.errors.entry(code.clone()).or_default() += 1,
                    }
                }
            }
            for outcome in &outcomes {
                match outcome {
                    Ok(_) => advanced += 1,
                    Err(code) if code == "replayed_nonce" => advanced += 1,
                    Err(_) => break,
                }
            }
            for _ in 0..advanced {
                pending.pop_front();
            }
            nonce += advanced as u64;
            if advanced < outcomes.len() || outcomes.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Posts `txs` (one to `/v1/tx`, several to `/v1/txs`) with `?wait=commit`.
    async fn submit(&self, txs: &[Vec<u8>]) -> Vec<ItemOutcome> {
        let sent = Instant::now();
        let request = if txs.len() == 1 {
            self.http.post(&self.tx_url).body(txs[0].clone())
        } else {
            let body = agora_api::SubmitBatchRequest {
                txs: txs.iter().map(hex::encode).collect(),
            };
            self.http.post(&self.txs_url).json(&body)
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(_) => return vec![Err("unreachable".into())],
        };
        let status = response.status().as_u16();
        let body: serde_json::Value = match response.json().await {
            Ok(body) => body,
            Err(_) => return vec![Err("unreadable".into())],
        };
        let latency = sent.elapsed();
        if status != 200 {
            let code = body["code"].as_str().unwrap_or("unreadable").to_string();
            return vec![Err(code)];
        }
        if txs.len() == 1 {
            return vec![Ok(latency)];
        }
        match serde_json::from_value::<agora_api::SubmitBatchResponse>(body) {
            Ok(answer) => answer
                .results
                .into_iter()
                .map(|item| match item {
                    agora_api::BatchItem::Submitted(_) => Ok(latency),
                    agora_api::BatchItem::Failed { code, .. } => Err(code),
                })
                .collect(),
            Err(_) => vec![Err("unreadable".into())],
        }
    }
}

/// The CPU time (user + system) process `pid` has used, from `/proc/PID/stat` (in
/// `USER_HZ`, which is 100 on Linux's supported architectures).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: the fields start after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}
