//! The HTTP/JSON API for clients and operators (axum). Request and answer types are
//! `agora-api`'s; every answer but a block read comes from the replica.
//!
//! Errors are JSON `{"code": "...", "message": "..."}` with a stable code. A full mempool
//! or request queue answers 503 with `Retry-After`, as does a sender with too many
//! transactions pending (429); bodies over the size limit answer 413
//! and malformed ones 400, changing nothing. Reads are linearizable (ReadIndex) unless
//! `?consistency=local`.

use crate::driver::Command;
use crate::metrics::Metrics;
use crate::sqlite::StoreReader;
use agora_api::{
    parse_account, parse_consistency, parse_state_key, parse_tx_hash, ApiError, BatchItem,
    BlockResponse, SubmitBatchRequest, SubmitBatchResponse, TxResponse, MAX_BATCH_TXS,
};
use agora_consensus::replica::{Answer, Query, Request};
use agora_core::tx::MAX_TX_BYTES;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query as UrlQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// To the shell (bounded).
    pub commands: mpsc::Sender<Command>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The block archive.
    pub reader: StoreReader,
    /// The event stream.
    pub events: Arc<crate::events::EventHub>,
}

/// An [`ApiError`] as an HTTP answer.
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Json(self.0.body());
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            (status, [(header::RETRY_AFTER, "1")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

type Answered = Result<Json<Answer>, Failure>;

/// Which write route a node serves: a chain takes transactions, a replay node takes
/// replayed entries. The other route is not served: it answers 404 with a code that names
/// the mode, from a handler that never reads the body, so a 30 MiB replay body sent to a
/// chain node costs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `POST /v1/tx` (bodies up to `MAX_TX_BYTES`).
    Chain,
    /// `POST /v1/replay` (bodies up to `MAX_REPLAY_BODY_BYTES`).
    Replay,
}

/// The router.
pub fn router(state: ApiState, mode: Mode) -> Router {
    let writes = match mode {
        Mode::Chain => Router::new()
            .route(
                "/v1/tx",
                post(submit_tx).layer(DefaultBodyLimit::max(MAX_TX_BYTES)),
            )
            .route(
                "/v1/txs",
                post(submit_txs).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
            )
            .route("/v1/replay", post(replay_not_served)),
        Mode::Replay => Router::new()
            .route(
                "/v1/replay",
                post(replay).layer(DefaultBodyLimit::max(MAX_REPLAY_BODY_BYTES)),
            )
            .route("/v1/tx", post(tx_not_served))
            .route("/v1/txs", post(tx_not_served)),
    };
    writes
        .route("/", get(explorer))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/validators", get(validators))
        .route("/v1/validators/history", get(weight_history))
        .route("/v1/proposals", get(proposals))
        .route("/v1/proposals/{id}", get(proposal))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/txs/{hash}", get(tx_lookup))
        .route("/v1/events", get(crate::events::events))
        .route("/v1/state_root", get(state_root))
        .route("/v1/chain", get(chain))
        .route("/v1/proof", get(proof))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
}

/// The explorer page: one file compiled into the binary (no CDN, no network); it reads
/// this API and follows `/v1/events`.
async fn explorer() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("explorer/index.html"),
    )
}

async fn replay_not_served() -> Failure {
    Failure(ApiError::new(
        404,
        "not_replay_mode",
        "this node is not a replay node: start it with replay = true (agora-node devnet --vector FILE)",
    ))
}

async fn tx_not_served() -> Failure {
    Failure(ApiError::new(
        404,
        "replay_mode",
        "this node replays test vectors; it takes entries at /v1/replay, not transactions",
    ))
}

async fn no_route() -> Failure {
    Failure(ApiError::not_found(
        "no such route; the API is described in the README (GET /v1/status, POST /v1/tx, …)",
    ))
}

async fn wrong_method(method: axum::http::Method) -> Failure {
    Failure(ApiError::new(
        405,
        "method_not_allowed",
        format!("this route does not take {method}; the API is described in the README"),
    ))
}

