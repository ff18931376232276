//! End-to-end: input that must change nothing, against real `agora-node` processes on
//! loopback: spam that could not apply, malformed and refused requests, and batches
//! answered item by item.

use agora_api::AccountResponse;
use agora_tests::*;
use std::time::Duration;

/// Spam that could not apply gets no block space (issue #16, item 3): re-signatures of
/// one nonce and nonces past a gap, sent to the leader and to a follower. Each node admits
/// one transaction per nonce and nonces inside the window only (32 past the account's);
/// a block never carries a transaction that cannot pay its fee; what waits behind a gap
/// is released in order once the gap is filled.
#[test]
fn spam_of_one_nonce_and_of_future_nonces_gets_no_block_space() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start("spam", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let leader = wait_for("a leader", Duration::from_secs(30), || cluster.leader());
    let follower = (leader + 1) % 3;
    // Nonce 0 registers the demo account's key.
    cluster.submit_and_wait(
        leader,
        &cluster.transfer(0, random_account(), 1),
        Duration::from_secs(30),
    );
    let account = cluster.demo_account();
    let nonce_of = |i: usize| {
        cluster
            .get_as::<AccountResponse>(i, &format!("/v1/accounts/{account}"))
            .map(|a| a.nonce)
    };
    let answer = |i: usize, tx: &[u8]| {
        let (status, body) = http(cluster.nodes[i].http_port, "POST", "/v1/tx", tx).unwrap();
        (status, error_code(&body))
    };
    // 50 re-signatures of nonce 1 (other recipients), half to each node: one per node.
    let mut same_nonce_admitted = [0usize; 2];
    for k in 0..50 {
        let (node, slot) = if k % 2 == 0 {
            (leader, 0)
        } else {
            (follower, 1)
        };
        match answer(node, &cluster.transfer(1, random_account(), 1)) {
            (200, _) => same_nonce_admitted[slot] += 1,
            (409, Some(code)) if code == "nonce_pending" || code == "replayed_nonce" => {}
            other => panic!("re-signed nonce 1: {other:?}"),
        }
    }
    // The leader keeps the first; the follower forwards at most one (none if the leader's
    // had committed by the time the follower's first arrived: then it is a replay).
    assert_eq!(
        same_nonce_admitted[0], 1,
        "the first one, and no other, at the leader"
    );
    assert!(
        same_nonce_admitted[1] <= 1,
        "at most one at the follower: {same_nonce_admitted:?}"
    );
    // Nonces 3..=52 (2 is missing), alternately to each node.
    for nonce in 3..=52u64 {
        let node = if nonce % 2 == 0 { leader } else { follower };
        let got = answer(node, &cluster.transfer(nonce, random_account(), 1));
        match nonce {
            // Inside the window of the account's nonce (1, or 2 once nonce 1 committed).
            3..=32 => assert_eq!(got, (200, None), "nonce {nonce}"),
            33 => assert!(
                got == (200, None) || got == (400, Some("nonce_too_far_ahead".into())),
                "nonce 33: {got:?}"
            ),
            _ => assert_eq!(
                got,
                (400, Some("nonce_too_far_ahead".into())),
                "nonce {nonce}"
            ),
        }
    }
    // Blocks go by: only nonce 1 applies; the rest waits behind the gap.
    let height = cluster.status(leader).unwrap().height;
    wait_for("three more blocks", Duration::from_secs(30), || {
        cluster.status(leader).filter(|s| s.height >= height + 3)
    });
    assert_eq!(nonce_of(leader), Some(2), "nothing past the gap applied");
    // Filling the gap releases everything admitted behind it, in nonce order.
    cluster.submit_and_wait(
        follower,
        &cluster.transfer(2, random_account(), 1),
        Duration::from_secs(30),
    );
    let released = wait_for("the held nonces applied", Duration::from_secs(30), || {
        nonce_of(leader).filter(|n| *n >= 33)
    });
    assert!(
        released <= 34,
        "only nonces inside the window were admitted: {released}"
    );
    // Not one receipt in the chain is a transaction that could not pay its fee.
    let top = cluster.status(leader).unwrap().height;
    let mut receipts = 0u64;
    for h in 1..=top {
        let block: BlockResponse = cluster.get_as(leader, &format!("/v1/blocks/{h}")).unwrap();
        for receipt in &block.receipts {
            assert_eq!(
                receipt.status,
                agora_core::TxStatus::Applied,
                "height {h}: {receipt:?}"
            );
            assert!(
                receipt.fee.0 > 0,
                "height {h}: included for free: {receipt:?}"
            );
            receipts += 1;
        }
    }
    assert_eq!(
        receipts, released,
        "one receipt per nonce used: nonces 0..{released}"
    );
}

