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

/// Governance adds a witness to a running chain, through the CLI as a process: a node that
/// is in no configuration is proposed (`agora propose add-witness --validator-file`),
/// voted in, and then reports itself a witness; with it, either full member's loss is
/// survived (kill -9 of the leader → the other commits). Governance then removes it
/// (`remove-witness`): the two full members go on alone, and the removed witness serves
/// nothing (421) — its ledger was never executed.
#[test]
fn governance_adds_a_witness_that_votes_and_removes_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start_opts(
        "witness-governance",
        3,
        Options {
            snapshot_interval: 1_000,
            spares: 1,
            ..Options::default()
        },
    );
    let spare = 2;
    let ready = |cluster: &Cluster, i: usize| {
        wait_for(&format!("node {i} ready"), Duration::from_secs(60), || {
            cluster.get(i, "/ready").filter(|(s, _)| *s == 200)
        });
    };
    ready(&cluster, 0);
    ready(&cluster, 1);
    // A member with all the stake, made with the CLI and funded by the demo account.
    let mut agora = Agora {
        node: format!("http://127.0.0.1:{}", cluster.nodes[0].http_port),
        dir: cluster.dir.clone(),
    };
    let created = agora.json("member.key", &["keys", "new", "--kind", "ml-dsa-44"]);
    let member = created["account"].as_str().unwrap().to_string();
    let member_id = agora_core::AccountId(agora_core::Hash32::from_hex(&member).unwrap());
    let fund = cluster.transfer(0, member_id, 500_000_000);
    assert!(applied(&cluster.submit_and_wait(
        0,
        &fund,
        Duration::from_secs(30)
    )));
    let mut nonce = 1;
    let cli = |agora: &Agora, args: &[&str]| {
        let answer: agora_api::SubmitResponse = agora.answer("member.key", args);
        assert!(applied(&answer), "agora {args:?}: {answer:?}");
    };
    cli(&agora, &["stake", "100", "--wait"]);
    let spare_file = cluster.nodes[spare].dir.join("validator.json");
    let witness_id = cluster.nodes[spare].public["account"]
        .as_str()
        .unwrap()
        .to_string();
    let propose_and_pass = |agora: &Agora, proposal: &[&str], id: &str| {
        let mut args = vec!["propose"];
        args.extend_from_slice(proposal);
        args.extend(["--deposit", "1", "--wait"]);
        cli(agora, &args);
        cli(agora, &["vote", id, "yes", "--wait"]);
    };
    propose_and_pass(
        &agora,
        &[
            "add-witness",
            "--validator-file",
            spare_file.to_str().unwrap(),
            "--weight",
            "10",
        ],
        "0",
    );
    let status = wait_for(
        "the node governance added reports itself a witness",
        Duration::from_secs(120),
        || cluster.status(spare).filter(|s| s.witness),
    );
    assert!(status.membership.len() == 3, "{status:?}");
    let (code, body) = cluster
        .get(spare, &format!("/v1/accounts/{member}"))
        .unwrap();
    assert_eq!((code, error_code(&body).as_deref()), (421, Some("witness")));

    // With the witness, the loss of the leader is survived.
    let leader = wait_for("a leader", Duration::from_secs(30), || cluster.leader());
    assert_ne!(leader, spare, "a witness never leads");
    let survivor = 1 - leader;
    cluster.kill9(leader);
    let tx = cluster.transfer(nonce, random_account(), 1_000);
    let answer = cluster.submit_and_wait(survivor, &tx, Duration::from_secs(60));
    assert!(applied(&answer), "{answer:?}");
    nonce += 1;
    cluster.launch(leader);
    ready(&cluster, leader);

    // Governance removes it: the full members go on without it.
    agora.node = format!("http://127.0.0.1:{}", cluster.nodes[survivor].http_port);
    propose_and_pass(&agora, &["remove-witness", &witness_id], "1");
    wait_for(
        "a configuration without the witness",
        Duration::from_secs(120),
        || {
            cluster
                .status(survivor)
                .filter(|s| s.membership.len() == 2 && !s.joint)
        },
    );
    let tx = cluster.transfer(nonce, random_account(), 1_000);
    assert!(applied(&cluster.submit_and_wait(
        survivor,
        &tx,
        Duration::from_secs(60)
    )));
    let (code, body) = cluster
        .get(spare, &format!("/v1/accounts/{member}"))
        .unwrap();
    assert_eq!((code, error_code(&body).as_deref()), (421, Some("witness")));
}
