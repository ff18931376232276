//! End-to-end tests: real `agora-node` processes on loopback.

use agora_api::{AccountResponse, BlockResponse};
use agora_tests::*;
use std::time::{Duration, Instant};

/// A 3-node cluster elects a leader, commits transactions submitted to any node
/// (followers forward to the leader), and every node reaches the same root at the same height.
#[test]
fn three_nodes_commit_transactions_from_any_node_and_agree() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start("agree", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    for nonce in 0..6u64 {
        let tx = cluster.transfer(nonce, random_account(), 1_000);
        let answer = cluster.submit_and_wait((nonce % 3) as usize, &tx, Duration::from_secs(30));
        assert!(applied(&answer), "{answer:?}");
    }
    let (height, _) = wait_for(
        "all nodes at one height and root",
        Duration::from_secs(30),
        || {
            let statuses: Vec<_> = (0..3)
                .map(|i| cluster.status(i))
                .collect::<Option<Vec<_>>>()?;
            let first = (statuses[0].height, statuses[0].state_root);
            statuses
                .iter()
                .all(|s| (s.height, s.state_root) == first)
                .then_some(first)
        },
    );
    assert!(height >= 7);
    let account: AccountResponse = cluster
        .get_as(1, &format!("/v1/accounts/{}", cluster.demo_account()))
        .unwrap();
    assert_eq!(account.nonce, 6);
    // The chain moves on (empty blocks, certificates): the read is at the agreed height or
    // later, and its root is the one node 0 archived at that height.
    assert!(
        account.at.height >= height,
        "a linearizable read is not stale"
    );
    let block: BlockResponse = wait_for(
        "node 0 archived the height read",
        Duration::from_secs(30),
        || cluster.get_as(0, &format!("/v1/blocks/{}", account.at.height)),
    );
    assert_eq!(
        account.at.state_root, block.state_root,
        "a linearizable read on a follower sees the same state"
    );
    // The validators certify what they applied: every node's chain carries certificates
    // up to the height all reached (later blocks carry the certificates).
    wait_for(
        "every node certifies the height all agreed on",
        Duration::from_secs(30),
        || {
            (0..3)
                .all(|i| {
                    cluster
                        .status(i)
                        .is_some_and(|s| s.certified_height >= height)
                })
                .then_some(())
        },
    );
}

