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
use agora_api::stream::{ChangeMessage, ClosedMessage, CommitMessage, LeaderMessage, StreamKind};
use agora_api::{
    parse_account, parse_consistency, parse_state_key, parse_tx_hash, AccountResponse, ApiError,
    At, BatchItem, BlockResponse, ChainResponse, ErrorBody, ProofResponse, ProposalResponse,
    ProposalsResponse, ReplayResponse, StatusResponse, SubmitBatchRequest, SubmitBatchResponse,
    SubmitResponse, TxResponse, ValidatorsResponse, WeightHistoryResponse, MAX_BATCH_TXS,
};
use agora_consensus::replica::{Answer, Query, Request};
use agora_core::tx::MAX_TX_BYTES;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query as UrlQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use utoipa::OpenApi as _;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

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
    /// The chain this node serves.
    pub chain_id: agora_core::ChainId,
    /// Every zone of the node (for `/v1/zones` and `/v1/zones/<zone>/…`).
    pub zones: crate::zones::ZoneTable,
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

/// The API's description. Each route adds its own path to it through `routes!` (see
/// [`described`]), so a served route is a described route.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Agora node API",
        description = "The HTTP/JSON API of an Agora node. Errors are `{\"code\", \"message\"}` with a stable code; 503 and 429 carry Retry-After. Reads are linearizable unless `?consistency=local`. Amounts are base units (10^-6 token) as decimal strings; ids and hashes are 64 hex digits."
    ),
    paths(crate::zones::dispatch),
    components(schemas(ErrorBody, CommitMessage, LeaderMessage, ChangeMessage, ClosedMessage, StreamKind)),
    tags(
        (name = "transactions", description = "Submit and look up signed transactions"),
        (name = "state", description = "Accounts, validators, chain parameters and Merkle proofs"),
        (name = "governance", description = "Proposals, votes and running tallies"),
        (name = "blocks", description = "The block archive"),
        (name = "events", description = "The event stream (Server-Sent Events)"),
        (name = "operations", description = "Status, health, readiness and metrics"),
        (name = "explorer", description = "The explorer page"),
        (name = "replay", description = "Test-vector replay (replay nodes only)")
    )
)]
struct ApiDoc;

/// Every route of a node in `mode`, each with its description. The write route of the
/// other mode is served too, by a handler that answers 404 naming the mode (and is
/// described under that mode's route).
fn described(mode: Mode) -> OpenApiRouter<ApiState> {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(explorer))
        .routes(routes!(account))
        .routes(routes!(validators))
        .routes(routes!(weight_history))
        .routes(routes!(proposals))
        .routes(routes!(proposal))
        .routes(routes!(block))
        .routes(routes!(tx_lookup))
        .routes(routes!(crate::events::events))
        .routes(routes!(state_root))
        .routes(routes!(chain))
        .routes(routes!(proof))
        .routes(routes!(crate::light::certificates))
        .routes(routes!(status))
        .routes(routes!(crate::zones::list))
        .routes(routes!(openapi_json))
        .routes(routes!(metrics))
        .routes(routes!(health))
        .routes(routes!(ready));
    match mode {
        Mode::Chain => router
            .routes(routes!(submit_tx).layer(DefaultBodyLimit::max(MAX_TX_BYTES)))
            .routes(routes!(submit_txs).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)))
            .route("/v1/replay", post(replay_not_served)),
        Mode::Replay => router
            .routes(routes!(replay).layer(DefaultBodyLimit::max(MAX_REPLAY_BODY_BYTES)))
            .route("/v1/tx", post(tx_not_served))
            .route("/v1/txs", post(tx_not_served)),
    }
}

/// The whole API's description (both modes' write routes), as `/v1/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = described(Mode::Chain).into_openapi();
    doc.merge(described(Mode::Replay).into_openapi());
    doc
}

/// The router.
pub fn router(state: ApiState, mode: Mode) -> Router {
    let (router, _) = described(mode).split_for_parts();
    router
        .merge(crate::zones::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
}

#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This description (OpenAPI 3.1)", content_type = "application/json"))
)]
async fn openapi_json() -> impl IntoResponse {
    static DOC: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        openapi()
            .to_pretty_json()
            .expect("the description serializes")
    });
    ([(header::CONTENT_TYPE, "application/json")], DOC.as_str())
}

