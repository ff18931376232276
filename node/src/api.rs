//! The HTTP/JSON API for clients and operators (axum).
//!
//! Errors are JSON `{"code": "...", "message": "..."}` with a stable code. A full mempool
//! or request queue answers 503 with `Retry-After`; bodies over the size limit answer 413
//! and malformed ones 400, changing nothing. Reads are linearizable (ReadIndex) unless
//! `?consistency=local`.

use crate::driver::{ApiError, Command, Query};
use crate::metrics::Metrics;
use agora_core::state::ProposalStatus;
use agora_core::tx::MAX_TX_BYTES;
use agora_core::{AccountId, Hash32, Ledger, StateKey};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query as UrlQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// To the driver (bounded).
    pub commands: mpsc::Sender<Command>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Json(json!({ "code": self.code, "message": self.message }));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            (status, [(header::RETRY_AFTER, "1")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

/// The router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/v1/tx",
            post(submit_tx).layer(DefaultBodyLimit::max(MAX_TX_BYTES)),
        )
        .route(
            "/v1/replay",
            post(replay).layer(DefaultBodyLimit::max(MAX_REPLAY_BODY_BYTES)),
        )
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/validators", get(validators))
        .route("/v1/proposals", get(proposals))
        .route("/v1/proposals/{id}", get(proposal))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/state_root", get(state_root))
        .route("/v1/chain", get(chain))
        .route("/v1/proof", get(proof))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state)
}

async fn ask<T>(
    state: &ApiState,
    make: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, ApiError> {
    let (reply, answer) = oneshot::channel();
    state
        .commands
        .try_send(make(reply))
        .map_err(|_| ApiError::busy("the node is overloaded; retry shortly"))?;
    tokio::time::timeout(Duration::from_secs(35), answer)
        .await
        .map_err(|_| ApiError::busy("the node did not answer in time; retry"))?
        .map_err(|_| ApiError::new(500, "internal", "the node is shutting down"))
}

/// A replayed entry's JSON: a block of at most 16 MiB in hex, with room for the rest.
const MAX_REPLAY_BODY_BYTES: usize = 2 * agora_core::block::MAX_BLOCK_BYTES + (64 << 10);

/// Replay nodes only: `{"index", "term", "payload"}` as a vector file holds an entry;
/// answers with the root, receipts and events once applied.
async fn replay(State(state): State<ApiState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let entry: agora_core::block::Entry = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            400,
            "malformed_entry",
            format!("expected {{\"index\", \"term\", \"payload\"}} as in a vector file: {e}"),
        )
    })?;
    ask(&state, |reply| Command::Replay { entry, reply })
        .await?
        .map(Json)
}

#[derive(Deserialize)]
struct SubmitParams {
    wait: Option<String>,
}

async fn submit_tx(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<SubmitParams>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let wait = match params.wait.as_deref() {
        None => false,
        Some("commit") => true,
        Some(other) => {
            return Err(ApiError::new(
                400,
                "bad_parameter",
                format!("wait={other}: the only value is 'commit'"),
            ))
        }
    };
    ask(&state, |reply| Command::SubmitTx {
        bytes: body.to_vec(),
        wait,
        reply,
    })
    .await?
    .map(Json)
}

#[derive(Deserialize)]
struct ReadParams {
    consistency: Option<String>,
    key: Option<String>,
    height: Option<u64>,
}

fn local(params: &ReadParams) -> Result<bool, ApiError> {
    match params.consistency.as_deref() {
        None | Some("linearizable") => Ok(false),
        Some("local") => Ok(true),
        Some(other) => Err(ApiError::new(
            400,
            "bad_parameter",
            format!("consistency={other}: use 'linearizable' (default) or 'local'"),
        )),
    }
}

async fn read(
    state: &ApiState,
    params: &ReadParams,
    query: Query,
) -> Result<Json<Value>, ApiError> {
    let local = local(params)?;
    ask(state, |reply| Command::Query {
        query,
        local,
        reply,
    })
    .await?
    .map(Json)
}

fn parse_account(text: &str) -> Result<AccountId, ApiError> {
    Hash32::from_hex(text)
        .map(AccountId)
        .map_err(|e| ApiError::new(400, "bad_account_id", format!("{text}: {e}")))
}

async fn account(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    read(&state, &params, Query::Account(parse_account(&id)?)).await
}

async fn validators(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    read(&state, &params, Query::Validators).await
}

async fn proposals(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    read(&state, &params, Query::Proposals).await
}

async fn proposal(
    State(state): State<ApiState>,
    Path(id): Path<u64>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    read(&state, &params, Query::Proposal(id)).await
}

async fn state_root(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    read(&state, &params, Query::StateRoot).await
}

async fn chain(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    read(&state, &params, Query::Chain).await
}