/// kill -9 of the leader: a new leader takes over and commits a new transaction. The
/// leader is killed only once reputation has accrued from service (proposing and signing
/// certificates) and the followers have kept up: no validator may hold half the
/// consensus weight, or the survivors could never form a quorum. The fail-over time is
/// printed (BENCHMARKS.md); the test asserts only that it happens.
#[test]
fn a_new_leader_commits_after_the_leader_is_killed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Empty blocks every 50 ms: epochs (10 blocks) turn fast and reputation accrues.
    let mut cluster = Cluster::start_with("failover", 3, 1_000, &["--empty-block-ms", "50"]);
    cluster.wait_ready(Duration::from_secs(60));
    cluster.submit_and_wait(
        0,
        &cluster.transfer(0, random_account(), 1),
        Duration::from_secs(30),
    );
    // Reputation comes from service: the followers earn by signing commit certificates,
    // so they keep up with the leader, which earns by proposing as well. The leader is
    // killed once every validator's weight has grown past its base and each follower
    // holds at least half the leader's weight.
    let leader = wait_for(
        "every validator earning reputation, followers keeping up with the leader",
        Duration::from_secs(60),
        || {
            let leader = cluster.leader()?;
            let id = cluster.status(leader)?.node;
            let answer: ValidatorsResponse = cluster.get_as(leader, "/v1/validators")?;
            let validators = answer.validators;
            let mine = validators.iter().find(|v| v.validator == id)?.weight;
            let earned = validators.iter().all(|v| v.weight > v.base_reputation);
            let keeping_up = validators.iter().all(|v| v.weight * 2 >= mine);
            (earned && keeping_up).then(|| {
                let consensus = |v: &agora_api::ValidatorInfo| v.consensus_weight.unwrap_or(0);
                let total: u64 = validators.iter().map(consensus).sum();
                let weights: Vec<(u64, u64)> = validators
                    .iter()
                    .map(|v| (v.weight, consensus(v)))
                    .collect();
                assert!(
                    validators.iter().all(|v| consensus(v) * 2 < total),
                    "no validator alone holds half the consensus weight: {weights:?}"
                );
                leader
            })
        },
    );
    // The Raft configuration follows the ledger's (joint change); let it settle.
    wait_for(
        "the configuration to settle",
        Duration::from_secs(30),
        || cluster.status(leader).filter(|s| !s.joint).map(|_| ()),
    );
    let survivor = (leader + 1) % 3;
    let tx = cluster.transfer(1, random_account(), 1);
    let started = Instant::now();
    cluster.kill9(leader);
    let answer = cluster.submit_and_wait(survivor, &tx, Duration::from_secs(60));
    let elapsed = started.elapsed();
    eprintln!(
        "fail-over: a new leader committed a transaction {:.2} s after kill -9 of the old one",
        elapsed.as_secs_f64()
    );
    assert!(applied(&answer));
    let new_leader = wait_for("a new leader", Duration::from_secs(30), || cluster.leader());
    assert_ne!(new_leader, leader);
    // The survivors learned of the death from the closed connections, not only from
    // their election timers (the count is on whichever survivor's report was taken).
    let reports = |i: usize| cluster.metric(i, "agora_raft_leader_disconnects");
    wait_for(
        "a survivor told its leader's connection closed",
        Duration::from_secs(30),
        || {
            (0..3)
                .filter(|i| *i != leader)
                .find(|i| reports(*i).is_some_and(|n| n >= 1.0))
        },
    );
}

/// A node stopped while the others compact past it catches up by snapshot and reaches
/// the same root.
#[test]
fn a_lagging_node_catches_up_by_snapshot() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start("snapshot", 3, 10);
    cluster.wait_ready(Duration::from_secs(60));
    cluster.submit_and_wait(
        0,
        &cluster.transfer(0, random_account(), 1),
        Duration::from_secs(30),
    );
    let leader = wait_for("a leader", Duration::from_secs(30), || cluster.leader());
    let lagging = (leader + 1) % 3;
    cluster.kill9(lagging);
    for nonce in 1..30u64 {
        cluster.submit_and_wait(
            leader,
            &cluster.transfer(nonce, random_account(), 1),
            Duration::from_secs(30),
        );
    }
    assert!(
        cluster.log(leader).contains("snapshot taken"),
        "the leader compacted its log"
    );
    cluster.launch(lagging);
    let leader_root = wait_for(
        "the lagging node to catch up",
        Duration::from_secs(60),
        || {
            let a = cluster.status(leader)?;
            let b = cluster.status(lagging)?;
            (a.height == b.height && a.state_root == b.state_root).then_some(a.state_root)
        },
    );
    assert_ne!(leader_root, agora_core::Hash32::ZERO);
    assert!(
        cluster.log(lagging).contains("installed a snapshot"),
        "caught up through a snapshot, not the log"
    );
    // Past-height proofs: the leader rebuilds the state at a height from its snapshot or
    // the genesis and its block archive; its root is the one archived for that height.
    // The node that skipped those heights says it cannot serve them.
    let height = cluster.status(leader).unwrap().height - 3;
    let proof: ProofResponse = cluster
        .get_as(leader, &format!("/v1/proof?key=globals&height={height}"))
        .expect("a proof at a past height");
    assert_eq!(proof.at.height, height);
    let block: BlockResponse = cluster
        .get_as(leader, &format!("/v1/blocks/{height}"))
        .unwrap();
    assert_eq!(proof.at.state_root, block.state_root);
    let skipped = (1..height)
        .find(|h| cluster.get(lagging, &format!("/v1/blocks/{h}")).unwrap().0 == 404)
        .expect("the snapshot skipped some heights");
    let (status, refused) = cluster
        .get(lagging, &format!("/v1/proof?key=globals&height={skipped}"))
        .unwrap();
    assert_eq!(
        (status, error_code(&refused).as_deref()),
        (404, Some("not_found")),
        "{refused}"
    );
}