/// Bad input gets a clear error and changes nothing: an oversized body (413), bytes that
/// are not a transaction (400), a bad signature (400), a replayed nonce (409), unknown
/// parameters (400); errors are JSON with a stable code.
#[test]
fn bad_requests_get_clear_errors_and_change_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start("badinput", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let port = cluster.nodes[0].http_port;
    // The chain moves on its own (empty blocks, certificates), so "nothing changed" is
    // about what these requests could change: the sender's account, the mempool, and the
    // refused transactions themselves.
    let sender = |cluster: &Cluster| {
        let account: AccountResponse = cluster
            .get_as(0, &format!("/v1/accounts/{}", cluster.demo_account()))
            .unwrap();
        (account.balance, account.nonce, account.key_registered)
    };
    let before = sender(&cluster);
    let mut refused = Vec::new();

    let (status, _) = http(port, "POST", "/v1/tx", &vec![0u8; 64 * 1024]).unwrap();
    assert_eq!(status, 413, "oversized body");
    let (status, body) = http(port, "POST", "/v1/tx", b"definitely not a transaction").unwrap();
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (400, Some("malformed_transaction"))
    );
    let mut forged = cluster.transfer(0, random_account(), 5);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let (status, body) = http(port, "POST", "/v1/tx", &forged).unwrap();
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (400, Some("bad_signature"))
    );
    refused.push(forged);
    let unwaitable = cluster.transfer(0, random_account(), 5);
    let (status, body) = http(port, "POST", "/v1/tx?wait=forever", &unwaitable).unwrap();
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (400, Some("bad_parameter"))
    );
    refused.push(unwaitable);
    let (status, body) = http(port, "GET", "/v1/accounts/not-hex", &[]).unwrap();
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (400, Some("bad_account_id"))
    );
    // A route this node does not serve in its mode answers at once, without reading the
    // body: 30 MiB declared, 1 KiB sent, and the answer comes anyway (issue #16, item 4).
    let declared = 30 << 20;
    let (status, body) = http_partial(
        port,
        "POST",
        "/v1/replay",
        declared,
        &[b'{'; 1024],
        Duration::from_secs(10),
    )
    .expect("an answer before the body was sent");
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (404, Some("not_replay_mode")),
        "{body}"
    );
    assert_eq!(
        sender(&cluster),
        before,
        "the sender's account is unchanged"
    );
    assert_eq!(
        cluster.status(0).unwrap().mempool,
        0,
        "nothing was admitted"
    );
    for tx in &refused {
        let hash = agora_core::tx::tx_hash(tx);
        for node in 0..3 {
            let (status, body) = cluster.get(node, &format!("/v1/txs/{hash}")).unwrap();
            assert_eq!(
                (status, error_code(&body).as_deref()),
                (404, Some("unknown_tx")),
                "node {node}: {body}"
            );
        }
    }

    cluster.submit_and_wait(
        0,
        &cluster.transfer(0, random_account(), 5),
        Duration::from_secs(30),
    );
    cluster.submit_and_wait(
        0,
        &cluster.transfer(1, random_account(), 5),
        Duration::from_secs(30),
    );
    // A second first-transaction carries the key again: the ledger says so first.
    let (status, body) = http(
        port,
        "POST",
        "/v1/tx",
        &cluster.transfer(0, random_account(), 5),
    )
    .unwrap();
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (400, Some("key_already_registered"))
    );
    let (status, body) = http(
        port,
        "POST",
        "/v1/tx",
        &cluster.transfer(1, random_account(), 5),
    )
    .unwrap();
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (409, Some("replayed_nonce"))
    );
    let (status, body) = http(port, "GET", "/v1/proof?key=account:0000", &[]).unwrap();
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (400, Some("bad_account_id"))
    );
    // Path numbers out of range or not numbers at all: the documented JSON error form,
    // never a 500 or axum's plain text.
    for (path, expected) in [
        ("/v1/blocks/18446744073709551615", (404, "not_found")),
        ("/v1/blocks/-1", (400, "bad_request")),
        ("/v1/blocks/18446744073709551616", (400, "bad_request")),
        ("/v1/proposals/x", (400, "bad_request")),
    ] {
        let (status, body) = http(port, "GET", path, &[]).unwrap();
        assert_eq!(
            (status, error_code(&body).as_deref()),
            (expected.0, Some(expected.1)),
            "{path}"
        );
    }
    for (method, path) in [("DELETE", "/v1/status"), ("GET", "/v1/tx")] {
        let (status, body) = http(port, method, path, &[]).unwrap();
        let expected = (405, "method_not_allowed");
        assert_eq!(
            (status, error_code(&body).as_deref()),
            (expected.0, Some(expected.1)),
            "{path}"
        );
    }
    let key = format!("account:{}", cluster.demo_account());
    let proof: ProofResponse = cluster.get_as(0, &format!("/v1/proof?key={key}")).unwrap();
    assert!(!proof.proof.siblings.is_empty());
}

