//! `agora-load`: the cluster load generator. It funds fresh accounts from one funded key,
//! then runs one closed-loop client per account (sign a transfer, submit it with
//! `?wait=commit`, repeat) against the given nodes for a fixed time, and reports committed
//! transactions per second and commit latency percentiles.
//!
//! Example, with `agora-node devnet` running:
//!   agora-load --funder devnet/demo.key --node http://127.0.0.1:8100 \
//!       --node http://127.0.0.1:8101 --node http://127.0.0.1:8102 --clients 64 --seconds 30

use agora_cli::client::{sign, Failure, Node};
use agora_cli::keyfile;
use agora_core::tx::Action;
use agora_core::{AccountId, Amount, Hash32, KeyKind, SecretKey};
use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
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
    /// Concurrent clients, each with an account of its own.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// ML-DSA parameter set of the client accounts.
    #[arg(long, default_value = "ml-dsa-44")]
    kind: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
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

fn run(args: &Args) -> Result<()> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let kind = KeyKind::from_name(&args.kind).context("unknown key kind")?;
    let nodes: Vec<Node> = args.nodes.iter().map(|n| Node::new(n)).collect();
    let funder = keyfile::load(&args.funder)?;
    let chain_id = nodes[0].chain_id().map_err(failure)?;
    let clients: Vec<SecretKey> = (0..args.clients)
        .map(|_| {
            let mut seed = [0u8; 32];
            rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut seed)
                .map_err(|e| anyhow!("no OS randomness: {e}"))?;
            Ok(SecretKey::from_seed(kind, seed))
        })
        .collect::<Result<_>>()?;
    fund(&nodes[0], &funder, &clients)?;
    eprintln!(
        "funded {} clients; loading for {} s",
        clients.len(),
        args.seconds
    );

    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    std::thread::scope(|scope| {
        for (i, key) in clients.iter().enumerate() {
            let node = &nodes[i % nodes.len()];
            let tally = &tally;
            let to = AccountId::from_public_key(clients[(i + 1) % clients.len()].public_key());
            scope.spawn(move || client_loop(node, key, chain_id, to, deadline, tally));
        }
    });
    let elapsed = started.elapsed();
    let mut tally = tally.into_inner().expect("no client panicked");
    tally.latencies.sort();
    let committed = tally.latencies.len();
    let percentile = |p: usize| -> f64 {
        if committed == 0 {
            return 0.0;
        }
        tally.latencies[((committed - 1) * p) / 100].as_secs_f64() * 1_000.0
    };
    let report = json!({
        "clients": args.clients,
        "nodes": args.nodes,
        "seconds": elapsed.as_secs_f64(),
        "committed": committed,
        "committed_per_second": committed as f64 / elapsed.as_secs_f64(),
        "latency_ms": { "p50": percentile(50), "p90": percentile(90), "p99": percentile(99), "max": percentile(100) },
        "errors": tally.errors,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{committed} transfers committed in {:.1} s by {} clients over {} node(s): {:.0} tx/s\ncommit latency ms: p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}\nerrors: {:?}",
            elapsed.as_secs_f64(),
            args.clients,
            args.nodes.len(),
            committed as f64 / elapsed.as_secs_f64(),
            percentile(50),
            percentile(90),
            percentile(99),
            percentile(100),
            tally.errors
        );
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
        node.submit(funder, action, true)
            .map_err(failure)
            .context("funding a client")?;
    }
    Ok(())
}

/// One client: transfer, wait for the commit, repeat until the deadline.
fn client_loop(
    node: &Node,
    key: &SecretKey,
    chain_id: Hash32,
    to: AccountId,
    deadline: Instant,
    tally: &Mutex<Tally>,
) {
    let mut nonce = 0;
    while Instant::now() < deadline {
        let action = Action::Transfer {
            to,
            amount: Amount(1),
        };
        let Ok(bytes) = sign(key, chain_id, nonce, nonce > 0, action) else {
            return;
        };
        let sent = Instant::now();
        let outcome = node.post_tx(bytes, true);
        let mut tally = tally.lock().expect("no client panicked");
        match outcome {
            Ok(answer) if answer.status == 200 => {
                tally.latencies.push(sent.elapsed());
                nonce += 1;
            }
            Ok(answer) => {
                let code = answer.code().to_string();
                *tally.errors.entry(code.clone()).or_default() += 1;
                drop(tally);
                if code == "replayed_nonce" {
                    // An earlier attempt did commit after all: move on.
                    nonce += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Err(_) => {
                *tally.errors.entry("unreachable".into()).or_default() += 1;
                drop(tally);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
