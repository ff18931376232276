//! Talking to a node's HTTP API, and the failures (with exit codes) that can come of it.

use crate::format::tokens;
use agora_api::{AccountResponse, ChainResponse, ErrorBody, SubmitResponse};
use agora_core::encoding::Canonical;
use agora_core::tx::{Action, Sender, Transaction};
use agora_core::{AccountId, Amount, Hash32, SecretKey};
use anyhow::anyhow;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long requests answered 503 (busy, no leader yet) are retried.
pub const BUSY_RETRY_LIMIT: Duration = Duration::from_secs(30);

/// Failures, each with its exit code.
#[derive(Debug)]
pub enum Failure {
    /// 5: a proof or a vector did not verify.
    NotVerified,
    /// 3: the node or the ledger refused the request.
    Rejected(String),
    /// 4: no answer from the node.
    Unreachable(String),
    /// 1: anything else.
    Other(anyhow::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotVerified => write!(f, "not verified"),
            Failure::Rejected(message) | Failure::Unreachable(message) => write!(f, "{message}"),
            Failure::Other(error) => write!(f, "{error:#}"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Other(error)
    }
}

/// One node's API.
pub struct Node {
    base: String,
    /// The zone asked (`/v1/…` routes go to `/v1/zones/<zone>/…`); none: the node's first.
    zone: Option<String>,
    http: reqwest::blocking::Client,
}

/// An answer the node gave: its status and JSON body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body (`{"code", "message"}` for errors).
    pub body: Value,
}

impl Answer {
    /// The error body of a failed request (a made-up one if the node sent none).
    pub fn error(&self) -> ErrorBody {
        serde_json::from_value(self.body.clone()).unwrap_or_else(|_| ErrorBody {
            code: "error".into(),
            message: self.body.to_string(),
        })
    }

    /// The error code of a failed request.
    pub fn code(&self) -> String {
        self.error().code
    }

    /// The answer as `T` on success; otherwise `Rejected` for 4xx and `Unreachable` for
    /// 5xx.
    pub fn into_result<T: DeserializeOwned>(self) -> Result<T, Failure> {
        if (200..300).contains(&self.status) {
            return serde_json::from_value(self.body)
                .map_err(|e| Failure::Other(anyhow!("the node's answer is malformed: {e}")));
        }
        let error = self.error();
        let message = format!("{} ({}): {}", error.code, self.status, error.message);
        if (400..500).contains(&self.status) {
            Err(Failure::Rejected(message))
        } else {
            Err(Failure::Unreachable(message))
        }
    }
}

