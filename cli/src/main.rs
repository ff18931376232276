//! `agora`: keys, transfers and queries against any node's HTTP API.
//!
//! Exit codes: 0 ok, 2 usage error, 3 transaction rejected, 4 node unreachable, 5 proof
//! not verified, 1 other.

use agora_core::encoding::Canonical;
use agora_core::state_tree::StateProof;
use agora_core::tx::{Action, Sender, Transaction, VoteChoice};
use agora_core::{AccountId, Amount, Hash32, KeyKind, SecretKey};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Decimal places shown for amounts: 1 token = 10^6 base units.
const DECIMALS: u32 = 6;

/// The member's tool for an Agora ledger.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The node's HTTP API.
    #[arg(
        long,
        global = true,
        env = "AGORA_NODE",
        default_value = "http://127.0.0.1:8100"
    )]
    node: String,
    /// Key file.
    #[arg(long, global = true, env = "AGORA_KEY", default_value = "agora.key")]
    key: PathBuf,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
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
        amount: String,
        /// Wait for the commit and print the receipt.
        #[arg(long)]
        wait: bool,
    },
    /// Lock tokens as stake (governance weight).
    ///
    /// Example: agora stake 100 --wait
    Stake {
        /// Amount in tokens.
        amount: String,
        /// Wait for the commit.
        #[arg(long)]
        wait: bool,
    },
    /// Start unbonding stake (spendable after the unbonding period).
    ///
    /// Example: agora unstake 40 --wait
    Unstake {
        /// Amount in tokens.
        amount: String,
        /// Wait for the commit.
        #[arg(long)]
        wait: bool,
    },
    /// Vote on an open proposal (a later vote replaces an earlier one).
    ///
    /// Example: agora vote 3 yes --wait
    Vote {
        /// Proposal id.
        proposal: u64,
        /// yes, no, abstain or veto.
        choice: String,
        /// Wait for the commit.
        #[arg(long)]
        wait: bool,
    },
    /// Validators with weights and reputation.
    Validators,
    /// A block and its receipts.
    ///
    /// Example: agora block 42
    Block {
        /// Height.
        height: u64,
    },
    /// Fetch a value with its Merkle proof and verify it locally.
    ///
    /// Example: agora proof account:3f2a...c9 --root <root from another node>
    Proof {
        /// globals, params, account:<id>, account_key:<id>, validator:<id>, proposal:<n>, vote:<n>:<id>.
        #[arg(value_name = "KEY")]
        state_key: String,
        /// Verify against this state root instead of the one the node reports.
        #[arg(long)]
        root: Option<String>,
    },
    /// The node's view of the cluster.
    Status,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a new key file (mode 0600).
    New {
        /// ML-DSA parameter set.
        #[arg(long, default_value = "ml-dsa-65")]
        kind: String,
    },
    /// Show the key's account id and public key.
    Show,
}