/// The explorer page: one file compiled into the binary (no CDN, no network); it reads
/// this API and follows `/v1/events`.
#[utoipa::path(
    get, path = "/", tag = "explorer",
    responses((status = 200, description = "The explorer page (HTML; its script reads this API and follows /v1/events)", content_type = "text/html"))
)]
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
#[utoipa::path(
    post, path = "/v1/replay", tag = "replay",
    description = "Replay nodes only (`agora-node devnet --vector`): appends a vector entry at its index; answered once applied. A chain node answers 404 `not_replay_mode`.",
    request_body(content = agora_core::block::Entry, description = "An entry as a vector file holds it"),
    responses((status = 200, body = ReplayResponse), (status = 400, description = "A malformed parameter", body = ErrorBody), (status = 404, description = "Not a replay node", body = ErrorBody), (status = 409, description = "Another entry was committed at that index", body = ErrorBody), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
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

#[utoipa::path(
    post, path = "/v1/tx", tag = "transactions",
    description = "Submits one signed transaction (its canonical bytes). Replay nodes answer 404 `replay_mode`.",
    params(("wait" = Option<String>, Query, description = "`commit`: answer once committed, with the receipt")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The transaction's canonical signed bytes"),
    responses((status = 200, description = "Accepted (or, with wait=commit, committed)", body = SubmitResponse), (status = 400, description = "Malformed, bad signature, wrong chain, bad nonce", body = ErrorBody), (status = 413, description = "Over the size limit", body = ErrorBody), (status = 429, description = "The sender has too many transactions pending", body = ErrorBody), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
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
#[utoipa::path(
    post, path = "/v1/txs", tag = "transactions",
    description = "Submits a batch of 1 to 128 signed transactions; each is answered on its own, in order.",
    params(("wait" = Option<String>, Query, description = "`commit`: answer once every transaction committed or failed")),
    request_body(content = SubmitBatchRequest),
    responses((status = 200, body = SubmitBatchResponse), (status = 400, description = "Not a batch, or the wrong size", body = ErrorBody), (status = 413, description = "Over the size limit", body = ErrorBody))
)]
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

#[utoipa::path(
    get, path = "/v1/accounts/{id}", tag = "state",
    params(("id" = String, Path, description = "The account id (64 hex digits)"), ("consistency" = Option<String>, Query, description = "`linearizable` (default: confirmed with the leader, ReadIndex) or `local` (this node's applied state)")),
    responses((status = 200, body = AccountResponse), (status = 400, description = "A malformed parameter", body = ErrorBody), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
async fn account(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Answered {
    read(&state, &params, Query::Account(parse_account(&id)?)).await
}

#[utoipa::path(
    get, path = "/v1/validators", tag = "state",
    params(("consistency" = Option<String>, Query, description = "`linearizable` (default: confirmed with the leader, ReadIndex) or `local` (this node's applied state)")),
    responses((status = 200, body = ValidatorsResponse), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
async fn validators(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Answered {
    read(&state, &params, Query::Validators).await
}

#[utoipa::path(
    get, path = "/v1/validators/history", tag = "state",
    responses((status = 200, body = WeightHistoryResponse), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
async fn weight_history(State(state): State<ApiState>) -> Answered {
    answer(&state, Request::WeightHistory).await
}

#[utoipa::path(
    get, path = "/v1/proposals", tag = "governance",
    params(("consistency" = Option<String>, Query, description = "`linearizable` (default: confirmed with the leader, ReadIndex) or `local` (this node's applied state)")),
    responses((status = 200, body = ProposalsResponse), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
async fn proposals(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Answered {
    read(&state, &params, Query::Proposals).await
}

#[utoipa::path(
    get, path = "/v1/proposals/{id}", tag = "governance",
    params(("id" = u64, Path, description = "The proposal id"), ("consistency" = Option<String>, Query, description = "`linearizable` (default: confirmed with the leader, ReadIndex) or `local` (this node's applied state)")),
    responses((status = 200, body = ProposalResponse), (status = 400, description = "A malformed parameter", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
async fn proposal(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Answered {
    let id = number("proposal id", &id)?;
    read(&state, &params, Query::Proposal(id)).await
}

/// A number in a path, or the API's error form (not axum's plain-text rejection).
pub(crate) fn number(what: &str, text: &str) -> Result<u64, ApiError> {
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

#[utoipa::path(
    get, path = "/v1/state_root", tag = "state",
    params(("consistency" = Option<String>, Query, description = "`linearizable` (default: confirmed with the leader, ReadIndex) or `local` (this node's applied state)")),
    responses((status = 200, body = At), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
async fn state_root(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<ReadParams>,
) -> Answered {
    read(&state, &params, Query::StateRoot).await
}

#[utoipa::path(
    get, path = "/v1/chain", tag = "state",
    params(("consistency" = Option<String>, Query, description = "`linearizable` (default: confirmed with the leader, ReadIndex) or `local` (this node's applied state)")),
    responses((status = 200, body = ChainResponse), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
async fn chain(State(state): State<ApiState>, UrlQuery(params): UrlQuery<ReadParams>) -> Answered {
    read(&state, &params, Query::Chain).await
}

/// `key` as [`parse_state_key`] takes it; with `height`, proved at that past height.
#[utoipa::path(
    get, path = "/v1/proof", tag = "state",
    params(("key" = String, Query, description = "globals, params, account:<id>, account_key:<id>, validator:<id>, proposal:<n> or vote:<n>:<id>"), ("height" = Option<u64>, Query, description = "Prove at this past height (rebuilt from the block archive)"), ("consistency" = Option<String>, Query, description = "`linearizable` (default: confirmed with the leader, ReadIndex) or `local` (this node's applied state)")),
    responses((status = 200, body = ProofResponse), (status = 400, description = "A malformed parameter", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
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
#[utoipa::path(
    get, path = "/v1/blocks/{height}", tag = "blocks",
    params(("height" = u64, Path, description = "The height")),
    responses((status = 200, body = BlockResponse), (status = 400, description = "A malformed parameter", body = ErrorBody), (status = 404, description = "Not applied on this node yet", body = ErrorBody))
)]
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
#[utoipa::path(
    get, path = "/v1/txs/{hash}", tag = "transactions",
    params(("hash" = String, Path, description = "The transaction id (64 hex digits)")),
    responses((status = 200, description = "Pending or committed", body = TxResponse), (status = 400, description = "A malformed parameter", body = ErrorBody), (status = 404, description = "`unknown_tx`: not pending here and not in this node's archive", body = ErrorBody), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
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

#[utoipa::path(
    get, path = "/v1/status", tag = "operations",
    responses((status = 200, body = StatusResponse), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
async fn status(State(state): State<ApiState>) -> Answered {
    answer(&state, Request::Status).await
}

#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text"))
)]
async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[utoipa::path(
    get, path = "/health", tag = "operations",
    responses((status = 200, description = "The node's loop answers", content_type = "text/plain"), (status = 503, description = "No leader yet or a full queue; retry after Retry-After", body = ErrorBody))
)]
async fn health(State(state): State<ApiState>) -> Result<&'static str, Failure> {
    ask(&state, Request::Status).await?;
    Ok("ok")
}

/// Ready when a leader is known and this replica has applied what it knows committed.
#[utoipa::path(
    get, path = "/ready", tag = "operations",
    responses((status = 200, description = "A leader is known and this node has applied what it knows committed", content_type = "text/plain"), (status = 503, description = "Not ready, and why", body = ErrorBody))
)]
async fn ready(State(state): State<ApiState>) -> Result<&'static str, Failure> {
    match ask(&state, Request::Status).await? {
        Answer::Status(status) => match status.not_ready() {
            None => Ok("ready"),
            Some(why) => Err(ApiError::busy(format!("not ready: {why}")).into()),
        },
        _ => Err(ApiError::busy("not ready").into()),
    }
}