/// `key` is `globals`, `params`, `account:<hex>`, `account_key:<hex>`, `validator:<hex>`,
/// `proposal:<id>` or `vote:<id>:<hex>`.
pub fn parse_state_key(text: &str) -> Result<StateKey, ApiError> {
    let bad = || {
        ApiError::new(400, "bad_key", format!("{text}: expected globals, params, account:<id>, account_key:<id>, validator:<id>, proposal:<n> or vote:<n>:<id>"))
    };
    let parts: Vec<&str> = text.split(':').collect();
    let number = |s: &str| s.parse::<u64>().map_err(|_| bad());
    match parts.as_slice() {
        ["globals"] => Ok(StateKey::Globals),
        ["params"] => Ok(StateKey::Params),
        ["account", id] => Ok(StateKey::Account(parse_account(id)?)),
        ["account_key", id] => Ok(StateKey::AccountKey(parse_account(id)?)),
        ["validator", id] => Ok(StateKey::Validator(parse_account(id)?)),
        ["proposal", n] => Ok(StateKey::Proposal(number(n)?)),
        ["vote", n, id] => Ok(StateKey::Vote(number(n)?, parse_account(id)?)),
        _ => Err(bad()),
    }
}

async fn proof(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    let key = params
        .key
        .as_deref()
        .ok_or_else(|| ApiError::new(400, "bad_parameter", "key is required"))?;
    let key = parse_state_key(key)?;
    match params.height {
        Some(height) => ask(&state, |reply| Command::ProofAt { key, height, reply })
            .await?
            .map(Json),
        None => read(&state, &params, Query::Proof(key)).await,
    }
}

async fn block(
    State(state): State<ApiState>,
    Path(height): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    ask(&state, |reply| Command::Block { height, reply })
        .await?
        .map(Json)
}

async fn status(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    ask(&state, |reply| Command::Status { reply })
        .await
        .map(Json)
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn health(State(state): State<ApiState>) -> Result<&'static str, ApiError> {
    ask(&state, |reply| Command::Status { reply })
        .await
        .map(|_| "ok")
}

/// Ready when a leader is known and this replica has applied what it knows committed.
async fn ready(State(state): State<ApiState>) -> Result<&'static str, ApiError> {
    let status = ask(&state, |reply| Command::Status { reply }).await?;
    let leader_known = !status["leader"].is_null();
    let caught_up = status["applied_index"] == status["commit_index"];
    if leader_known && caught_up {
        Ok("ready")
    } else {
        Err(ApiError::busy(
            "not ready: no leader known yet, or still applying the log",
        ))
    }
}

/// Answers a query from a ledger.
pub fn answer_query(ledger: &Ledger, query: &Query) -> Result<Value, ApiError> {
    let state = ledger.state();
    let at = json!({ "height": ledger.height(), "state_root": ledger.state_root() });
    let value = match query {
        Query::Account(id) => {
            let account = state.accounts.get(id).cloned().unwrap_or_default();
            json!({ "account": id, "balance": account.balance, "staked": account.staked, "unbonding": account.unbonding, "nonce": account.nonce, "key_registered": state.account_keys.contains_key(id), "at": at })
        }
        Query::Validators => {
            let consensus: std::collections::BTreeMap<_, _> = ledger
                .target_config()
                .members
                .iter()
                .map(|m| (m.validator, m.weight))
                .collect();
            json!({
                "validators": state.validators.iter().map(|(id, v)| json!({ "validator": id, "weight": v.weight, "consensus_weight": consensus.get(id), "base_reputation": v.base_reputation, "blocks_proposed": v.blocks_proposed, "peer": hex::encode(&v.peer), "public_key": v.public_key })).collect::<Vec<_>>(),
                "at": at,
            })
        }
        Query::Proposals => {
            json!({ "proposals": state.proposals.values().rev().collect::<Vec<_>>(), "at": at })
        }
        Query::Proposal(id) => {
            let proposal = state
                .proposals
                .get(id)
                .ok_or_else(|| ApiError::new(404, "not_found", format!("no proposal {id}")))?;
            let votes: Vec<Value> = state
                .votes_by_stake(*id)
                .into_iter()
                .map(|(voter, choice, stake)| {
                    let weight = state.votes[&(*id, voter)].weight;
                    json!({ "voter": voter, "choice": choice, "weight": weight, "current_stake": stake })
                })
                .collect();
            // While voting is open: the tally if it were taken now, and what it would decide.
            let running = (proposal.status == ProposalStatus::Voting).then(|| {
                let tally = state.running_tally(*id);
                json!({ "tally": tally, "decision": tally.decide(&state.params) })
            });
            json!({
                "proposal": proposal,
                "votes": votes,
                "running": running,
                "blocks_left": proposal.voting_end_height.saturating_sub(state.globals.height),
                "params": { "quorum": state.params.quorum, "threshold": state.params.threshold, "veto_threshold": state.params.veto_threshold },
                "total_staked": state.globals.total_staked,
                "at": at
            })
        }
        Query::StateRoot => at,
        Query::Chain => {
            json!({ "chain_id": ledger.chain_id(), "params": state.params, "globals": state.globals, "at": at })
        }
        Query::Proof(key) => match ledger.prove(key) {
            Some((value, proof)) => {
                json!({ "key": hex::encode(key.to_bytes()), "value": hex::encode(value), "proof": proof, "at": at })
            }
            None => return Err(ApiError::new(404, "not_found", "no value at that key")),
        },
    };
    Ok(value)
}