impl Node {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:8100`).
    pub fn new(base: &str) -> Node {
        Node {
            base: base.trim_end_matches('/').to_string(),
            zone: None,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(40))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// The API's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The same node, asked about zone `zone` (`None`: the node's first zone).
    pub fn in_zone(mut self, zone: Option<&str>) -> Node {
        self.zone = zone.map(str::to_owned);
        self
    }

    /// The URL of `path` (a `/v1/…` route) in the zone asked.
    pub fn route(&self, path: &str) -> String {
        match (&self.zone, path.strip_prefix("/v1/")) {
            (Some(zone), Some(rest)) => format!("{}/v1/zones/{zone}/{rest}", self.base),
            _ => format!("{}{path}", self.base),
        }
    }

    /// Sends a request; any HTTP status is an answer, only a failed exchange is an error.
    /// A 503 (no leader yet, a full queue) is retried, backing off from 100 ms to its
    /// Retry-After, for up to
    /// [`BUSY_RETRY_LIMIT`]: every request the API serves is safe to repeat (a transaction
    /// takes effect once, by its nonce).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, Failure> {
        let url = self.route(path);
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = request
                .send()
                .map_err(|e| Failure::Unreachable(format!("{url}: {e}")))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs);
            let body: Value = response
                .json()
                .map_err(|e| Failure::Other(anyhow!("{url}: unreadable answer: {e}")))?;
            if status == 503 && started.elapsed() + retry_after < BUSY_RETRY_LIMIT {
                // Quick retries first (a leader is usually back within an election
                // timeout), then at the pace the node asks for.
                std::thread::sleep(backoff.min(retry_after));
                backoff = backoff.saturating_mul(2);
                continue;
            }
            return Ok(Answer { status, body });
        }
    }

    /// GET, successful answers only, as the API's type for them.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.request(reqwest::Method::GET, path, None)?
            .into_result()
    }

    /// The chain this node runs.
    pub fn chain_id(&self) -> Result<Hash32, Failure> {
        Ok(self.get::<ChainResponse>("/v1/chain")?.chain_id)
    }

    /// Posts signed transaction bytes; with `wait`, the answer comes once committed.
    pub fn post_tx(&self, bytes: Vec<u8>, wait: bool) -> Result<Answer, Failure> {
        let path = if wait { "/v1/tx?wait=commit" } else { "/v1/tx" };
        self.request(reqwest::Method::POST, path, Some(bytes))
    }

    /// Signs `action` with the account's next nonce (fetched from the node) and submits
    /// it; with `wait`, answers once committed, showing a spinner meanwhile.
    ///
    /// Unless `force`, an action the account cannot cover as the node reports it (the
    /// amount or deposit plus the fee above its balance, an unstake above its stake) is
    /// refused here, before signing: on chain it would cost the fee and do nothing.
    pub fn submit(
        &self,
        key: &SecretKey,
        action: Action,
        wait: bool,
        force: bool,
    ) -> Result<SubmitResponse, Failure> {
        let account_id = AccountId::from_public_key(key.public_key());
        let chain: ChainResponse = self.get("/v1/chain")?;
        let account: AccountResponse = self.get(&format!("/v1/accounts/{account_id}"))?;
        if !force {
            covers(&action, &account, chain.params.fee)?;
        }
        let bytes = sign(
            key,
            chain.chain_id,
            account.nonce,
            account.key_registered,
            action,
        )?;
        let spinner = wait.then(|| spinner("waiting for the commit"));
        let answer = self.post_tx(bytes, wait);
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
        answer?.into_result()
    }
}

/// Whether `account` can pay for `action` and its `fee` (see [`Node::submit`]); the
/// refusal names what it holds and what is needed.
pub fn covers(action: &Action, account: &AccountResponse, fee: Amount) -> Result<(), Failure> {
    let spend = match action {
        Action::Transfer { amount, .. } | Action::Stake { amount } => *amount,
        Action::Propose { deposit, .. } => *deposit,
        Action::Unstake { amount } if *amount > account.staked => {
            return Err(Failure::Rejected(format!(
                "the account has {} staked, less than the {} to unstake; nothing was signed or \
                 sent (--force sends it anyway)",
                tokens(account.staked),
                tokens(*amount)
            )));
        }
        Action::Unstake { .. } | Action::Vote { .. } => Amount::ZERO,
    };
    let needed = spend.0.checked_add(fee.0);
    if needed.is_none_or(|needed| needed > account.balance.0) {
        let needed = needed.map_or_else(|| "more than can exist".into(), |n| tokens(Amount(n)));
        return Err(Failure::Rejected(format!(
            "the account's balance is {}; this needs {needed} ({} and the fee {}); nothing was \
             signed or sent (--force sends it anyway)",
            tokens(account.balance),
            tokens(spend),
            tokens(fee)
        )));
    }
    Ok(())
}

/// The canonical bytes of `action` signed by `key` with `nonce`; the sender names the
/// account once its key is registered, and carries the key before.
pub fn sign(
    key: &SecretKey,
    chain_id: Hash32,
    nonce: u64,
    registered: bool,
    action: Action,
) -> anyhow::Result<Vec<u8>> {
    let sender = if registered {
        Sender::Account(AccountId::from_public_key(key.public_key()))
    } else {
        Sender::Register(key.public_key().clone())
    };
    let mut randomness = [0u8; 32];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut randomness)
        .map_err(|e| anyhow!("no OS randomness: {e}"))?;
    Ok(Transaction {
        chain_id,
        sender,
        nonce,
        action,
    }
    .sign(key, randomness)
    .to_canonical_bytes())
}

/// A spinner on stderr; invisible when stderr is not a terminal (scripts, `--json` pipes).
pub fn spinner(message: &'static str) -> indicatif::ProgressBar {
    let spinner = indicatif::ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}