/// Failures with their exit codes.
enum Failure {
    NotVerified,
    Rejected(String),
    Unreachable(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Other(error)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
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

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Commands::Keys(KeysCommand::New { kind }) => {
            let kind = KeyKind::from_name(kind).ok_or_else(|| {
                anyhow!("unknown key kind {kind}; use ml-dsa-44, ml-dsa-65 or ml-dsa-87")
            })?;
            let mut seed = [0u8; 32];
            rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut seed)
                .map_err(|e| anyhow!("no OS randomness: {e}"))?;
            let key = SecretKey::from_seed(kind, seed);
            save_key(&cli.key, &key)?;
            print(
                cli,
                &serde_json::json!({ "account": AccountId::from_public_key(key.public_key()), "key_file": cli.key }),
                || {
                    format!(
                        "created {} for account {}",
                        cli.key.display(),
                        AccountId::from_public_key(key.public_key())
                    )
                },
            );
        }
        Commands::Keys(KeysCommand::Show) => {
            let key = load_key(&cli.key)?;
            let account = AccountId::from_public_key(key.public_key());
            print(
                cli,
                &serde_json::json!({ "account": account, "kind": key.kind(), "public_key": key.public_key() }),
                || format!("account {account} ({})", key.kind().name()),
            );
        }
        Commands::Account { id } => {
            let id = match id {
                Some(id) => id.clone(),
                None => AccountId::from_public_key(load_key(&cli.key)?.public_key()).to_string(),
            };
            let account = get(cli, &format!("/v1/accounts/{id}"))?;
            print(cli, &account, || {
                format!(
                    "account  {}\nbalance  {}\nstaked   {}\nnonce    {}\nat height {}",
                    account["account"].as_str().unwrap_or_default(),
                    tokens(&account["balance"]),
                    tokens(&account["staked"]),
                    account["nonce"],
                    account["at"]["height"]
                )
            });
        }
        Commands::Transfer { to, amount, wait } => {
            let to = AccountId(Hash32::from_hex(to).map_err(|e| anyhow!("{to}: {e}"))?);
            let amount = parse_tokens(amount)?;
            submit_and_report(cli, Action::Transfer { to, amount }, *wait)?;
        }
        Commands::Stake { amount, wait } => {
            let action = Action::Stake {
                amount: parse_tokens(amount)?,
            };
            submit_and_report(cli, action, *wait)?;
        }
        Commands::Unstake { amount, wait } => {
            let action = Action::Unstake {
                amount: parse_tokens(amount)?,
            };
            submit_and_report(cli, action, *wait)?;
        }
        Commands::Vote {
            proposal,
            choice,
            wait,
        } => {
            let choice = match choice.as_str() {
                "yes" => VoteChoice::Yes,
                "no" => VoteChoice::No,
                "abstain" => VoteChoice::Abstain,
                "veto" => VoteChoice::Veto,
                other => {
                    return Err(Failure::Other(anyhow!(
                        "{other}: vote yes, no, abstain or veto"
                    )))
                }
            };
            submit_and_report(
                cli,
                Action::Vote {
                    proposal: *proposal,
                    choice,
                },
                *wait,
            )?;
        }
        Commands::Validators => {
            let answer = get(cli, "/v1/validators")?;
            print(cli, &answer, || {
                let mut text = format!(
                    "{:<66} {:>8} {:>10} {:>8}\n",
                    "validator", "weight", "reputation", "blocks"
                );
                for v in answer["validators"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "{:<66} {:>8} {:>10} {:>8}\n",
                        v["validator"].as_str().unwrap_or_default(),
                        v["weight"],
                        v["base_reputation"],
                        v["blocks_proposed"]
                    ));
                }
                text.trim_end().to_string()
            });
        }
        Commands::Block { height } => {
            let answer = get(cli, &format!("/v1/blocks/{height}"))?;
            print(cli, &answer, || {
                let txs = answer["receipts"].as_array().map_or(0, Vec::len);
                let kind = if answer["block"].is_null() {
                    "no block (leader or configuration entry)"
                } else {
                    "block"
                };
                format!(
                    "height {height}: {kind}, {txs} transactions, state root {}",
                    answer["state_root"].as_str().unwrap_or_default()
                )
            });
        }
        Commands::Proof {
            state_key: key,
            root,
        } => {
            let answer = get(cli, &format!("/v1/proof?key={key}"))?;
            let root = match root {
                Some(root) => Hash32::from_hex(root).map_err(|e| anyhow!("--root {root}: {e}"))?,
                None => Hash32::from_hex(answer["at"]["state_root"].as_str().unwrap_or_default())
                    .map_err(|e| anyhow!("bad root from the node: {e}"))?,
            };
            let verified = verify_proof(&answer, &root);
            let report = serde_json::json!({ "key": key, "value": answer["value"], "root": root, "height": answer["at"]["height"], "verified": verified.is_ok(), "reason": verified.as_ref().err().map(|e| e.to_string()) });
            print(cli, &report, || match &verified {
                Ok(()) => format!(
                    "VERIFIED: {key} holds {} under root {root} (height {})",
                    answer["value"].as_str().unwrap_or_default(),
                    answer["at"]["height"]
                ),
                Err(error) => format!("NOT VERIFIED: {error}"),
            });
            if verified.is_err() {
                return Err(Failure::NotVerified);
            }
        }
        Commands::Status => {
            let status = get(cli, "/v1/status")?;
            print(cli, &status, || {
                format!(
                    "node {}\nrole {} (term {})\nleader {}\nheight {}  commit {}  applied {}\nstate root {}",
                    status["node"].as_str().unwrap_or_default(),
                    status["role"].as_str().unwrap_or_default(),
                    status["term"],
                    status["leader"].as_str().unwrap_or("none"),
                    status["height"],
                    status["commit_index"],
                    status["applied_index"],
                    status["state_root"].as_str().unwrap_or_default()
                )
            });
        }
    }
    Ok(())
}