/// `POST /v1/txs` answers each transaction on its own, in order, as `POST /v1/tx` would:
/// the good ones commit (through a follower, with `?wait=commit`), the bad ones get their
/// own codes and change nothing; a batch that is not one is refused whole.
#[test]
fn a_batch_is_answered_item_by_item() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start("batch", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let leader = cluster.leader().unwrap();
    let follower = (leader + 1) % 3;
    let port = cluster.nodes[follower].http_port;
    // The first transaction registers the key; the batch sends by account id.
    cluster.submit_and_wait(
        0,
        &cluster.transfer(0, random_account(), 5),
        Duration::from_secs(30),
    );
    let mut forged = cluster.transfer(2, random_account(), 5);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let txs = [
        hex::encode(cluster.transfer(1, random_account(), 5)),
        "not hex".to_string(),
        hex::encode(&forged),
        hex::encode(b"not a transaction"),
        hex::encode(cluster.transfer(2, random_account(), 7)),
    ];
    let body = serde_json::to_vec(&serde_json::json!({ "txs": txs })).unwrap();
    let (status, answer) = http(port, "POST", "/v1/txs?wait=commit", &body).unwrap();
    assert_eq!(status, 200, "{answer}");
    let answer: SubmitBatchResponse = serde_json::from_value(answer).unwrap();
    let outcome: Vec<String> = answer
        .results
        .iter()
        .map(|item| match item {
            BatchItem::Submitted(response) => {
                assert!(response.height.is_some(), "waited for the commit");
                format!("{:?}", response.receipt.as_ref().unwrap().status)
            }
            BatchItem::Failed { status, code, .. } => format!("{status} {code}"),
        })
        .collect();
    assert_eq!(
        outcome,
        [
            "Applied",
            "400 malformed",
            "400 bad_signature",
            "400 malformed_transaction",
            "Applied"
        ]
    );
    let account: AccountResponse = cluster
        .get_as(
            follower,
            &format!("/v1/accounts/{}", cluster.demo_account()),
        )
        .unwrap();
    assert_eq!(
        account.nonce, 3,
        "exactly the registration and the two good transactions took effect"
    );

    // The follower forwarded the two it admitted to the leader, in one request or two.
    let forwarded = cluster.metric(follower, "agora_forward_batch_size_sum");
    let requests = cluster.metric(follower, "agora_forward_batch_size_count");
    assert!(
        forwarded.is_some_and(|n| n >= 2.0)
            && requests.is_some_and(|n| (1.0..=forwarded.unwrap()).contains(&n)),
        "forwarded {forwarded:?} in {requests:?} requests"
    );
    let too_many = vec![hex::encode(b"x"); MAX_BATCH_TXS + 1];
    for (body, code) in [
        (serde_json::json!({ "txs": [] }).to_string(), "batch_size"),
        (
            serde_json::json!({ "txs": too_many }).to_string(),
            "batch_size",
        ),
        ("[1, 2]".to_string(), "malformed_batch"),
    ] {
        let (status, answer) = http(port, "POST", "/v1/txs", body.as_bytes()).unwrap();
        assert_eq!((status, error_code(&answer).as_deref()), (400, Some(code)));
    }
    // One byte over the limit (128 transactions of 16 KiB in hex, and room for the JSON).
    let limit = MAX_BATCH_TXS * (2 * (16 << 10) + 8) + (4 << 10);
    let (status, _) = http(port, "POST", "/v1/txs", &vec![b' '; limit + 1]).unwrap();
    assert_eq!(status, 413, "oversized batch body");
}
