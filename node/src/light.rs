//! What a light client asks a node for besides proofs: certified heights in bulk, from the
//! block archive. And, in test builds only (`inject-bugs`), a node that lies to light
//! clients (`AGORA_INJECT_LIE`), so that a test can show each lie refused.

use crate::api::{number, ApiState, Failure};
use agora_api::{ApiError, CertificatesResponse, ErrorBody, MAX_CERTIFIED_PER_ANSWER};
use axum::extract::{Query as UrlQuery, State};
use axum::Json;
use serde::Deserialize;

/// The query of `GET /v1/certificates`.
#[derive(Deserialize)]
pub struct CertificatesParams {
    from: Option<String>,
    limit: Option<String>,
}

/// Served from the block archive: each certificate as a block carried it, each root as
/// the certified height's own archived row holds it (both checked against the archive's
/// checksums). Nothing here is trusted by a light client: it checks the signatures.
#[utoipa::path(
    get, path = "/v1/certificates", tag = "blocks",
    description = "Certified heights with their state roots and commit certificates, for light clients (`agora proof KEY --trustless`). With `from`, the certified heights at or above it in increasing order (at most `limit`, default and maximum 64); without, the newest one.",
    params(
        ("from" = Option<u64>, Query, description = "The first height wanted"),
        ("limit" = Option<u64>, Query, description = "At most this many (1 to 64; default 64)")
    ),
    responses((status = 200, body = CertificatesResponse), (status = 400, description = "A malformed parameter", body = ErrorBody))
)]
pub async fn certificates(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<CertificatesParams>,
) -> Result<Json<CertificatesResponse>, Failure> {
    let from = params
        .from
        .as_deref()
        .map(|t| number("from", t))
        .transpose()?;
    let limit = match params.limit.as_deref() {
        None => MAX_CERTIFIED_PER_ANSWER,
        Some(text) => match number("limit", text)? {
            n @ 1..=MAX_CERTIFIED_PER_ANSWER => n,
            n => {
                return Err(ApiError::new(
                    400,
                    "bad_request",
                    format!("limit must be from 1 to {MAX_CERTIFIED_PER_ANSWER}, not {n}"),
                )
                .into())
            }
        },
    };
    let certified = state
        .reader
        .certified(from, limit)
        .await
        .map_err(|e| ApiError::new(500, "storage", e.to_string()))?;
    Ok(Json(CertificatesResponse {
        chain_id: state.chain_id,
        certified,
    }))
}

/// Test builds only: a node that lies to light clients.
#[cfg(feature = "inject-bugs")]
pub mod lies {
    use axum::body::{to_bytes, Body};
    use axum::extract::Request;
    use axum::http::header;
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};
    use serde_json::Value;

    pub use agora_testkit::light::Lie;

    /// From `AGORA_INJECT_LIE` (a name of [`Lie::ALL`]).
    pub fn from_env() -> Option<Lie> {
        let text = std::env::var("AGORA_INJECT_LIE").ok()?;
        let lie =
            Lie::named(&text).unwrap_or_else(|| panic!("AGORA_INJECT_LIE={text}: no such lie"));
        tracing::error!("AGORA_INJECT_LIE={text}: this node lies to light clients, for a test");
        Some(lie)
    }

    /// Rewrites one JSON answer of `path`: `/v1/proof` answers a value with its last
    /// byte changed (except the committee's); `/v1/certificates` answers another root,
    /// a changed first signature, fewer than half the signers, or another chain.
    fn rewrite(lie: Lie, path: &str, query: &str, body: &mut Value) {
        match (lie, path) {
            (Lie::Value, "/v1/proof") if !query.contains("key=committee") => {
                if let Some(Value::String(value)) = body.get_mut("value") {
                    flip_last_hex_digit(value);
                }
            }
            (Lie::OtherChain, "/v1/certificates") => {
                body["chain_id"] = Value::String("0c".repeat(32));
            }
            (_, "/v1/certificates") => {
                let Some(Value::Array(items)) = body.get_mut("certified") else {
                    return;
                };
                for item in items {
                    let signatures = &mut item["certificate"]["signatures"];
                    match lie {
                        Lie::Root => item["state_root"] = Value::String("5a".repeat(32)),
                        Lie::Signature => {
                            if let Some(Value::String(sig)) =
                                signatures.get_mut(0).and_then(|s| s.get_mut("signature"))
                            {
                                flip_last_hex_digit(sig);
                            }
                        }
                        Lie::Underweight => {
                            if let Value::Array(list) = signatures {
                                list.truncate(list.len().saturating_sub(1) / 2);
                            }
                        }
                        Lie::Value | Lie::OtherChain => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn flip_last_hex_digit(text: &mut String) {
        if let Some(last) = text.pop() {
            text.push(if last == '0' { '1' } else { '0' });
        }
    }

    /// The middleware: successful JSON answers of the paths a lie concerns, rewritten.
    pub async fn lie(
        axum::extract::State(lie): axum::extract::State<Lie>,
        request: Request,
        next: Next,
    ) -> Response {
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let response = next.run(request).await;
        if !response.status().is_success()
            || !matches!(path.as_str(), "/v1/proof" | "/v1/certificates")
        {
            return response;
        }
        let (parts, body) = response.into_parts();
        let Ok(bytes) = to_bytes(body, 16 << 20).await else {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let Ok(mut json) = serde_json::from_slice::<Value>(&bytes) else {
            return Response::from_parts(parts, Body::from(bytes));
        };
        rewrite(lie, &path, &query, &mut json);
        let bytes = serde_json::to_vec(&json).expect("JSON");
        let mut response = Response::from_parts(parts, Body::from(bytes));
        response.headers_mut().remove(header::CONTENT_LENGTH);
        response
    }
}