fn submit_and_report(cli: &Cli, action: Action, wait: bool) -> Result<(), Failure> {
    let key = load_key(&cli.key)?;
    let answer = submit(cli, &key, action, wait)?;
    print(cli, &answer, || match answer["status"].as_str() {
        Some("committed") => format!(
            "committed at height {}: {}",
            answer["height"], answer["receipt"]["status"]
        ),
        _ => format!(
            "accepted: {}",
            answer["tx_hash"].as_str().unwrap_or_default()
        ),
    });
    if wait && answer["receipt"]["status"] != "applied" {
        return Err(Failure::Rejected(format!(
            "the transaction failed: {}",
            answer["receipt"]["status"]
        )));
    }
    Ok(())
}

/// Checks a `/v1/proof` answer against `root`, locally.
fn verify_proof(answer: &Value, root: &Hash32) -> Result<()> {
    let key =
        hex::decode(answer["key"].as_str().unwrap_or_default()).context("the key is not hex")?;
    let value = hex::decode(answer["value"].as_str().unwrap_or_default())
        .context("the value is not hex")?;
    let proof: StateProof =
        serde_json::from_value(answer["proof"].clone()).context("the proof is malformed")?;
    proof.verify(root, &key, &value).map_err(|e| anyhow!("{e}"))
}

fn print(cli: &Cli, value: &Value, human: impl FnOnce() -> String) {
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("serializes")
        );
    } else {
        println!("{}", human());
    }
}

/// Parses "12.5" into base units (6 decimals), refusing more precision than exists.
fn parse_tokens(text: &str) -> Result<Amount> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        bail!("{text}: expected an amount like 12 or 12.5");
    }
    if fraction.len() > DECIMALS as usize {
        bail!("{text}: at most {DECIMALS} decimals");
    }
    let scale = 10u128.pow(DECIMALS);
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse()? };
    let fraction: u128 = format!("{fraction:0<6}").parse()?;
    whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(fraction))
        .map(Amount)
        .ok_or_else(|| anyhow!("{text}: too large"))
}

/// Formats base units (a JSON decimal string) as tokens.
fn tokens(value: &Value) -> String {
    let units: u128 = value.as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
    let scale = 10u128.pow(DECIMALS);
    let fraction = format!("{:06}", units % scale);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{}", units / scale)
    } else {
        format!("{}.{fraction}", units / scale)
    }
}

fn save_key(path: &Path, key: &SecretKey) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(&key.to_key_file())?;
    Ok(())
}

fn load_key(path: &Path) -> Result<SecretKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| {
                format!(
                    "reading {} (create one with `agora keys new`)",
                    path.display()
                )
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by group or others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    SecretKey::from_key_file(&std::fs::read(path)?)
        .with_context(|| format!("{} is not an agora key file", path.display()))
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(40))
        .build()
        .expect("an HTTP client")
}