/// A follower whose database is deleted (the operator's path for a corrupt one: keep the
/// keys, move `node.db` aside) re-joins and reaches the leader's root (issue #16, item 1).
/// The leader finds its log behind what it had acknowledged, says so in its log naming the
/// node and counts it; until the node has caught up, `/ready` does not answer 200.
#[test]
fn a_follower_that_lost_its_database_rejoins_and_is_not_ready_until_caught_up() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start("wiped", 3, 20);
    cluster.wait_ready(Duration::from_secs(60));
    let leader = wait_for("a leader", Duration::from_secs(30), || cluster.leader());
    let wiped = (leader + 1) % 3;
    let commit_transfers = |cluster: &Cluster, nonces: std::ops::Range<u64>| {
        for nonce in nonces {
            let tx = cluster.transfer(nonce, random_account(), 3);
            cluster.submit_and_wait(leader, &tx, Duration::from_secs(30));
        }
    };
    commit_transfers(&cluster, 0..40);
    cluster.kill9(wiped);
    for file in ["node.db", "node.db-wal", "node.db-shm"] {
        let _ = std::fs::remove_file(cluster.nodes[wiped].dir.join(file));
    }
    commit_transfers(&cluster, 40..45);
    cluster.launch(wiped);
    // Until its state matches the leader's, a 200 from /ready is only allowed within the
    // stated bound of the leader's commit.
    let mut not_ready_seen = 0;
    let root = wait_for(
        "the wiped node at the leader's root",
        Duration::from_secs(60),
        || {
            let leader_commit = cluster.status(leader)?.commit_index;
            match cluster.get(wiped, "/ready") {
                Some((200, _)) => {
                    let applied = cluster.status(wiped)?.applied_index;
                    assert!(
                    applied + agora_api::CATCH_UP_BOUND >= leader_commit,
                    "ready at applied index {applied} while the leader has committed {leader_commit}"
                );
                }
                Some((503, body)) => {
                    not_ready_seen += 1;
                    assert_eq!(error_code(&body).as_deref(), Some("unavailable"), "{body}");
                }
                _ => {}
            }
            let (a, b) = (cluster.status(leader)?, cluster.status(wiped)?);
            (a.height == b.height && a.state_root == b.state_root && a.height >= 45)
                .then_some(a.state_root)
        },
    );
    assert_ne!(root, agora_core::Hash32::ZERO);
    eprintln!("the wiped node answered /ready 503 {not_ready_seen} times while catching up");
    let node_id = cluster.status(wiped).unwrap().node.to_string();
    let leader_log = cluster.log(leader);
    assert!(
        leader_log
            .lines()
            .any(|l| l.contains("lost durable state") && l.contains(&node_id)),
        "the leader names the node that lost its state"
    );
    let regressions = cluster.metric(leader, "agora_raft_follower_regressions");
    assert!(
        regressions.is_some_and(|n| n >= 1.0),
        "counted: {regressions:?}"
    );
    // It came back without its promise record, so it rejoined before voting.
    assert!(
        cluster.log(wiped).contains("holds no promise record"),
        "the node says it rejoins"
    );
    let rejoins = cluster.metric(wiped, "agora_raft_rejoins");
    assert_eq!(rejoins, Some(1.0), "rejoined once");
    assert!(!cluster.status(wiped).unwrap().rejoining);
    // It serves what it now holds: the transfers before the wipe are in its state.
    let account: AccountResponse = cluster
        .get_as(
            wiped,
            &format!("/v1/accounts/{}?consistency=local", cluster.demo_account()),
        )
        .unwrap();
    assert_eq!(account.nonce, 45);
}