/// Hands `request` to the shell and waits for the replica's answer.
async fn ask(state: &ApiState, request: Request) -> Result<Answer, ApiError> {
    let (reply, answer) = oneshot::channel();
    state
        .commands
        .try_send(Command { request, reply })
        .map_err(|_| ApiError::busy("the node is overloaded; retry shortly"))?;
    tokio::time::timeout(Duration::from_secs(35), answer)
        .await
        .map_err(|_| ApiError::busy("the node did not answer in time; retry"))?
        .map_err(|_| ApiError::new(500, "internal", "the node is shutting down"))?
}

async fn answer(state: &ApiState, request: Request) -> Answered {
    Ok(Json(ask(state, request).await?))
}

/// A replayed entry's JSON: a block of at most 16 MiB in hex, with room for the rest.
const MAX_REPLAY_BODY_BYTES: usize = 2 * agora_core::block::MAX_BLOCK_BYTES + (64 << 10);

/// Replay nodes only: `{"index", "term", "payload"}` as a vector file holds an entry;
/// answers with the root, receipts and events once applied.
async fn replay(State(state): State<ApiState>, body: Bytes) -> Answered {
    let entry: agora_core::block::Entry = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            400,
            "malformed_entry",
            format!("expected {{\"index\", \"term\", \"payload\"}} as in a vector file: {e}"),
        )
    })?;
    answer(&state, Request::Replay { entry }).await
}

#[derive(Deserialize)]
struct SubmitParams {
    wait: Option<String>,
}

impl SubmitParams {
    fn wait(&self) -> Result<bool, ApiError> {
        match self.wait.as_deref() {
            None => Ok(false),
            Some("commit") => Ok(true),
            Some(other) => Err(ApiError::new(
                400,
                "bad_parameter",
                format!("wait={other}: the only value is 'commit'"),
            )),
        }
    }
}

async fn submit_tx(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<SubmitParams>,
    body: Bytes,
) -> Answered {
    let request = Request::Submit {
        bytes: body.to_vec(),
        wait: params.wait()?,
    };
    answer(&state, request).await
}

/// A batch's JSON: [`MAX_BATCH_TXS`] transactions of at most `MAX_TX_BYTES`, in hex, with
/// room for the quoting.
const MAX_BATCH_BODY_BYTES: usize = MAX_BATCH_TXS * (2 * MAX_TX_BYTES + 8) + (4 << 10);

/// `POST /v1/txs`: each transaction is handed to the replica on its own, as `POST /v1/tx`
/// would, and answered on its own, in order; the batch is 200 unless the body itself is
/// wrong. A transaction that does not fit the node's queues gets its own 503 item.
async fn submit_txs(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<SubmitParams>,
    body: Bytes,
) -> Result<Json<SubmitBatchResponse>, Failure> {
    let wait = params.wait()?;
    let batch: SubmitBatchRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            400,
            "malformed_batch",
            format!("expected {{\"txs\": [\"<hex of a signed transaction>\", …]}}: {e}"),
        )
    })?;
    if batch.txs.is_empty() || batch.txs.len() > MAX_BATCH_TXS {
        return Err(ApiError::new(
            400,
            "batch_size",
            format!(
                "a batch holds 1 to {MAX_BATCH_TXS} transactions, not {}",
                batch.txs.len()
            ),
        )
        .into());
    }
    let items = batch.txs.into_iter().map(|tx| {
        let state = state.clone();
        async move {
            let bytes = hex::decode(&tx)
                .map_err(|e| ApiError::new(400, "malformed", format!("not hex: {e}")))?;
            match ask(&state, Request::Submit { bytes, wait }).await? {
                Answer::Submitted(response) => Ok(response),
                other => Err(ApiError::new(
                    500,
                    "internal",
                    format!("unexpected answer to a submission: {other:?}"),
                )),
            }
        }
    });
    let results = futures::future::join_all(items)
        .await
        .into_iter()
        .map(BatchItem::from)
        .collect();
    Ok(Json(SubmitBatchResponse { results }))
}

#[derive(Deserialize)]
struct ReadParams {
    consistency: Option<String>,
    key: Option<String>,
    height: Option<u64>,
}