fn answer(
    response: reqwest::Result<reqwest::blocking::Response>,
    url: &str,
) -> Result<Value, Failure> {
    let response = response.map_err(|e| Failure::Unreachable(format!("{url}: {e}")))?;
    let status = response.status();
    let body: Value = response
        .json()
        .map_err(|e| Failure::Other(anyhow!("{url}: unreadable answer: {e}")))?;
    if status.is_success() {
        return Ok(body);
    }
    let message = format!(
        "{} ({}): {}",
        body["code"].as_str().unwrap_or("error"),
        status.as_u16(),
        body["message"].as_str().unwrap_or_default()
    );
    if status.is_client_error() {
        Err(Failure::Rejected(message))
    } else {
        Err(Failure::Unreachable(message))
    }
}

fn get(cli: &Cli, path: &str) -> Result<Value, Failure> {
    let url = format!("{}{path}", cli.node.trim_end_matches('/'));
    answer(client().get(&url).send(), &url)
}

/// Signs `action` with the next nonce (fetched from the node) and submits it.
fn submit(cli: &Cli, key: &SecretKey, action: Action, wait: bool) -> Result<Value, Failure> {
    let account_id = AccountId::from_public_key(key.public_key());
    let chain = get(cli, "/v1/chain")?;
    let chain_id = Hash32::from_hex(chain["chain_id"].as_str().unwrap_or_default())
        .map_err(|e| anyhow!("bad chain id from the node: {e}"))?;
    let account = get(cli, &format!("/v1/accounts/{account_id}"))?;
    let nonce = account["nonce"].as_u64().unwrap_or(0);
    let sender = if account["key_registered"] == true {
        Sender::Account(account_id)
    } else {
        Sender::Register(key.public_key().clone())
    };
    let mut randomness = [0u8; 32];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut randomness)
        .map_err(|e| anyhow!("no OS randomness: {e}"))?;
    let bytes = Transaction {
        chain_id,
        sender,
        nonce,
        action,
    }
    .sign(key, randomness)
    .to_canonical_bytes();
    let url = format!(
        "{}/v1/tx{}",
        cli.node.trim_end_matches('/'),
        if wait { "?wait=commit" } else { "" }
    );
    answer(client().post(&url).body(bytes).send(), &url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_and_tampered_ones_do_not() {
        use agora_core::vectors::{generate_all, VectorFile};
        let file: VectorFile = generate_all().remove(0);
        let mut ledger = agora_core::Ledger::from_genesis(&file.genesis);
        for entry in &file.entries {
            ledger.apply(&entry.entry).unwrap();
        }
        let key = agora_core::StateKey::Globals;
        let (value, proof) = ledger.prove(&key).unwrap();
        let answer = serde_json::json!({ "key": hex::encode(key.to_bytes()), "value": hex::encode(&value), "proof": proof });
        let root = ledger.state_root();
        verify_proof(&answer, &root).unwrap();
        let mut tampered_value = answer.clone();
        let mut bytes = value.clone();
        bytes[0] ^= 1;
        tampered_value["value"] = Value::String(hex::encode(bytes));
        assert!(verify_proof(&tampered_value, &root).is_err());
        let mut tampered_proof = answer.clone();
        tampered_proof["proof"]["siblings"][0] = Value::String("00".repeat(32));
        assert!(verify_proof(&tampered_proof, &root).is_err());
        assert!(
            verify_proof(&answer, &Hash32([1; 32])).is_err(),
            "another root"
        );
    }

    #[test]
    fn token_amounts_round_trip_in_base_units() {
        assert_eq!(parse_tokens("12.5").unwrap(), Amount(12_500_000));
        assert_eq!(parse_tokens("0.000001").unwrap(), Amount(1));
        assert_eq!(parse_tokens("7").unwrap(), Amount(7_000_000));
        assert!(parse_tokens("0.0000001").is_err());
        assert!(parse_tokens("1e3").is_err());
        assert!(parse_tokens("").is_err());
        assert_eq!(tokens(&Value::String("12500000".into())), "12.5");
        assert_eq!(tokens(&Value::String("7000000".into())), "7");
    }
}
