//! `agora`: the member's tool. It builds and signs transactions locally with agora-core
//! and talks to any node's HTTP API.
//!
//! Exit codes: 0 ok, 1 other failure, 2 usage error, 3 rejected (by the node or the
//! ledger), 4 node unreachable or unavailable, 5 a proof or a test vector did not verify.

use agora_cli::{client, format, governance, keyfile, lookup, settings, vectors, watch};

use agora_api::{
    AccountResponse, BlockResponse, ProofResponse, ProposalResponse, StatusResponse,
    ValidatorsResponse,
};
use agora_core::outcome::TxStatus;
use agora_core::tx::{Action, VoteChoice};
use agora_core::{AccountId, Amount, Hash32, KeyKind, SecretKey};
use anyhow::{anyhow, Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use client::{Failure, Node};
use format::{positive_tokens, print, tokens};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// The member's tool for an Agora ledger: keys, transfers, staking, governance, proofs.
///
/// Defaults come from flags, then AGORA_* variables, then the config file
/// (AGORA_CONFIG, else ~/.config/agora/config.toml: `node = "…"`, `key = "…"`).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The node's HTTP API [default: http://127.0.0.1:8100]. `vectors check` takes several
    /// (repeat the flag) and replays through them when given.
    #[arg(long, global = true, env = "AGORA_NODE", value_delimiter = ',')]
    node: Vec<String>,
    /// The zone to ask: one of the ledgers the node serves, by name (`agora-node zone
    /// list`, `GET /v1/zones`) [default: the node's first zone].
    #[arg(long, global = true, env = "AGORA_ZONE")]
    zone: Option<String>,
    /// Key file [default: agora.key].
    #[arg(long, global = true, env = "AGORA_KEY")]
    key: Option<PathBuf>,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Sign and send even when the account, as the node reports it, cannot cover the
    /// amount and the fee (without it such a command exits 3 before signing).
    #[arg(long, global = true)]
    force: bool,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Manage your key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Show an account (yours by default).
    ///
    /// Example: agora account
    Account {
        /// Account id (hex).
        id: Option<String>,
    },
    /// Send tokens.
    ///
    /// Example: agora transfer 3f2a...c9 12.5 --wait
    Transfer {
        /// Recipient account id (hex).
        to: String,
        /// Amount in tokens, e.g. 12.5 (6 decimals).
        #[arg(value_parser = positive_tokens)]
        amount: Amount,
        /// Wait for the commit and print the receipt.
        #[arg(long)]
        wait: bool,
    },
    /// Lock tokens as stake (governance weight).
    ///
    /// Example: agora stake 100 --wait
    Stake {
        /// Amount in tokens.
        #[arg(value_parser = positive_tokens)]
        amount: Amount,
        /// Wait for the commit.
        #[arg(long)]
        wait: bool,
    },
    /// Start unbonding stake (spendable after the unbonding period).
    ///
    /// Example: agora unstake 40 --wait
    Unstake {
        /// Amount in tokens.
        #[arg(value_parser = positive_tokens)]
        amount: Amount,
        /// Wait for the commit.
        #[arg(long)]
        wait: bool,
    },
    /// Open a governance proposal (escrows a deposit).
    #[command(subcommand)]
    Propose(governance::ProposeCommand),
    /// Vote on an open proposal (a later vote replaces an earlier one).
    ///
    /// Example: agora vote 3 yes --wait
    Vote {
        /// Proposal id.
        proposal: u64,
        /// Your choice.
        choice: Choice,
        /// Wait for the commit.
        #[arg(long)]
        wait: bool,
    },
    /// List or inspect proposals.
    #[command(subcommand)]
    Proposals(ProposalsCommand),
    /// Validators with weights and reputation.
    ///
    /// Example: agora validators --json
    Validators,
    /// A block and its receipts.
    ///
    /// Example: agora block 42
    Block {
        /// Height.
        height: u64,
    },
    /// Where a transaction stands: pending, or committed with its height, receipt and
    /// events. Exits 3 if the node does not know it.
    ///
    /// Examples: agora tx 9c1e...07
    ///           agora tx 9c1e...07 --wait --timeout 60
    Tx {
        /// The transaction id (64 hex digits), as `transfer` and the others print it.
        hash: String,
        /// Ask again until it is committed (exit 4 after --timeout).
        #[arg(long)]
        wait: bool,
        /// Seconds --wait waits.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Follow the node's event stream: commits, leader changes, proposal and validator
    /// changes, one line each (JSON lines with --json). Resumes by itself when the node
    /// ends the stream or the connection drops.
    ///
    /// Examples: agora watch
    ///           agora watch --from 100 --kind proposal,validators
    ///           agora watch --account 3f2a...c9 --count 10
    Watch {
        /// Start at this height (archived heights first, then live).
        #[arg(long)]
        from: Option<u64>,
        /// Only these kinds: commit, leader, proposal, validators (comma-separated).
        #[arg(long)]
        kind: Option<String>,
        /// Only what concerns this account (its transactions and events naming it).
        #[arg(long)]
        account: Option<String>,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Fetch a value with its Merkle proof and verify it locally.
    ///
    /// Examples: agora proof account:3f2a...c9
    ///           agora proof params --height 120 --root <root at 120 from another node>
    ///           agora proof account:3f2a...c9 --trustless --genesis devnet/genesis.json
    Proof {
        /// globals, params, account:<id>, account_key:<id>, validator:<id>, proposal:<n>, vote:<n>:<id>.
        #[arg(value_name = "KEY")]
        state_key: String,
        /// The value and proof as of this height (default: the current one).
        #[arg(long)]
        height: Option<u64>,
        /// Verify against this state root instead of the one the node reports.
        #[arg(long, conflicts_with = "trustless")]
        root: Option<String>,
        /// Trust nothing the node says: accept the value only at a height whose state
        /// root carries a commit certificate from the committee the genesis names (its
        /// changes followed through certificates), with the Merkle proof checked against
        /// that root. Reads at the newest certified height.
        #[arg(long, requires = "genesis", conflicts_with = "height")]
        trustless: bool,
        /// The trusted genesis file (for --trustless).
        #[arg(long, value_name = "FILE")]
        genesis: Option<std::path::PathBuf>,
        /// Start from a committee pinned out of band instead of the genesis one:
        /// HEIGHT:COMMITTEE_HASH (for --trustless).
        #[arg(long, value_name = "HEIGHT:HASH", requires = "trustless")]
        checkpoint: Option<String>,
    },
    /// The node's view of the cluster: role, term, leader, heights, state root. With
    /// --cluster, one row per node given with --node (repeat it), each asked itself.
    ///
    /// Examples: agora --node http://127.0.0.1:8101 status
    ///           agora --node http://127.0.0.1:8100 --node http://127.0.0.1:8101 status --cluster
    Status {
        /// Ask every --node and print one aligned row each.
        #[arg(long)]
        cluster: bool,
    },
    /// Regenerate or check the test vectors.
    #[command(subcommand)]
    Vectors(VectorsCommand),
    /// Print a shell completion script.
    ///
    /// Example: agora completions bash > ~/.local/share/bash-completion/completions/agora
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Choice {
    Yes,
    No,
    Abstain,
    Veto,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a new key file (mode 0600).
    ///
    /// Example: agora keys new --kind ml-dsa-65 --encrypt
    New {
        /// ML-DSA parameter set: ml-dsa-44, ml-dsa-65 or ml-dsa-87.
        #[arg(long, default_value = "ml-dsa-65")]
        kind: String,
        /// Encrypt the key with a passphrase (asked, or AGORA_PASSPHRASE).
        #[arg(long)]
        encrypt: bool,
    },
    /// Show the key's account id and public key.
    ///
    /// Example: agora --key me.key keys show
    Show,
    /// Copy an existing key file (plain or encrypted) to --key, mode 0600.
    ///
    /// Example: agora --key me.key keys import devnet/demo.key --encrypt
    Import {
        /// The key file to import.
        from: PathBuf,
        /// Encrypt the imported key with a passphrase (AGORA_NEW_PASSPHRASE, or asked).
        #[arg(long)]
        encrypt: bool,
    },
}

#[derive(Subcommand)]
enum ProposalsCommand {
    /// Proposals, newest first.
    ///
    /// Example: agora proposals list --status voting
    List {
        /// Only this status.
        #[arg(long)]
        status: Option<StatusFilter>,
    },
    /// One proposal: its votes and its tally against quorum and thresholds.
    ///
    /// Example: agora proposals show 3
    Show {
        /// Proposal id.
        id: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
enum StatusFilter {
    Voting,
    Passed,
    ExecutionFailed,
    Rejected,
    Vetoed,
    QuorumNotMet,
}

impl StatusFilter {
    fn name(self) -> &'static str {
        match self {
            StatusFilter::Voting => "voting",
            StatusFilter::Passed => "passed",
            StatusFilter::ExecutionFailed => "execution_failed",
            StatusFilter::Rejected => "rejected",
            StatusFilter::Vetoed => "vetoed",
            StatusFilter::QuorumNotMet => "quorum_not_met",
        }
    }
}

#[derive(Subcommand)]
enum VectorsCommand {
    /// Write every test vector into DIR.
    ///
    /// Example: agora vectors generate vectors
    Generate {
        /// Output directory.
        dir: PathBuf,
    },
    /// Replay vectors through agora-core here, or, given --node on the command line,
    /// through that live replay cluster (`agora-node devnet --vector FILE`; repeat --node
    /// for each of its nodes, replays go to whichever leads; of a directory, the vector of
    /// the cluster's chain is checked). Reports the first divergence: height, what
    /// differs, expected and actual.
    ///
    /// Examples: agora vectors check vectors
    ///           agora vectors check vectors/failures.json --node http://127.0.0.1:8100 --node http://127.0.0.1:8101
    Check {
        /// A vector file, or a directory of them.
        path: PathBuf,
    },
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let nodes_given = matches.value_source("node") == Some(clap::parser::ValueSource::CommandLine);
    match run(&cli, nodes_given) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::NotVerified) => ExitCode::from(5),
        Err(Failure::Rejected(message)) => {
            eprintln!("rejected: {message}");
            ExitCode::from(3)
        }
        Err(Failure::Unreachable(message)) => {
            eprintln!("node unreachable: {message}");
            ExitCode::from(4)
        }
        Err(Failure::Other(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Flags, environment and the config file, resolved.
struct Cx {
    nodes: Vec<String>,
    /// Whether --node was on the command line.
    nodes_given: bool,
    key: PathBuf,
    json: bool,
    force: bool,
    zone: Option<String>,
}

impl Cx {
    fn node(&self) -> Node {
        self.node_at(&self.nodes[0])
    }

    /// The node at `url`, asked about the zone given.
    fn node_at(&self, url: &str) -> Node {
        Node::new(url).in_zone(self.zone.as_deref())
    }

    fn load_key(&self) -> Result<SecretKey> {
        keyfile::load(&self.key)
    }

    fn print(&self, value: &impl serde::Serialize, human: impl FnOnce() -> String) {
        print(self.json, value, human)
    }

    fn submit(&self, action: Action, wait: bool) -> Result<(), Failure> {
        let key = self.load_key()?;
        let answer = self.node().submit(&key, action, wait, self.force)?;
        let status = answer
            .receipt
            .as_ref()
            .map(|receipt| serde_json::to_string(&receipt.status).expect("serializes"));
        self.print(&answer, || match (&answer.height, &status) {
            (Some(height), Some(status)) => format!("committed at height {height}: {status}"),
            _ => format!("accepted: {}", answer.tx_hash),
        });
        let applied = answer
            .receipt
            .as_ref()
            .is_some_and(|receipt| receipt.status == TxStatus::Applied);
        if wait && !applied {
            return Err(Failure::Rejected(format!(
                "the transaction failed: {}",
                status.unwrap_or_default()
            )));
        }
        Ok(())
    }
}

fn run(cli: &Cli, nodes_given: bool) -> Result<(), Failure> {
    let settings = settings::load()?;
    let nodes = if cli.node.is_empty() {
        vec![settings
            .node
            .unwrap_or_else(|| "http://127.0.0.1:8100".into())]
    } else {
        cli.node.clone()
    };
    let cx = Cx {
        nodes,
        nodes_given,
        key: cli
            .key
            .clone()
            .or(settings.key)
            .unwrap_or_else(|| "agora.key".into()),
        json: cli.json,
        force: cli.force,
        zone: cli.zone.clone(),
    };
    match &cli.command {
        Commands::Keys(command) => keys(&cx, command)?,
        Commands::Account { id } => {
            let id = match id {
                Some(id) => id.clone(),
                None => AccountId::from_public_key(cx.load_key()?.public_key()).to_string(),
            };
            let account: AccountResponse = cx.node().get(&format!("/v1/accounts/{id}"))?;
            cx.print(&account, || {
                format!(
                    "account  {}\nbalance  {}\nstaked   {}\nnonce    {}\nat height {}",
                    account.account,
                    tokens(account.balance),
                    tokens(account.staked),
                    account.nonce,
                    account.at.height
                )
            });
        }
        Commands::Transfer { to, amount, wait } => {
            let to = AccountId(Hash32::from_hex(to).map_err(|e| anyhow!("{to}: {e}"))?);
            let amount = *amount;
            cx.submit(Action::Transfer { to, amount }, *wait)?;
        }
        Commands::Stake { amount, wait } => {
            let amount = *amount;
            cx.submit(Action::Stake { amount }, *wait)?;
        }
        Commands::Unstake { amount, wait } => {
            let amount = *amount;
            cx.submit(Action::Unstake { amount }, *wait)?;
        }
        Commands::Propose(command) => {
            let (action, wait) = governance::action(command)?;
            cx.submit(action, wait)?;
        }
        Commands::Vote {
            proposal,
            choice,
            wait,
        } => {
            let choice = match choice {
                Choice::Yes => VoteChoice::Yes,
                Choice::No => VoteChoice::No,
                Choice::Abstain => VoteChoice::Abstain,
                Choice::Veto => VoteChoice::Veto,
            };
            let proposal = *proposal;
            cx.submit(Action::Vote { proposal, choice }, *wait)?;
        }
        Commands::Proposals(ProposalsCommand::List { status }) => {
            let answer = cx.node().get("/v1/proposals")?;
            let (json, text) = governance::list(&answer, status.map(StatusFilter::name));
            cx.print(&json, || text);
        }
        Commands::Proposals(ProposalsCommand::Show { id }) => {
            let answer: ProposalResponse = cx.node().get(&format!("/v1/proposals/{id}"))?;
            let text = governance::show(&answer)?;
            cx.print(&answer, || text);
        }
        Commands::Validators => {
            let answer: ValidatorsResponse = cx.node().get("/v1/validators")?;
            cx.print(&answer, || agora_cli::format::validators_table(&answer));
        }
        Commands::Block { height } => {
            let answer: BlockResponse = cx.node().get(&format!("/v1/blocks/{height}"))?;
            cx.print(&answer, || {
                let txs = answer.receipts.len();
                let kind = if answer.block.is_none() {
                    "no block (leader or configuration entry)"
                } else {
                    "block"
                };
                format!(
                    "height {height}: {kind}, {txs} transactions, state root {}",
                    answer.state_root
                )
            });
        }
        Commands::Watch {
            from,
            kind,
            account,
            count,
        } => {
            watch::Watch {
                events_url: cx.node().route("/v1/events"),
                from: *from,
                kinds: kind.clone(),
                account: account.clone(),
                count: *count,
                json: cx.json,
            }
            .run()?;
        }
        Commands::Tx {
            hash,
            wait,
            timeout,
        } => {
            let hash = agora_api::parse_tx_hash(hash)
                .map_err(|e| Failure::Other(anyhow!("{}", e.message)))?;
            let answer = lookup::lookup(
                &cx.node(),
                &hash,
                *wait,
                std::time::Duration::from_secs(*timeout),
            )?;
            cx.print(&answer, || lookup::describe(&answer));
        }
        Commands::Proof {
            state_key: key,
            trustless: true,
            genesis: Some(genesis),
            checkpoint,
            ..
        } => trustless_proof(&cx, key, genesis, checkpoint.as_deref())?,
        Commands::Proof {
            state_key: key,
            height,
            root,
            ..
        } => {
            let at = height.map(|h| format!("&height={h}")).unwrap_or_default();
            let answer: ProofResponse = cx.node().get(&format!("/v1/proof?key={key}{at}"))?;
            let root = match root {
                Some(root) => Hash32::from_hex(root).map_err(|e| anyhow!("--root {root}: {e}"))?,
                None => answer.at.state_root,
            };
            // Decoded only once verified: what is shown is what the root vouches for, and
            // a value that does not decode as its key's type is not accepted either.
            let verified = verify_proof(&answer, &root).and_then(|()| {
                let (key_bytes, value) = answer.decode().context("the key or value is not hex")?;
                agora_cli::state_value::describe(&key_bytes, &value)
            });
            let report = json!({ "key": key, "value": answer.value, "decoded": verified.as_ref().ok().map(|d| &d.0), "root": root, "height": answer.at.height, "verified": verified.is_ok(), "reason": verified.as_ref().err().map(|e| e.to_string()) });
            cx.print(&report, || match &verified {
                Ok((_, text)) => format!(
                    "VERIFIED: {key} under root {root} (height {})\n{text}",
                    answer.at.height
                ),
                Err(error) => format!("NOT VERIFIED: {error:#}"),
            });
            if verified.is_err() {
                return Err(Failure::NotVerified);
            }
        }
        Commands::Status { cluster: true } => {
            let rows: Vec<(String, Result<StatusResponse, Failure>)> = cx
                .nodes
                .iter()
                .map(|url| {
                    (
                        url.clone(),
                        cx.node_at(url).get::<StatusResponse>("/v1/status"),
                    )
                })
                .collect();
            let json: Vec<serde_json::Value> = rows
                .iter()
                .map(|(url, status)| match status {
                    Ok(status) => json!({ "url": url, "reachable": true, "status": status }),
                    Err(error) => {
                        json!({ "url": url, "reachable": false, "error": error.to_string() })
                    }
                })
                .collect();
            cx.print(&json, || agora_cli::format::cluster_table(&rows));
        }
        Commands::Status { cluster: false } => {
            let status: StatusResponse = cx.node().get("/v1/status")?;
            cx.print(&status, || {
                let role = serde_json::to_value(status.role).expect("serializes");
                format!(
                    "node {}\nrole {}{} (term {})\nleader {}\nheight {}  commit {}  applied {}\nstate root {}",
                    status.node,
                    role.as_str().unwrap_or_default(),
                    if status.witness {
                        ", a witness: it keeps the log and votes, it does not execute the ledger"
                    } else {
                        ""
                    },
                    status.term,
                    status.leader.map_or("none".to_string(), |l| l.to_string()),
                    status.height,
                    status.commit_index,
                    status.applied_index,
                    status.state_root
                )
            });
        }
        Commands::Vectors(command) => vectors_command(&cx, command)?,
        Commands::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "agora", &mut std::io::stdout());
        }
    }
    Ok(())
}

fn keys(cx: &Cx, command: &KeysCommand) -> Result<()> {
    let (key, verb) = match command {
        KeysCommand::Show => {
            let key = cx.load_key()?;
            let account = AccountId::from_public_key(key.public_key());
            cx.print(
                &json!({ "account": account, "kind": key.kind(), "public_key": key.public_key() }),
                || format!("account {account} ({})", key.kind().name()),
            );
            return Ok(());
        }
        KeysCommand::New { kind, encrypt } => {
            let kind = KeyKind::from_name(kind).ok_or_else(|| {
                anyhow!("unknown key kind {kind}; use ml-dsa-44, ml-dsa-65 or ml-dsa-87")
            })?;
            let mut seed = [0u8; 32];
            rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut seed)
                .map_err(|e| anyhow!("no OS randomness: {e}"))?;
            let key = SecretKey::from_seed(kind, seed);
            let passphrase = encrypt.then(keyfile::new_passphrase).transpose()?;
            keyfile::save(&cx.key, &key, passphrase)?;
            (key, "created")
        }
        KeysCommand::Import { from, encrypt } => {
            let bytes =
                std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
            let key = keyfile::decode(from, &bytes)?;
            let passphrase = encrypt.then(keyfile::new_passphrase).transpose()?;
            keyfile::save(&cx.key, &key, passphrase)?;
            (key, "imported into")
        }
    };
    let account = AccountId::from_public_key(key.public_key());
    cx.print(
        &json!({ "account": account, "key_file": cx.key, "encrypted": keyfile::is_encrypted(&std::fs::read(&cx.key)?) }),
        || format!("{verb} {} for account {account}", cx.key.display()),
    );
    Ok(())
}

fn vectors_command(cx: &Cx, command: &VectorsCommand) -> Result<(), Failure> {
    match command {
        VectorsCommand::Generate { dir } => {
            let paths = vectors::generate(dir)?;
            cx.print(&json!({ "written": paths }), || {
                format!("wrote {} vector files to {}", paths.len(), dir.display())
            });
            Ok(())
        }
        VectorsCommand::Check { path } => {
            let nodes: Vec<Node> = cx.nodes.iter().map(|n| cx.node_at(n)).collect();
            let mut files = vectors::files(path)?;
            if cx.nodes_given {
                files = vectors::for_cluster(files, &nodes)?;
            }
            let total = files.iter().map(|(_, f)| f.entries.len() as u64).sum();
            let bar = vectors::progress_bar(total);
            let mut reports = Vec::new();
            let mut failed = 0;
            for (path, file) in &files {
                bar.set_message(file.name.clone());
                let result = if cx.nodes_given {
                    vectors::check_live(file, &nodes, &bar)?
                } else {
                    let result = agora_core::vectors::check(file);
                    bar.inc(file.entries.len() as u64);
                    result
                };
                failed += usize::from(result.is_err());
                reports.push(vectors::report(path, file, &result));
            }
            bar.finish_and_clear();
            let through = if cx.nodes_given {
                format!("the cluster at {}", cx.nodes.join(", "))
            } else {
                "agora-core".to_string()
            };
            cx.print(&json!({ "through": through, "vectors": reports }), || {
                let mut text = String::new();
                for report in &reports {
                    match report["divergence"].as_str() {
                        None => text.push_str(&format!(
                            "ok    {:<32} {:>3} entries\n",
                            report["name"].as_str().unwrap_or_default(),
                            report["entries"]
                        )),
                        Some(divergence) => text.push_str(&format!(
                            "FAIL  {:<32} {divergence}\n",
                            report["name"].as_str().unwrap_or_default()
                        )),
                    }
                }
                text.push_str(&format!(
                    "{} passed, {failed} failed, through {through}",
                    reports.len() - failed
                ));
                text
            });
            if failed > 0 {
                return Err(Failure::NotVerified);
            }
            Ok(())
        }
    }
}

/// `agora proof KEY --trustless`: the light client, from the genesis (or a checkpoint).
fn trustless_proof(
    cx: &Cx,
    key: &str,
    genesis: &std::path::Path,
    checkpoint: Option<&str>,
) -> Result<(), Failure> {
    let state_key = agora_api::parse_state_key(key).map_err(|e| Failure::Rejected(e.message))?;
    let node = cx.node();
    let mut source = agora_cli::light::NodeSource::new(&node);
    let mut client = agora_cli::light::client_from(genesis, checkpoint, &mut source)?;
    let chain_id = client.chain_id();
    let verified = agora_cli::light::verified_value(&mut client, &mut source, &state_key)
        .map_err(|e| agora_cli::light::refused(chain_id, e))?;
    let (decoded, text) = agora_cli::state_value::describe(&state_key.to_bytes(), &verified.value)
        .context("the value does not decode as its key's type")?;
    let report = json!({
        "key": key,
        "value": hex::encode(&verified.value),
        "decoded": decoded,
        "text": text,
        "height": verified.height,
        "root": verified.state_root,
        "verified": true,
        "trustless": true,
        "certificates_checked": client.certificates_checked,
        "trusted_committee_height": client.trusted_height(),
        "requests": source.requests,
        "bytes": source.bytes,
    });
    cx.print(&report, || {
        format!(
            "VERIFIED WITHOUT TRUSTING THE NODE: {key} at certified height {} under root {}\n  chain {chain_id}; {} certificate(s) checked from the trusted committee, {} request(s), {} bytes\n{text}",
            verified.height,
            verified.state_root,
            client.certificates_checked,
            source.requests,
            source.bytes
        )
    });
    Ok(())
}

/// Checks a `/v1/proof` answer against `root`, locally.
fn verify_proof(answer: &ProofResponse, root: &Hash32) -> Result<()> {
    let (key, value) = answer.decode().context("the key or value is not hex")?;
    answer
        .proof
        .verify(root, &key, &value)
        .map_err(|e| anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_and_tampered_ones_do_not() {
        use agora_core::vectors::VectorFile;
        use agora_testkit::generate_all;
        let file: VectorFile = generate_all().remove(0);
        let mut ledger = agora_core::Ledger::from_genesis(&file.genesis);
        for entry in &file.entries {
            ledger.apply(&entry.entry).unwrap();
        }
        let key = agora_core::StateKey::Globals;
        let (value, proof) = ledger.prove(&key).unwrap();
        let root = ledger.state_root();
        let answer = ProofResponse {
            key: hex::encode(key.to_bytes()),
            value: hex::encode(&value),
            proof,
            at: agora_api::At {
                height: ledger.height(),
                state_root: root,
            },
        };
        verify_proof(&answer, &root).unwrap();
        let mut tampered_value = answer.clone();
        let mut bytes = value.clone();
        bytes[0] ^= 1;
        tampered_value.value = hex::encode(bytes);
        assert!(verify_proof(&tampered_value, &root).is_err());
        let mut tampered_proof = answer.clone();
        tampered_proof.proof.siblings[0] = Hash32::ZERO;
        assert!(verify_proof(&tampered_proof, &root).is_err());
        assert!(
            verify_proof(&answer, &Hash32([1; 32])).is_err(),
            "another root"
        );
    }
}
