//! `agora-node`: the operator's binary.

use agora_core::genesis::{Genesis, GenesisAccount, GenesisValidator, GenesisWitness};
use agora_core::vectors::VectorFile;
use agora_core::{AccountId, Amount, KeyKind, PublicKey, SecretKey};
use agora_node::config::NodeConfig;
use agora_node::{keys, node, zones};
use agora_testkit::{seeded_key, VALIDATOR_PEER_IDS};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
        /// validator.json files written by `init`, of nodes that join as witnesses: they
        /// vote and keep the log, never lead, do not execute the ledger.
        #[arg(long = "witness")]
        witnesses: Vec<PathBuf>,
        /// The consensus weight of each witness.
        #[arg(long, default_value_t = 10)]
        witness_weight: u64,
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
        #[command(flatten)]
        flags: NodeConfig,
    },
    /// Start a complete local cluster on loopback, with a funded demo account.
    ///
    /// With --vector, the cluster instead runs as the validators of a test vector's
    /// genesis, in replay mode, for `agora vectors check FILE --node URL`.
    ///
    /// Examples: agora-node devnet --nodes 3
    ///           agora-node devnet --vector vectors/failures.json
    Devnet {
        /// Validators to run (with --vector: the vector's validators).
        #[arg(long, default_value_t = 3, conflicts_with = "vector")]
        nodes: usize,
        /// Witnesses to run besides the validators (nodes after theirs): they vote and
        /// keep the log, never lead, do not execute the ledger.
        #[arg(long, default_value_t = 0, conflicts_with = "vector")]
        witnesses: usize,
        /// Zones every node serves: independent ledgers (agora-devnet, agora-devnet-2, …)
        /// with the same validators, each its own Raft group and database.
        #[arg(long, default_value_t = 1, conflicts_with = "vector")]
        zones: usize,
        /// Replay this test vector file on a cluster of its validators.
        #[arg(long)]
        vector: Option<PathBuf>,
        /// Where the devnet lives (reused if it exists); default devnet, or
        /// devnet-<vector name> with --vector.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// First libp2p port (node i listens on base + i).
        #[arg(long, default_value_t = 7100)]
        p2p_base_port: u16,
        /// First HTTP port (node i serves on base + i).
        #[arg(long, default_value_t = 8100)]
        http_base_port: u16,
    },
    /// A node's zones: the independent ledgers it serves besides its first.
    Zone {
        #[command(subcommand)]
        command: ZoneCommand,
    },
}

