//! `/v1/openapi.json` describes every route a node serves: each served route is registered
//! through its description (utoipa-axum's `routes!`), the only routes added without one
//! are the three write routes of the other mode (described under their own mode), every
//! described operation answers from its handler rather than the fallback in the mode that
//! serves it, and every schema the description refers to is in it.

use agora_node::api::{openapi, router, ApiState, Mode};
use agora_node::events::EventHub;
use agora_node::metrics::Metrics;
use agora_node::network::NetworkCounters;
use agora_node::sqlite::SqliteStore;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use tower::ServiceExt;

const OTHER_MODE_ROUTES: [&str; 3] = ["/v1/replay", "/v1/tx", "/v1/txs"];

fn described_operations() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(openapi()).unwrap();
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} describes its responses"
            );
            assert!(
                operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method} {path} has a tag"
            );
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

#[test]
fn the_description_is_openapi_3_and_every_reference_resolves() {
    let doc = serde_json::to_value(openapi()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut refs = Vec::new();
    fn walk(value: &Value, refs: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    refs.push(r.clone());
                }
                map.values().for_each(|v| walk(v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    walk(&doc, &mut refs);
    assert!(refs.len() > 20, "the bodies are described by reference");
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .expect("a schema reference");
        assert!(
            schemas.contains_key(name),
            "{reference} is not in the description"
        );
    }
    for name in [
        "SubmitResponse",
        "TxResponse",
        "Event",
        "Receipt",
        "CommitMessage",
        "Amount",
        "Hash32",
    ] {
        assert!(schemas.contains_key(name), "{name} is described");
    }
}

#[test]
fn only_the_other_modes_write_routes_bypass_the_description() {
    let source = include_str!("../src/api.rs");
    let plain: Vec<&str> = source
        .match_indices(".route(\"")
        .map(|(at, _)| source[at + 8..].split('"').next().unwrap())
        .collect();
    let mut sorted = plain.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["/v1/replay", "/v1/tx", "/v1/txs"],
        "every other route goes through routes!"
    );
    let described = described_operations();
    for path in OTHER_MODE_ROUTES {
        assert!(
            described.contains(&("POST".to_string(), path.to_string())),
            "{path} is described"
        );
    }
}

#[tokio::test]
async fn every_described_operation_reaches_its_handler() {
    let dir = std::env::temp_dir().join(format!("agora-openapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("node.db")).await.unwrap();
    let metrics = Metrics::new(Arc::new(NetworkCounters::default()));
    // No replica behind it: handlers that ask it answer 503 at once, which is a handler's
    // answer, not the fallback's.
    let (commands, _) = tokio::sync::mpsc::channel(1);
    let state = ApiState {
        commands,
        metrics: metrics.clone(),
        reader: store.reader(),
        events: Arc::new(EventHub::new(
            agora_core::AccountId::default(),
            4,
            4,
            metrics,
        )),
        chain_id: agora_core::Hash32([7; 32]),
        zones: Default::default(),
    };
    let operations = described_operations();
    assert!(operations.len() >= 20, "{operations:?}");
    for mode in [Mode::Chain, Mode::Replay] {
        let app = router(state.clone(), mode);
        for (method, path) in &operations {
            let served_here = match mode {
                Mode::Chain => path != "/v1/replay",
                Mode::Replay => path != "/v1/tx" && path != "/v1/txs",
            };
            let uri = path
                .replace("{id}", &"0".repeat(64))
                .replace("{height}", "1")
                .replace("{hash}", &"0".repeat(64));
            let uri = if uri == "/v1/proposals/".to_string() + &"0".repeat(64) {
                "/v1/proposals/1".to_string()
            } else {
                uri
            };
            let request = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&uri)
                .body(Body::from("{}"))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let streaming = response
                .headers()
                .get("content-type")
                .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
            // A stream does not end; its headers are the handler's answer.
            let body = if streaming {
                Default::default()
            } else {
                axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default()
            };
            let code = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["code"].as_str().map(String::from));
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            let fallback = status == StatusCode::NOT_FOUND
                && String::from_utf8_lossy(&body).contains("no such route");
            assert!(!fallback, "{method} {uri} in {mode:?} reached no handler");
            if !served_here {
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri} in {mode:?}");
                assert!(
                    matches!(code.as_deref(), Some("replay_mode" | "not_replay_mode")),
                    "{method} {uri} in {mode:?}: {code:?}"
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
