//! `agora tx`: where a transaction stands, by its id; with `--wait`, until it commits.

use crate::client::{Failure, Node};
use crate::format::tokens;
use agora_api::TxResponse;
use agora_core::Hash32;
use std::time::{Duration, Instant};

/// How often `--wait` asks again.
const POLL: Duration = Duration::from_millis(250);

/// Asks `node` for the transaction `hash`. With `wait`, asks again while it is pending or
/// unknown (it may not have reached this node yet) until it is committed or `timeout`
/// passes.
pub fn lookup(
    node: &Node,
    hash: &Hash32,
    wait: bool,
    timeout: Duration,
) -> Result<TxResponse, Failure> {
    let started = Instant::now();
    let path = format!("/v1/txs/{hash}");
    loop {
        let answer = node.request(reqwest::Method::GET, &path, None)?;
        let state = if answer.status == 404 && answer.code() == "unknown_tx" {
            if !wait {
                return answer.into_result(); // a 404: exit 3 with the node's message
            }
            "still unknown to this node"
        } else {
            let response: TxResponse = answer.into_result()?;
            if !wait || matches!(response, TxResponse::Committed(_)) {
                return Ok(response);
            }
            "still pending"
        };
        if started.elapsed() >= timeout {
            return Err(Failure::Unreachable(format!(
                "transaction {hash} not committed after {}s: {state}",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// The human text for an answer.
pub fn describe(answer: &TxResponse) -> String {
    match answer {
        TxResponse::Pending { hash } => {
            format!("pending: {hash} (accepted, not yet in a committed block)")
        }
        TxResponse::Committed(tx) => {
            let status = serde_json::to_string(&tx.receipt.status).expect("serializes");
            let sender = tx
                .sender
                .map_or_else(|| "an undecodable sender".to_string(), |s| s.to_string());
            let mut text = format!(
                "committed at height {} (position {}) from {sender}: {status}, fee {} tokens",
                tx.height,
                tx.position,
                tokens(tx.receipt.fee)
            );
            for event in &tx.events {
                text.push_str("\n  ");
                text.push_str(&serde_json::to_string(event).expect("serializes"));
            }
            text
        }
    }
}