#[derive(Subcommand)]
enum ZoneCommand {
    /// Join a zone: its genesis goes into the node's data directory with a new database,
    /// and a running node starts serving it within a second, without a restart. The
    /// node's validator key must be a validator or a witness in the zone's genesis.
    ///
    /// Example: agora-node zone add --data-dir node1 --genesis zone-b.json
    Add {
        /// The node's data directory.
        #[arg(long, env = "AGORA_DATA_DIR")]
        data_dir: PathBuf,
        /// The zone's genesis (its chain name is the zone's name).
        #[arg(long)]
        genesis: PathBuf,
        /// Addresses of the zone's validators that the node's own peers do not name, each
        /// ending in /p2p/<peer id> (repeat the flag).
        #[arg(long = "peer")]
        peers: Vec<String>,
    },
    /// List the zones in a node's data directory (besides the one its genesis names).
    ///
    /// Example: agora-node zone list --data-dir node1
    List {
        /// The node's data directory.
        #[arg(long, env = "AGORA_DATA_DIR")]
        data_dir: PathBuf,
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
    // First: a build for a newer CPU would otherwise die of an illegal instruction.
    if let Err(error) = agora_node::cpu::check() {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
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
            witnesses,
            witness_weight,
            accounts,
            out,
        } => genesis(
            &chain_name,
            (&validators, &witnesses, witness_weight),
            &accounts,
            &out,
        ),
        Commands::Run { config, flags } => {
            let file = match config {
                Some(path) => NodeConfig::load(&path),
                None => Ok(NodeConfig::default()),
            };
            file.and_then(|file| {
                runtime().block_on(node::run(
                    file.overridden_by(flags),
                    node::shutdown_signal(),
                ))
            })
        }
        Commands::Zone { command } => zone(command),
        Commands::Devnet {
            nodes,
            witnesses,
            zones,
            vector,
            dir,
            p2p_base_port,
            http_base_port,
        } => {
            let ports = Ports {
                p2p: p2p_base_port,
                http: http_base_port,
            };
            match vector {
                Some(vector) => replay_devnet(&vector, dir, ports),
                None => devnet(
                    (nodes, witnesses, zones),
                    &dir.unwrap_or_else(|| "devnet".into()),
                    ports,
                ),
            }
        }
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
        // Colour on a terminal only: devnet's node.log files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
    // The database, with the record that this node has voted nowhere yet.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a tokio runtime")?
        .block_on(agora_node::sqlite::SqliteStore::create_new(
            &data_dir.join(agora_node::sqlite::STORE_FILE),
        ))?;
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
    (validators, witnesses, witness_weight): (&[PathBuf], &[PathBuf], u64),
    accounts: &[String],
    out: &Path,
) -> Result<()> {
    let read = |path: &PathBuf| -> Result<(ValidatorPublic, Vec<u8>)> {
        let public = read_public(path)?;
        let peer: libp2p::PeerId = public
            .peer_id
            .parse()
            .with_context(|| format!("{}: bad peer id", path.display()))?;
        Ok((public, peer.to_bytes()))
    };
    let mut genesis_validators = Vec::new();
    for path in validators {
        let (public, peer) = read(path)?;
        genesis_validators.push(GenesisValidator {
            public_key: public.public_key,
            peer,
            base_reputation: public.base_reputation,
        });
    }
    let mut genesis_witnesses = Vec::new();
    for path in witnesses {
        let (public, peer) = read(path)?;
        genesis_witnesses.push(GenesisWitness {
            public_key: public.public_key,
            peer,
            weight: witness_weight,
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
        witnesses: genesis_witnesses,
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

/// First ports of a local cluster: node `i` uses base + i.
#[derive(Clone, Copy)]
struct Ports {
    p2p: u16,
    http: u16,
}

impl Ports {
    fn listen(self, i: usize) -> String {
        format!("/ip4/127.0.0.1/tcp/{}", self.p2p + i as u16)
    }

    fn http(self, i: usize) -> String {
        format!("127.0.0.1:{}", self.http + i as u16)
    }
}

/// Writes each node's node.toml: its ports, the others' addresses.
fn write_node_configs(dir: &Path, addresses: &[String], ports: Ports, replay: bool) -> Result<()> {
    for i in 0..addresses.len() {
        let config = NodeConfig {
            data_dir: Some(PathBuf::from(".")),
            genesis: Some(PathBuf::from("../genesis.json")),
            listen: Some(ports.listen(i)),
            http: Some(ports.http(i)),
            peers: addresses
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| a.clone())
                .collect(),
            replay: replay.then_some(true),
            ..NodeConfig::default()
        };
        config.save(&dir.join(format!("node{i}")).join("node.toml"))?;
    }
    Ok(())
}

fn zone(command: ZoneCommand) -> Result<()> {
    match command {
        ZoneCommand::Add {
            data_dir,
            genesis,
            peers,
        } => {
            let key = keys::load_ml_dsa(&data_dir.join(keys::VALIDATOR_KEY_FILE))?;
            let name =
                runtime().block_on(zones::add(&data_dir, &genesis, &peers, key.public_key()))?;
            println!(
                "zone {name} added to {}; a running node serves it within a second at /v1/zones/{name}/…",
                data_dir.display()
            );
            Ok(())
        }
        ZoneCommand::List { data_dir } => {
            for name in zones::zone_names(&data_dir)? {
                let zone = zones::read_zone(&zones::zone_dir(&data_dir, &name))?;
                println!("{name}  chain {}", zone.genesis.chain_id());
            }
            Ok(())
        }
    }
}

fn devnet(
    (validators, witnesses, zone_count): (usize, usize, usize),
    dir: &Path,
    ports: Ports,
) -> Result<()> {
    if validators == 0 || validators + witnesses > 16 {
        bail!("--nodes must be at least 1, and --nodes plus --witnesses at most 16");
    }
    if zone_count == 0 || zone_count > zones::MAX_ZONES {
        bail!("--zones must be between 1 and {}", zones::MAX_ZONES);
    }
    let nodes = validators + witnesses;
    let genesis_path = dir.join("genesis.json");
    let demo_key_path = dir.join("demo.key");
    if !genesis_path.exists() {
        std::fs::create_dir_all(dir)?;
        let mut addresses = Vec::new();
        for i in 0..nodes {
            let public = init(
                &dir.join(format!("node{i}")),
                "ml-dsa-65",
                &ports.listen(i),
                10,
            )?;
            addresses.push(public.address);
        }
        let demo = keys::generate_ml_dsa(KeyKind::MlDsa65);
        keys::save_ml_dsa(&demo_key_path, &demo)?;
        let demo_account = AccountId::from_public_key(demo.public_key());
        let public_files: Vec<PathBuf> = (0..nodes)
            .map(|i| {
                dir.join(format!("node{i}"))
                    .join(keys::VALIDATOR_PUBLIC_FILE)
            })
            .collect();
        let (validator_files, witness_files) = public_files.split_at(validators);
        genesis(
            "agora-devnet",
            (validator_files, witness_files, 10),
            &[format!("{demo_account}=1000000000000")],
            &genesis_path,
        )?;
        write_node_configs(dir, &addresses, ports, false)?;
        // The other zones: the same members and demo account, chains of their own.
        for z in 2..=zone_count {
            let zone_genesis = dir.join(format!("genesis-zone{z}.json"));
            genesis(
                &format!("agora-devnet-{z}"),
                (validator_files, witness_files, 10),
                &[format!("{demo_account}=1000000000000")],
                &zone_genesis,
            )?;
            for i in 0..nodes {
                let node_dir = dir.join(format!("node{i}"));
                let key = keys::load_ml_dsa(&node_dir.join(keys::VALIDATOR_KEY_FILE))?;
                runtime().block_on(zones::add(&node_dir, &zone_genesis, &[], key.public_key()))?;
            }
        }
    }
    let children = start_nodes(dir, nodes)?;
    let demo = keys::load_ml_dsa(&demo_key_path)?;
    println!(
        "Agora devnet: {validators} validators and {witnesses} witnesses on loopback, data in {}",
        dir.display()
    );
    let added = zones::zone_names(&dir.join("node0"))?;
    if !added.is_empty() {
        println!(
            "Zones: agora-devnet (the unprefixed routes) and {}, each at /v1/zones/<zone>/…",
            added.join(", ")
        );
    }
    print_nodes(dir, nodes, ports);
    println!(
        "Demo account {} holds 1,000,000,000,000 base units; its key is {}",
        AccountId::from_public_key(demo.public_key()),
        demo_key_path.display()
    );
    println!("Try:  curl http://{}/v1/status", ports.http(0));
    println!(
        "      curl http://{}/v1/accounts/{}",
        ports.http(0),
        AccountId::from_public_key(demo.public_key())
    );
    wait_and_stop(dir, children)
}

/// The seeded test key of the vector validator with this public key.
fn vector_validator(public_key: &PublicKey) -> Option<(SecretKey, libp2p::identity::Keypair)> {
    (0..VALIDATOR_PEER_IDS.len()).find_map(|i| {
        let label = format!("validator-{i}");
        let key = seeded_key(public_key.kind(), &label);
        (key.public_key() == public_key).then(|| (key, keys::seeded_network_key(&label)))
    })
}

/// A cluster of a test vector's validators in replay mode.
fn replay_devnet(vector: &Path, dir: Option<PathBuf>, ports: Ports) -> Result<()> {
    let text =
        std::fs::read_to_string(vector).with_context(|| format!("reading {}", vector.display()))?;
    let file = VectorFile::from_json(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a vector file: {e}", vector.display()))?;
    let dir = dir.unwrap_or_else(|| format!("devnet-{}", file.name).into());
    let genesis_path = dir.join("genesis.json");
    let genesis_json = file.genesis.to_json();
    let nodes = file.genesis.validators.len();
    if genesis_path.exists() {
        if std::fs::read_to_string(&genesis_path)? != genesis_json {
            bail!(
                "{} holds another chain; remove it or pass --dir",
                dir.display()
            );
        }
    } else {
        let mut addresses = Vec::new();
        for (i, validator) in file.genesis.validators.iter().enumerate() {
            let (key, network) = vector_validator(&validator.public_key).with_context(|| {
                format!(
                    "validator {i} of {} is not one of the seeded test validators; only vectors from agora_core::vectors can be replayed",
                    vector.display()
                )
            })?;
            let node_dir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir)?;
            keys::save_ml_dsa(&node_dir.join(keys::VALIDATOR_KEY_FILE), &key)?;
            keys::save_network_key(&node_dir.join(keys::NETWORK_KEY_FILE), &network)?;
            addresses.push(format!(
                "{}/p2p/{}",
                ports.listen(i),
                network.public().to_peer_id()
            ));
        }
        std::fs::write(&genesis_path, genesis_json)?;
        write_node_configs(&dir, &addresses, ports, true)?;
    }
    let children = start_nodes(&dir, nodes)?;
    println!(
        "Agora replay devnet for {} ({nodes} validators, chain {}), data in {}",
        file.name,
        file.chain_id,
        dir.display()
    );
    print_nodes(&dir, nodes, ports);
    let urls: Vec<String> = (0..nodes)
        .map(|i| format!("--node http://{}", ports.http(i)))
        .collect();
    println!(
        "Check it:  agora vectors check {} {}",
        vector.display(),
        urls.join(" ")
    );
    wait_and_stop(&dir, children)
}

fn start_nodes(dir: &Path, nodes: usize) -> Result<Vec<std::process::Child>> {
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
    Ok(children)
}

fn print_nodes(dir: &Path, nodes: usize, ports: Ports) {
    for i in 0..nodes {
        println!(
            "  node{i}: http://{}  (log: {}/node{i}/node.log)",
            ports.http(i),
            dir.display()
        );
    }
}

/// Runs until Ctrl-C or SIGTERM, then stops every node gracefully. A node that exits on
/// its own (a port already taken, a corrupt database) stops the devnet: its log's last
/// lines are printed and the exit is an error, so nobody is left looking at a devnet with
/// a node missing.
fn wait_and_stop(dir: &Path, mut children: Vec<std::process::Child>) -> Result<()> {
    println!("Stop with Ctrl-C.");
    let exited = runtime().block_on(async {
        let mut poll = tokio::time::interval(std::time::Duration::from_millis(200));
        let signal = node::shutdown_signal();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => return None,
                _ = poll.tick() => {
                    for (i, child) in children.iter_mut().enumerate() {
                        if let Ok(Some(status)) = child.try_wait() {
                            return Some((i, status));
                        }
                    }
                }
            }
        }
    });
    for child in &mut children {
        #[cfg(unix)]
        if matches!(child.try_wait(), Ok(None)) {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        let _ = child.wait();
    }
    let Some((i, status)) = exited else {
        return Ok(());
    };
    let log = dir.join(format!("node{i}")).join("node.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    bail!(
        "node{i} exited ({status}); the devnet was stopped. The end of {}:\n{tail}",
        log.display()
    )
}