/// kill -9 of every node in the middle of a load, then restart: every transaction that
/// was acknowledged as committed is present exactly once, and the supply is conserved.
#[test]
fn killing_every_node_mid_load_loses_nothing_acknowledged() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start("crash", 3, 20);
    cluster.wait_ready(Duration::from_secs(60));
    let mut acknowledged = Vec::new();
    for nonce in 0..15u64 {
        let answer = cluster.submit_and_wait(
            (nonce % 3) as usize,
            &cluster.transfer(nonce, random_account(), 7),
            Duration::from_secs(30),
        );
        acknowledged.push((answer.tx_hash, answer.height.unwrap()));
    }
    // One more in flight while everything dies.
    let in_flight = cluster.transfer(15, random_account(), 7);
    let port = cluster.nodes[0].http_port;
    let submitter = std::thread::spawn(move || http(port, "POST", "/v1/tx", &in_flight));
    for i in 0..3 {
        cluster.kill9(i);
    }
    let _ = submitter.join();
    for i in 0..3 {
        cluster.launch(i);
    }
    cluster.wait_ready(Duration::from_secs(60));
    let mut seen = std::collections::BTreeMap::new();
    let mut blocks = 0u128;
    // `/ready` says a node serves, not that it has caught up: right after a restart of
    // every node, node 0 may not yet have applied the heights its peers acknowledged
    // before the kill. Read up to the highest acknowledged height at least, once node 0
    // has applied it (it can only get there by committing what was acknowledged).
    let acknowledged_height = acknowledged.iter().map(|(_, h)| *h).max().unwrap();
    let height = wait_for(
        "node 0 past every acknowledged height",
        Duration::from_secs(60),
        || {
            cluster
                .status(0)
                .map(|s| s.height)
                .filter(|h| *h >= acknowledged_height)
        },
    );
    for h in 1..=height {
        // A node that caught up by snapshot has no archive for the heights it skipped, so
        // read each height from whichever node applied it.
        let archived: BlockResponse =
            wait_for("an archived height", Duration::from_secs(30), || {
                (0..3).find_map(|i| cluster.get_as(i, &format!("/v1/blocks/{h}")))
            });
        if archived.block.is_some() {
            blocks += 1;
        }
        for receipt in &archived.receipts {
            if receipt.status == agora_core::TxStatus::Applied {
                *seen.entry(receipt.tx_hash).or_insert(0) += 1;
            }
        }
    }
    for (hash, at) in &acknowledged {
        assert_eq!(
            seen.get(hash),
            Some(&1),
            "acknowledged transaction {hash} (height {at}) applied exactly once; \
             applied counts over heights 1..={height}: {seen:?}; logs in {dir}",
            dir = cluster.dir.display(),
        );
    }
    let chain: ChainResponse = cluster.get_as(0, "/v1/chain").unwrap();
    let reward = chain.params.proposer_reward.0;
    let supply = chain.globals.total_supply.0;
    assert_eq!(
        supply,
        1_000_000_000 + blocks * reward,
        "supply changes only by proposer rewards"
    );
}

