//! Witnesses as real processes: two full members and a witness, on loopback.

use agora_tests::*;
use std::time::{Duration, Instant};

/// Two full members and a witness survive the loss of either full member: kill -9 of the
/// leader, and the other full member (elected with the witness's vote, after taking from
/// it any entry it missed) commits; the killed member comes back and catches up; then the
/// other full member is killed, and the first commits again. The witness never leads,
/// keeps the genesis as its state, and answers reads and transactions with `421 witness`.
#[test]
fn two_full_members_and_a_witness_survive_the_loss_of_either_full_member() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start_opts(
        "witness",
        3,
        Options {
            snapshot_interval: 1_000,
            witnesses: 1,
            ..Options::default()
        },
    );
    cluster.wait_ready(Duration::from_secs(60));
    let witness = 2;
    let status = cluster.status(witness).unwrap();
    assert!(status.witness, "{status:?}");
    assert!(!cluster.status(0).unwrap().witness);
    // The CLI, as a process, says so.
    let agora = Agora {
        node: format!("http://127.0.0.1:{}", cluster.nodes[witness].http_port),
        dir: cluster.dir.clone(),
    };
    let text = agora.text("no.key", &["status"]);
    assert!(text.contains("a witness"), "{text}");

    let mut nonce = 0;
    let tx = cluster.transfer(nonce, random_account(), 1_000);
    assert!(applied(&cluster.submit_and_wait(
        0,
        &tx,
        Duration::from_secs(30)
    )));
    nonce += 1;

    // The witness serves no reads and takes no transactions.
    let account = format!("/v1/accounts/{}", cluster.demo_account());
    let (code, body) = cluster.get(witness, &account).unwrap();
    assert_eq!((code, error_code(&body).as_deref()), (421, Some("witness")));
    let tx = cluster.transfer(nonce, random_account(), 1_000);
    let (code, body) = http(
        cluster.nodes[witness].http_port,
        "POST",
        "/v1/tx?wait=commit",
        &tx,
    )
    .unwrap();
    assert_eq!((code, error_code(&body).as_deref()), (421, Some("witness")));

    let mut killed = Vec::new();
    for round in 0..2 {
        let leader = wait_for("a leader", Duration::from_secs(30), || cluster.leader());
        assert_ne!(leader, witness, "a witness never leads");
        // First the leader; then the full member not killed yet, leader or not.
        let victim = if round == 0 { leader } else { 1 - killed[0] };
        let survivor = 1 - victim;
        cluster.kill9(victim);
        killed.push(victim);
        let started = Instant::now();
        let tx = cluster.transfer(nonce, random_account(), 1_000);
        let answer = cluster.submit_and_wait(survivor, &tx, Duration::from_secs(60));
        assert!(applied(&answer), "{answer:?}");
        nonce += 1;
        eprintln!(
            "node {victim} killed ({}): node {survivor} committed with the witness {:.2} s later",
            if victim == leader {
                "the leader"
            } else {
                "a follower"
            },
            started.elapsed().as_secs_f64()
        );
        assert_eq!(cluster.leader(), Some(survivor));
        cluster.launch(victim);
        cluster.wait_ready(Duration::from_secs(60));
    }
    assert_eq!(killed.len(), 2);
    assert_ne!(killed[0], killed[1], "both full members were lost in turn");

    // Everything committed is on both full members; the witness stayed at the genesis.
    let final_nonce = nonce;
    for i in 0..2 {
        let answer: agora_api::AccountResponse = wait_for(
            "both full members hold every transfer",
            Duration::from_secs(30),
            || {
                cluster
                    .get_as::<agora_api::AccountResponse>(i, &account)
                    .filter(|a| a.nonce == final_nonce)
            },
        );
        assert_eq!(answer.nonce, final_nonce);
    }
    let status = cluster.status(witness).unwrap();
    assert_eq!(status.height, 0, "a witness does not execute the ledger");
    assert!(status.commit_index > 0 && status.applied_index == status.commit_index);
}