async fn read(state: &ApiState, params: &ReadParams, query: Query) -> Answered {
    let consistency = parse_consistency(params.consistency.as_deref())?;
    answer(state, Request::Query { query, consistency }).await
}

async fn account(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Answered {
    read(&state, &params, Query::Account(parse_account(&id)?)).await
}

async fn validators(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Answered {
    read(&state, &params, Query::Validators).await
}

async fn weight_history(State(state): State<ApiState>) -> Answered {
    answer(&state, Request::WeightHistory).await
}

async fn proposals(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Answered {
    read(&state, &params, Query::Proposals).await
}

async fn proposal(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Answered {
    let id = number("proposal id", &id)?;
    read(&state, &params, Query::Proposal(id)).await
}

/// A number in a path, or the API's error form (not axum's plain-text rejection).
fn number(what: &str, text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            400,
            "bad_request",
            format!(
                "{what} must be a whole number from 0 to {}, not {text:?}",
                u64::MAX
            ),
        )
    })
}

async fn state_root(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Answered {
    read(&state, &params, Query::StateRoot).await
}

async fn chain(State(state): State<ApiState>, UrlQuery(params): UrlQuery<ReadParams>) -> Answered {
    read(&state, &params, Query::Chain).await
}

/// `key` as [`parse_state_key`] takes it; with `height`, proved at that past height.
async fn proof(State(state): State<ApiState>, UrlQuery(params): UrlQuery<ReadParams>) -> Answered {
    let key = params
        .key
        .as_deref()
        .ok_or_else(|| ApiError::new(400, "bad_parameter", "key is required"))?;
    let key = parse_state_key(key)?;
    match params.height {
        Some(height) => answer(&state, Request::ProofAt { key, height }).await,
        None => read(&state, &params, Query::Proof(key)).await,
    }
}

/// Served from the block archive, not through the replica: a pure read of what applying
/// the height recorded.
async fn block(
    State(state): State<ApiState>,
    Path(height): Path<String>,
) -> Result<Json<BlockResponse>, Failure> {
    let height = number("height", &height)?;
    let block = state
        .reader
        .block(height)
        .await
        .map_err(|e| ApiError::new(500, "storage", e.to_string()))?
        .ok_or_else(|| {
            ApiError::not_found(format!("height {height} is not applied on this node yet"))
        })?;
    Ok(Json(block))
}

/// Pending (asked of the replica) or committed (from the archive's index). The replica's
/// answer is delivered only after everything it applied is archived, so a transaction
/// that stopped being pending between the two reads is found committed.
async fn tx_lookup(
    State(state): State<ApiState>,
    Path(hash): Path<String>,
) -> Result<Json<TxResponse>, Failure> {
    let hash = parse_tx_hash(&hash)?;
    if let Answer::Pending(true) = ask(&state, Request::Pending(hash)).await? {
        return Ok(Json(TxResponse::Pending { hash }));
    }
    let committed = state
        .reader
        .tx(&hash)
        .await
        .map_err(|e| ApiError::new(500, "storage", e.to_string()))?;
    match committed {
        Some(tx) => Ok(Json(TxResponse::Committed(Box::new(tx)))),
        None => Err(ApiError::new(
            404,
            "unknown_tx",
            format!(
                "this node holds no transaction {hash}: not pending here and not in its block archive \
                 (it may have been refused, not reached this node yet, or committed before this node's \
                 archive starts if it caught up by snapshot)"
            ),
        )
        .into()),
    }
}

async fn status(State(state): State<ApiState>) -> Answered {
    answer(&state, Request::Status).await
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

async fn health(State(state): State<ApiState>) -> Result<&'static str, Failure> {
    ask(&state, Request::Status).await?;
    Ok("ok")
}

/// Ready when a leader is known and this replica has applied what it knows committed.
async fn ready(State(state): State<ApiState>) -> Result<&'static str, Failure> {
    match ask(&state, Request::Status).await? {
        Answer::Status(status) => match status.not_ready() {
            None => Ok("ready"),
            Some(why) => Err(ApiError::busy(format!("not ready: {why}")).into()),
        },
        _ => Err(ApiError::busy("not ready").into()),
    }
}