/// A peer that is not in the validator configuration cannot influence consensus: its
/// messages are dropped and counted, and the cluster keeps its leader and term.
#[test]
fn a_peer_outside_the_validator_configuration_is_ignored() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start("outsider", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let leader = wait_for("a leader", Duration::from_secs(30), || cluster.leader());
    let term = cluster.status(leader).unwrap().term;
    // The outsider runs its own genesis in which it is the heaviest validator and the
    // cluster's members are validators too, so it campaigns against them.
    let dir = cluster.dir.join("outsider");
    let port = free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let status = std::process::Command::new(bin())
        .args([
            "init",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            &listen,
            "--key-kind",
            "ml-dsa-44",
            "--base-reputation",
            "1000",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let genesis = dir.join("genesis.json");
    let mut args = vec![
        "genesis".to_string(),
        "--chain-name".into(),
        "rogue".into(),
        "--out".into(),
        genesis.display().to_string(),
        "--validator".into(),
        dir.join("validator.json").display().to_string(),
    ];
    for node in &cluster.nodes {
        args.push("--validator".into());
        args.push(node.dir.join("validator.json").display().to_string());
    }
    assert!(std::process::Command::new(bin())
        .args(&args)
        .status()
        .unwrap()
        .success());
    let peers: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.public["address"].as_str().unwrap().to_string())
        .collect();
    let mut rogue = std::process::Command::new(bin())
        .args([
            "run",
            "--data-dir",
            dir.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
            "--listen",
            &listen,
            "--http",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args(["--tick-ms", "50", "--peer", &peers.join(",")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dropped = wait_for(
        "the cluster to drop the outsider's messages",
        Duration::from_secs(30),
        || {
            let count = cluster.metric(leader, "agora_network_dropped_unauthorized")?;
            (count > 0.0).then_some(count)
        },
    );
    assert!(dropped > 0.0);
    std::thread::sleep(Duration::from_secs(2));
    let after = cluster.status(leader).unwrap();
    assert_eq!(after.role, RoleName::Leader);
    assert_eq!(after.term, term, "the outsider could not force an election");
    cluster.submit_and_wait(
        leader,
        &cluster.transfer(0, random_account(), 1),
        Duration::from_secs(30),
    );
    rogue.kill().unwrap();
    rogue.wait().unwrap();
}

/// `agora-node devnet ARGS` in `dir` on free loopback ports, its output discarded; the
/// process and node 0's HTTP port (node i serves on that port + i).
fn spawn_devnet(dir: &std::path::Path, args: &[&str]) -> (Terminate, u16) {
    let (p2p, http_base) = (free_port_block(3), free_port_block(3));
    let devnet = Terminate(
        std::process::Command::new(bin())
            .arg("devnet")
            .args(args)
            .args(["--dir", dir.to_str().unwrap()])
            .args(["--p2p-base-port", &p2p.to_string()])
            .args(["--http-base-port", &http_base.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    (devnet, http_base)
}

/// The devnet demo account's first transaction on the chain of `genesis_file` (in `dir`):
/// it registers the key and sends `amount` to `to`.
fn demo_first_transfer(
    dir: &std::path::Path,
    genesis_file: &str,
    to: agora_core::AccountId,
    amount: u128,
) -> Vec<u8> {
    let demo = agora_node::keys::load_ml_dsa(&dir.join("demo.key")).unwrap();
    let genesis =
        agora_core::Genesis::from_json(&std::fs::read_to_string(dir.join(genesis_file)).unwrap())
            .unwrap();
    let tx = agora_core::tx::Transaction {
        chain_id: genesis.chain_id(),
        sender: agora_core::tx::Sender::Register(demo.public_key().clone()),
        nonce: 0,
        action: agora_core::tx::Action::Transfer {
            to,
            amount: agora_core::Amount(amount),
        },
    }
    .sign(&demo, agora_node::keys::os_random());
    agora_core::encoding::Canonical::to_canonical_bytes(&tx)
}

/// Posts `bytes` to `path` (a `?wait=commit` route) until a 200; the answer.
fn commit_at(port: u16, path: &str, bytes: &[u8]) -> SubmitResponse {
    let answer = wait_for("the transfer to commit", Duration::from_secs(30), || {
        http(port, "POST", path, bytes).filter(|(s, _)| *s == 200)
    });
    serde_json::from_value(answer.1).unwrap()
}

/// SIGTERM to the devnet; it must stop every node and exit successfully.
fn stop_devnet(mut devnet: Terminate, dir: &std::path::Path) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(devnet.0.id().to_string())
        .status();
    assert!(devnet.0.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(dir);
}

/// The README's first command: `agora-node devnet` starts a working cluster with a
/// funded demo account whose transfer commits; SIGTERM stops it all.
#[test]
fn devnet_starts_a_working_cluster() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("devnet");
    let (devnet, http_base) = spawn_devnet(&dir, &["--nodes", "3"]);
    wait_for("devnet ready", Duration::from_secs(60), || {
        http(http_base, "GET", "/ready", &[]).filter(|(s, _)| *s == 200)
    });
    let bytes = demo_first_transfer(&dir, "genesis.json", random_account(), 5);
    let answer = commit_at(http_base + 1, "/v1/tx?wait=commit", &bytes);
    assert!(applied(&answer), "{answer:?}");
    stop_devnet(devnet, &dir);
}

/// A port already taken is named with its setting (issue #13), and devnet stops with the
/// node's last log lines instead of running on without it.
#[test]
fn a_port_in_use_is_named_and_stops_devnet() {
    for (which, expected) in [
        ("p2p", "cannot listen for peers on /ip4/127.0.0.1/tcp/"),
        ("http", "cannot serve the HTTP API on 127.0.0.1:"),
    ] {
        let dir = temp_dir(&format!("port-in-use-{which}"));
        let (p2p, http_port) = (free_port(), free_port());
        let taken = if which == "p2p" { p2p } else { http_port };
        let _holder = std::net::TcpListener::bind(("127.0.0.1", taken)).unwrap();
        let output = std::process::Command::new(bin())
            .args(["devnet", "--nodes", "1", "--dir", dir.to_str().unwrap()])
            .args(["--p2p-base-port", &p2p.to_string()])
            .args(["--http-base-port", &http_port.to_string()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{which}: devnet kept running");
        assert!(
            stderr.contains(&format!("{expected}{taken}")) && stderr.contains("in use"),
            "{which}: {stderr}"
        );
        let setting = if which == "p2p" { "--listen" } else { "--http" };
        assert!(
            stderr.contains(setting),
            "{which} names its setting: {stderr}"
        );
        assert!(stderr.contains("node0 exited"), "{stderr}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `agora-node devnet --zones 2`: every node serves both zones (`agora-devnet` at the
/// unprefixed routes, `agora-devnet-2` under `/v1/zones/`), and a transfer signed for the
/// second zone's chain commits there and not in the first.
#[test]
fn devnet_serves_several_zones() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("devnet-zones");
    let (devnet, http_base) = spawn_devnet(&dir, &["--nodes", "3", "--zones", "2"]);
    wait_for("both zones ready", Duration::from_secs(60), || {
        [
            "/v1/zones/agora-devnet/ready",
            "/v1/zones/agora-devnet-2/ready",
        ]
        .iter()
        .all(|path| http(http_base, "GET", path, &[]).is_some_and(|(s, _)| s == 200))
        .then_some(())
    });
    let (_, zones) = http(http_base + 2, "GET", "/v1/zones", &[]).unwrap();
    let zones: agora_api::ZonesResponse = serde_json::from_value(zones).unwrap();
    let names: Vec<&str> = zones.zones.iter().map(|z| z.name.as_str()).collect();
    assert_eq!(names, ["agora-devnet", "agora-devnet-2"]);
    let genesis = agora_core::Genesis::from_json(
        &std::fs::read_to_string(dir.join("genesis-zone2.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(zones.zones[1].chain_id, genesis.chain_id());
    let to = random_account();
    let bytes = demo_first_transfer(&dir, "genesis-zone2.json", to, 5);
    let answer = commit_at(
        http_base + 1,
        "/v1/zones/agora-devnet-2/tx?wait=commit",
        &bytes,
    );
    assert!(applied(&answer), "{answer:?}");
    let balance = |path: &str| {
        let (_, account) = http(http_base, "GET", path, &[]).unwrap();
        serde_json::from_value::<agora_api::AccountResponse>(account)
            .unwrap()
            .balance
    };
    assert_eq!(
        balance(&format!("/v1/zones/agora-devnet-2/accounts/{to}")),
        agora_core::Amount(5)
    );
    assert_eq!(
        balance(&format!("/v1/accounts/{to}")),
        agora_core::Amount(0),
        "the first zone is another ledger"
    );
    stop_devnet(devnet, &dir);
}
