//! End-to-end: looking a transaction up by hash, and the event stream (`/v1/events`),
//! against real `agora-node` processes on loopback.

use agora_api::stream::{ClosedMessage, CommitMessage, LeaderMessage};
use agora_api::{CommittedTx, TxResponse, WeightHistoryResponse};
use agora_core::outcome::{Event, TxStatus};
use agora_core::Amount;
use agora_tests::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

/// One SSE message: event, id, data.
#[derive(Debug, Clone)]
struct Message {
    event: String,
    id: Option<u64>,
    data: String,
}

/// Parses SSE text into messages (comments skipped).
fn parse_sse(lines: impl Iterator<Item = String>, mut on: impl FnMut(Message) -> bool) {
    let mut current: Option<Message> = None;
    for line in lines {
        if line.is_empty() {
            if let Some(message) = current.take() {
                if !on(message) {
                    return;
                }
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let message = current.get_or_insert(Message {
            event: String::new(),
            id: None,
            data: String::new(),
        });
        let (field, value) = line.split_once(": ").unwrap_or((line.as_str(), ""));
        match field {
            "event" => message.event = value.into(),
            "id" => message.id = value.parse().ok(),
            "data" => message.data.push_str(value),
            _ => {}
        }
    }
}

/// Opens `/v1/events` with `query` (and `headers`) and collects messages until `enough`
/// says so.
fn subscribe(
    port: u16,
    query: &str,
    headers: &[(&str, &str)],
    mut enough: impl FnMut(&[Message]) -> bool,
) -> Vec<Message> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut request = client.get(format!("http://127.0.0.1:{port}/v1/events?{query}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut got = Vec::new();
    parse_sse(
        BufReader::new(response).lines().map_while(Result::ok),
        |message| {
            got.push(message);
            !enough(&got)
        },
    );
    got
}

fn tx_status(cluster: &Cluster, node: usize, hash: &str) -> (u16, serde_json::Value) {
    cluster.get(node, &format!("/v1/txs/{hash}")).unwrap()
}

/// A transaction held for its predecessor is pending on the node it was sent to and on
/// the leader; once the gap is filled it is committed, and every node finds it by hash
/// with its height, receipt and its own events. Unknown and malformed hashes get clear
/// errors.
#[test]
fn a_transaction_is_pending_then_committed_and_found_by_hash_on_every_node() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start("txlookup", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let leader = cluster.leader().unwrap();
    let follower = (leader + 1) % 3;
    cluster.submit_and_wait(
        0,
        &cluster.transfer(0, random_account(), 5),
        Duration::from_secs(30),
    );
    // Nonce 2 before nonce 1: admitted and held for its predecessor.
    let to = random_account();
    let held = cluster.transfer(2, to, 7);
    let (status, answer) =
        http(cluster.nodes[follower].http_port, "POST", "/v1/tx", &held).unwrap();
    assert_eq!(status, 200, "{answer}");
    let accepted: SubmitResponse = serde_json::from_value(answer).unwrap();
    let hash = accepted.tx_hash.to_string();
    for node in [follower, leader] {
        let (status, body) = wait_for(
            "the held transaction pending",
            Duration::from_secs(20),
            || Some(tx_status(&cluster, node, &hash)).filter(|(s, _)| *s == 200),
        );
        assert_eq!(status, 200);
        let answer: TxResponse = serde_json::from_value(body).unwrap();
        assert_eq!(
            answer,
            TxResponse::Pending {
                hash: accepted.tx_hash
            },
            "node {node}"
        );
    }
    let (status, body) = tx_status(&cluster, follower, &"ab".repeat(32));
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (404, Some("unknown_tx")),
        "{body}"
    );
    let (status, body) = tx_status(&cluster, follower, "xyz");
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (400, Some("bad_tx_hash")),
        "{body}"
    );

    // Fill the gap: both commit.
    cluster.submit_and_wait(
        follower,
        &cluster.transfer(1, random_account(), 5),
        Duration::from_secs(30),
    );
    for node in 0..3 {
        let committed: CommittedTx = wait_for(
            "the held transaction committed",
            Duration::from_secs(30),
            || match serde_json::from_value(tx_status(&cluster, node, &hash).1) {
                Ok(TxResponse::Committed(tx)) => Some(*tx),
                _ => None,
            },
        );
        assert_eq!(committed.hash, accepted.tx_hash);
        assert_eq!(committed.sender, Some(cluster.demo_account()));
        assert_eq!(committed.receipt.status, TxStatus::Applied);
        assert_eq!(
            committed.events,
            vec![Event::Transferred {
                from: cluster.demo_account(),
                to,
                amount: Amount(7),
            }],
            "node {node}: the transaction's own events"
        );
        let block: BlockResponse = cluster
            .get_as(node, &format!("/v1/blocks/{}", committed.height))
            .unwrap();
        assert_eq!(
            block.receipts[committed.position as usize].tx_hash,
            committed.hash
        );
        assert_eq!(block.state_root, committed.state_root);
    }
}

/// The stream replays archived heights from `?from=` (or after `Last-Event-ID`) and
/// continues live, each height once and in order; it filters by kind and account; a
/// subscriber that never reads is cut off with a reason while the node keeps committing.
#[test]
fn the_event_stream_resumes_filters_and_cuts_off_a_subscriber_that_never_reads() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start_with(
        "events",
        1,
        1_000,
        &[
            "--empty-block-ms",
            "100",
            "--event-buffer",
            "4",
            "--http-send-buffer",
            "4096",
        ],
    );
    cluster.wait_ready(Duration::from_secs(60));
    let port = cluster.nodes[0].http_port;
    let registered = cluster.submit_and_wait(
        0,
        &cluster.transfer(0, random_account(), 5),
        Duration::from_secs(30),
    );
    let tx_height = registered.height.unwrap();
    let now = cluster.status(0).unwrap().height;

    // From height 1: every archived height, then live ones, consecutive.
    let target = now + 5;
    let messages = subscribe(port, "from=1&kind=commit", &[], |got| {
        got.last().and_then(|m| m.id).is_some_and(|id| id >= target)
    });
    let ids: Vec<u64> = messages.iter().map(|m| m.id.unwrap()).collect();
    assert_eq!(
        ids,
        (1..=target).collect::<Vec<_>>(),
        "each height once, in order"
    );
    assert!(messages.iter().all(|m| m.event == "commit"));
    for message in &messages {
        let commit: CommitMessage = serde_json::from_str(&message.data).unwrap();
        let block: BlockResponse = cluster
            .get_as(0, &format!("/v1/blocks/{}", commit.height))
            .unwrap();
        assert_eq!(
            (commit.state_root, &commit.receipts, &commit.events),
            (block.state_root, &block.receipts, &block.events)
        );
    }

    // Last-Event-ID resumes after the height it names, and wins over ?from.
    let after = subscribe(
        port,
        "from=1&kind=commit",
        &[("Last-Event-ID", "3")],
        |got| !got.is_empty(),
    );
    assert_eq!(after[0].id, Some(4));

    // Only what concerns the demo account: the height its transaction committed at.
    let account = cluster.demo_account().to_string();
    let mine = subscribe(
        port,
        &format!("from=1&kind=commit&account={account}"),
        &[],
        |got| !got.is_empty(),
    );
    assert_eq!(mine[0].id, Some(tx_height));
    let commit: CommitMessage = serde_json::from_str(&mine[0].data).unwrap();
    assert!(commit
        .receipts
        .iter()
        .any(|r| r.tx_hash == registered.tx_hash));

    // Weights at each epoch's end (10 blocks here), oldest first.
    let history: WeightHistoryResponse =
        wait_for("two epochs of weights", Duration::from_secs(30), || {
            cluster
                .get_as::<WeightHistoryResponse>(0, "/v1/validators/history")
                .filter(|h| h.points.len() >= 2)
        });
    let epochs: Vec<u64> = history.points.iter().map(|p| p.epoch).collect();
    assert!(epochs.windows(2).all(|w| w[1] == w[0] + 1), "{epochs:?}");
    for point in &history.points {
        assert_eq!(
            point.height,
            point.epoch * 10,
            "an epoch ends at a multiple of 10"
        );
        assert_eq!(point.weights.len(), 1);
        assert!(point.weights[0].weight > 0 && point.weights[0].consensus_weight.is_some());
    }

    // Bad parameters are refused before streaming.
    for (query, code) in [("kind=blocks", "bad_kind"), ("from=x", "bad_height")] {
        let (status, body) = cluster.get(0, &format!("/v1/events?{query}")).unwrap();
        assert_eq!(
            (status, error_code(&body).as_deref()),
            (400, Some(code)),
            "{query}"
        );
    }

    // A subscriber that never reads, with a small window.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    socket
        .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let mut stalled: std::net::TcpStream = socket.into();
    stalled
        .write_all(b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    wait_for("the subscriber connected", Duration::from_secs(10), || {
        cluster
            .metric(0, "agora_event_subscribers")
            .filter(|n| *n >= 1.0)
    });
    // Transactions make the messages larger; empty blocks keep coming every 100 ms.
    for nonce in 1..=40 {
        let tx = cluster.transfer(nonce, random_account(), 1);
        let _ = http(port, "POST", "/v1/tx", &tx);
    }
    wait_for(
        "the stalled subscriber cut off",
        Duration::from_secs(120),
        || {
            cluster
                .metric(0, "agora_event_subscribers_cut_total")
                .filter(|n| *n >= 1.0)
        },
    );
    let height_at_cut = cluster.status(0).unwrap().height;
    wait_for("the node still committing", Duration::from_secs(30), || {
        Some(()).filter(|_| cluster.status(0).unwrap().height >= height_at_cut + 5)
    });
    assert_eq!(cluster.metric(0, "agora_event_subscribers"), Some(0.0));
    // Reading now: what was buffered, then the reason, then the end of the response.
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut raw = Vec::new();
    stalled.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let body = String::from_utf8(dechunk(&raw[split + 4..])).unwrap();
    let mut received = Vec::new();
    parse_sse(body.lines().map(str::to_string), |m| {
        received.push(m);
        true
    });
    let last = received.last().expect("messages before the cut");
    assert_eq!(last.event, "closed", "{received:?}");
    let closed: ClosedMessage = serde_json::from_str(&last.data).unwrap();
    assert!(
        closed.reason.contains("buffer of 4 messages is full"),
        "{}",
        closed.reason
    );
    let last_height = received.iter().filter_map(|m| m.id).max().unwrap_or(0);
    assert!(
        closed.resume_from >= last_height && closed.resume_from > 0,
        "resume from {} after {last_height}",
        closed.resume_from
    );
    // The leader message this node sent when it was elected is not replayed (no id).
    assert!(received
        .iter()
        .filter(|m| m.event == "leader")
        .all(|m| m.id.is_none() && serde_json::from_str::<LeaderMessage>(&m.data).is_ok()));
}

/// Subscribers are capped (`--event-subscribers`): one past the cap is answered 503 with
/// Retry-After and a reason, and once a subscriber leaves its slot is free again.
#[test]
fn subscribers_past_the_cap_are_told_to_retry() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start_with("event-cap", 1, 1_000, &["--event-subscribers", "1"]);
    cluster.wait_ready(Duration::from_secs(60));
    let url = format!("http://127.0.0.1:{}/v1/events", cluster.nodes[0].http_port);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let first = client.get(&url).send().unwrap();
    assert_eq!(first.status(), 200);
    let refused = client.get(&url).send().unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().unwrap();
    assert_eq!(error_code(&body).as_deref(), Some("unavailable"), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("subscribers"),
        "{body}"
    );
    drop(first);
    let again = wait_for("the slot freed", Duration::from_secs(30), || {
        let response = client.get(&url).send().ok()?;
        (response.status() == 200).then_some(response)
    });
    drop(again);
}

/// SIGTERM ends every open stream with a last `closed` message and the node exits: a
/// subscriber left open (a browser on the explorer page) does not keep it running.
#[test]
fn a_stopping_node_closes_its_open_streams_and_exits() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start("event-stop", 1, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
        .get(format!(
            "http://127.0.0.1:{}/v1/events?kind=commit",
            cluster.nodes[0].http_port
        ))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        parse_sse(
            BufReader::new(response).lines().map_while(Result::ok),
            |message| {
                got.push(message);
                true
            },
        );
        got
    });
    let status = cluster.stop(0);
    assert!(status.success(), "a clean exit: {status}");
    let got = reader.join().unwrap();
    let last = got.last().expect("the stream said something");
    assert_eq!(last.event, "closed", "{got:?}");
    let closed: ClosedMessage = serde_json::from_str(&last.data).unwrap();
    assert_eq!(closed.reason, "the node is shutting down");
}
