//! `agora-node`: the operator's binary.

use agora_core::genesis::{Genesis, GenesisAccount, GenesisValidator};
use agora_core::{AccountId, Amount, KeyKind, Ledger, PublicKey};
use agora_node::api::{self, ApiState};
use agora_node::config::NodeConfig;
use agora_node::driver::{self, DriverConfig, DriverParts};
use agora_node::keys;
use agora_node::metrics::Metrics;
use agora_node::network::{self, NetworkConfig, NetworkCounters};
use agora_node::storage::sqlite::SqliteStore;
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Runs an Agora validator node.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "AGORA_LOG_FORMAT", default_value = "human")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Commands {
    /// Create a data directory with a new validator key and network identity.
    ///
    /// Example: agora-node init --data-dir ./node1 --listen /ip4/127.0.0.1/tcp/7001
    Init {
        /// The data directory to create.
        #[arg(long)]
        data_dir: PathBuf,
        /// ML-DSA parameter set of the validator key.
        #[arg(long, default_value = "ml-dsa-65")]
        key_kind: String,
        /// The libp2p address this node will listen on (recorded in validator.json).
        #[arg(long, default_value = "/ip4/127.0.0.1/tcp/7001")]
        listen: String,
        /// Base reputation to propose for this validator in the genesis.
        #[arg(long, default_value_t = 10)]
        base_reputation: u64,
    },
    /// Assemble a genesis file from validators' public files.
    ///
    /// Example: agora-node genesis --chain-name test --validator n1/validator.json --account <id>=1000000 --out genesis.json
    Genesis {
        /// A human name for the chain.
        #[arg(long)]
        chain_name: String,
        /// validator.json files written by `init`.
        #[arg(long = "validator", required = true)]
        validators: Vec<PathBuf>,
        /// Funded accounts as ID=AMOUNT (base units).
        #[arg(long = "account")]
        accounts: Vec<String>,
        /// Where to write the genesis.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a node.
    ///
    /// Example: agora-node run --config node1/node.toml
    Run {
        /// node.toml.
        #[arg(long, env = "AGORA_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory (overrides the file).
        #[arg(long, env = "AGORA_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Genesis file.
        #[arg(long, env = "AGORA_GENESIS")]
        genesis: Option<PathBuf>,
        /// libp2p listen address.
        #[arg(long, env = "AGORA_LISTEN")]
        listen: Option<String>,
        /// HTTP API address.
        #[arg(long, env = "AGORA_HTTP")]
        http: Option<String>,
        /// Peer addresses (repeat, or comma-separated in AGORA_PEERS).
        #[arg(long = "peer", env = "AGORA_PEERS", value_delimiter = ',')]
        peers: Vec<String>,
        /// Milliseconds per Raft tick.
        #[arg(long, env = "AGORA_TICK_MS")]
        tick_ms: Option<u64>,
        /// Applied entries between snapshots.
        #[arg(long, env = "AGORA_SNAPSHOT_INTERVAL")]
        snapshot_interval: Option<u64>,
    },
    /// Start a complete local cluster on loopback, with a funded demo account.
    ///
    /// Example: agora-node devnet --nodes 3
    Devnet {
        /// Validators to run.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Where the devnet lives (reused if it exists).
        #[arg(long, default_value = "devnet")]
        dir: PathBuf,
        /// First libp2p port (node i listens on base + i).
        #[arg(long, default_value_t = 7100)]
        p2p_base_port: u16,
        /// First HTTP port (node i serves on base + i).
        #[arg(long, default_value_t = 8100)]
        http_base_port: u16,
    },
}

/// The public file `init` writes for the genesis assembler.
#[derive(Serialize, Deserialize)]
struct ValidatorPublic {
    account: AccountId,
    public_key: PublicKey,
    peer_id: String,
    address: String,
    base_reputation: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Commands::Init {
            data_dir,
            key_kind,
            listen,
            base_reputation,
        } => init(&data_dir, &key_kind, &listen, base_reputation).map(|_| ()),
        Commands::Genesis {
            chain_name,
            validators,
            accounts,
            out,
        } => genesis(&chain_name, &validators, &accounts, &out),
        Commands::Run {
            config,
            data_dir,
            genesis,
            listen,
            http,
            peers,
            tick_ms,
            snapshot_interval,
        } => {
            let flags = NodeConfig {
                data_dir,
                genesis,
                listen,
                http,
                peers,
                tick_ms,
                snapshot_interval,
                mempool_capacity: None,
            };
            let file = match config {
                Some(path) => NodeConfig::load(&path),
                None => Ok(NodeConfig::default()),
            };
            file.and_then(|file| runtime().block_on(run(file.overridden_by(flags))))
        }
        Commands::Devnet {
            nodes,
            dir,
            p2p_base_port,
            http_base_port,
        } => devnet(nodes, &dir, p2p_base_port, http_base_port),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("AGORA_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn init(
    data_dir: &Path,
    key_kind: &str,
    listen: &str,
    base_reputation: u64,
) -> Result<ValidatorPublic> {
    let kind = KeyKind::from_name(key_kind).with_context(|| {
        format!("unknown key kind {key_kind}; use ml-dsa-44, ml-dsa-65 or ml-dsa-87")
    })?;
    if data_dir.join(keys::VALIDATOR_KEY_FILE).exists() {
        bail!(
            "{} already holds a validator key; refusing to overwrite it",
            data_dir.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let key = keys::generate_ml_dsa(kind);
    keys::save_ml_dsa(&data_dir.join(keys::VALIDATOR_KEY_FILE), &key)?;
    let network = libp2p::identity::Keypair::generate_ed25519();
    keys::save_network_key(&data_dir.join(keys::NETWORK_KEY_FILE), &network)?;
    let peer_id = network.public().to_peer_id();
    let public = ValidatorPublic {
        account: AccountId::from_public_key(key.public_key()),
        public_key: key.public_key().clone(),
        peer_id: peer_id.to_string(),
        address: format!("{listen}/p2p/{peer_id}"),
        base_reputation,
    };
    std::fs::write(
        data_dir.join(keys::VALIDATOR_PUBLIC_FILE),
        serde_json::to_string_pretty(&public)?,
    )?;
    println!(
        "initialized {}: validator {} peer {}",
        data_dir.display(),
        public.account,
        public.peer_id
    );
    Ok(public)
}

fn read_public(path: &Path) -> Result<ValidatorPublic> {
    serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))
}

fn genesis(
    chain_name: &str,
    validators: &[PathBuf],
    accounts: &[String],
    out: &Path,
) -> Result<()> {
    let mut genesis_validators = Vec::new();
    for path in validators {
        let public = read_public(path)?;
        let peer: libp2p::PeerId = public
            .peer_id
            .parse()
            .with_context(|| format!("{}: bad peer id", path.display()))?;
        genesis_validators.push(GenesisValidator {
            public_key: public.public_key,
            peer: peer.to_bytes(),
            base_reputation: public.base_reputation,
        });
    }
    let mut genesis_accounts = Vec::new();
    for spec in accounts {
        let (id, amount) = spec
            .split_once('=')
            .with_context(|| format!("{spec}: expected ID=AMOUNT"))?;
        let account = AccountId(
            agora_core::Hash32::from_hex(id).with_context(|| format!("{id}: not an account id"))?,
        );
        let balance = Amount(
            amount
                .parse()
                .with_context(|| format!("{amount}: not an amount in base units"))?,
        );
        genesis_accounts.push(GenesisAccount {
            account,
            balance,
            staked: Amount::ZERO,
        });
    }
    let genesis = Genesis {
        chain_name: chain_name.into(),
        params: Default::default(),
        accounts: genesis_accounts,
        validators: genesis_validators,
        treasury: Amount::ZERO,
    }
    .normalized()
    .context("the genesis is invalid")?;
    std::fs::write(out, genesis.to_json())?;
    println!("wrote {} (chain id {})", out.display(), genesis.chain_id());
    Ok(())
}

async fn run(config: NodeConfig) -> Result<()> {
    let data_dir = config
        .data_dir
        .clone()
        .context("no data directory: pass --data-dir, AGORA_DATA_DIR or data_dir in node.toml")?;
    let genesis_path = config
        .genesis
        .clone()
        .context("no genesis: pass --genesis, AGORA_GENESIS or genesis in node.toml")?;
    let genesis = Genesis::from_json(
        &std::fs::read_to_string(&genesis_path)
            .with_context(|| format!("reading {}", genesis_path.display()))?,
    )
    .with_context(|| format!("{} is not a valid genesis", genesis_path.display()))?;
    let key = keys::load_ml_dsa(&data_dir.join(keys::VALIDATOR_KEY_FILE))?;
    let network_key = keys::load_network_key(&data_dir.join(keys::NETWORK_KEY_FILE))?;
    let genesis_ledger = Ledger::from_genesis(&genesis);
    let store = SqliteStore::open(&data_dir.join("node.db")).await?;
    let listen: libp2p::Multiaddr = config
        .listen
        .as_deref()
        .unwrap_or("/ip4/127.0.0.1/tcp/7001")
        .parse()
        .context("bad listen address")?;
    let http = config
        .http
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8001".into());
    let peers: Vec<libp2p::Multiaddr> = config
        .peers
        .iter()
        .map(|p| p.parse().with_context(|| format!("bad peer address {p}")))
        .collect::<Result<_>>()?;

    let counters = Arc::new(NetworkCounters::default());
    let metrics = Arc::new(Metrics::new(counters.clone()));
    let (inbound_tx, inbound_rx) = mpsc::channel(4_096);
    let (outbound_tx, outbound_rx) = mpsc::channel(4_096);
    let (command_tx, command_rx) = mpsc::channel(1_024);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let validators = driver::peers_of(genesis_ledger.target_config());
    let network = network::spawn(
        NetworkConfig {
            keypair: network_key,
            listen: listen.clone(),
            peers,
            validators,
        },
        inbound_tx,
        outbound_rx,
        counters,
    )
    .await?;

    let listener = tokio::net::TcpListener::bind(&http)
        .await
        .with_context(|| format!("binding the HTTP API to {http}"))?;
    let router = api::router(ApiState {
        commands: command_tx,
        metrics: metrics.clone(),
    });
    let mut http_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.changed().await;
            })
            .await;
    });
    let driver_config = DriverConfig {
        tick: Duration::from_millis(config.tick_ms.unwrap_or(100)),
        snapshot_interval_entries: config.snapshot_interval.unwrap_or(1_000),
        mempool_capacity: config.mempool_capacity.unwrap_or(10_000),
        ..DriverConfig::default()
    };
    tracing::info!(node = %AccountId::from_public_key(key.public_key()), %listen, %http, chain = %genesis.chain_id(), "starting");
    let parts = DriverParts {
        key,
        genesis: genesis_ledger,
        store,
        config: driver_config,
        metrics,
        inbound: inbound_rx,
        outbound: outbound_tx,
        commands: command_rx,
        shutdown: shutdown_rx,
    };
    let mut driver = tokio::spawn(driver::run(parts));
    let result = tokio::select! {
        result = &mut driver => result,
        _ = shutdown_signal() => {
            tracing::info!("signal received: stopping (no new requests, flushing, closing)");
            let _ = shutdown_tx.send(true);
            driver.await
        }
    };
    let _ = shutdown_tx.send(true);
    let _ = server.await;
    network.abort();
    result.context("the driver task panicked")?
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn devnet(nodes: usize, dir: &Path, p2p_base: u16, http_base: u16) -> Result<()> {
    if nodes == 0 || nodes > 16 {
        bail!("--nodes must be between 1 and 16");
    }
    let genesis_path = dir.join("genesis.json");
    let demo_key_path = dir.join("demo.key");
    if !genesis_path.exists() {
        std::fs::create_dir_all(dir)?;
        let mut publics = Vec::new();
        for i in 0..nodes {
            let node_dir = dir.join(format!("node{i}"));
            publics.push(init(
                &node_dir,
                "ml-dsa-65",
                &format!("/ip4/127.0.0.1/tcp/{}", p2p_base + i as u16),
                10,
            )?);
        }
        let demo = keys::generate_ml_dsa(KeyKind::MlDsa65);
        keys::save_ml_dsa(&demo_key_path, &demo)?;
        let demo_account = AccountId::from_public_key(demo.public_key());
        let validator_files: Vec<PathBuf> = (0..nodes)
            .map(|i| {
                dir.join(format!("node{i}"))
                    .join(keys::VALIDATOR_PUBLIC_FILE)
            })
            .collect();
        genesis(
            "agora-devnet",
            &validator_files,
            &[format!("{demo_account}=1000000000000")],
            &genesis_path,
        )?;
        for i in 0..nodes {
            let node_dir = dir.join(format!("node{i}"));
            let peers = publics
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| p.address.clone())
                .collect();
            let config = NodeConfig {
                data_dir: Some(PathBuf::from(".")),
                genesis: Some(PathBuf::from("../genesis.json")),
                listen: Some(format!("/ip4/127.0.0.1/tcp/{}", p2p_base + i as u16)),
                http: Some(format!("127.0.0.1:{}", http_base + i as u16)),
                peers,
                ..NodeConfig::default()
            };
            config.save(&node_dir.join("node.toml"))?;
        }
    }
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 0..nodes {
        let node_dir = dir.join(format!("node{i}"));
        let log = std::fs::File::create(node_dir.join("node.log"))?;
        let child = std::process::Command::new(&exe)
            .args(["run", "--config"])
            .arg(node_dir.join("node.toml"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {i}"))?;
        children.push(child);
    }
    let demo = keys::load_ml_dsa(&demo_key_path)?;
    println!(
        "Agora devnet: {nodes} validators on loopback, data in {}",
        dir.display()
    );
    for i in 0..nodes {
        println!(
            "  node{i}: http://127.0.0.1:{}  (log: {}/node{i}/node.log)",
            http_base + i as u16,
            dir.display()
        );
    }
    println!(
        "Demo account {} holds 1,000,000,000,000 base units; its key is {}",
        AccountId::from_public_key(demo.public_key()),
        demo_key_path.display()
    );
    println!("Try:  curl http://127.0.0.1:{http_base}/v1/status");
    println!(
        "      curl http://127.0.0.1:{http_base}/v1/accounts/{}",
        AccountId::from_public_key(demo.public_key())
    );
    println!("Stop with Ctrl-C.");
    runtime().block_on(shutdown_signal());
    for child in &mut children {
        #[cfg(unix)]
        {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        let _ = child.wait();
    }
    Ok(())
}
