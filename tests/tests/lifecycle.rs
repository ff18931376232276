//! A full governance lifecycle driven only through the `agora` binary, against a real
//! node (SQLite, libp2p, driver, HTTP API) running in this test process: keys (one of
//! them passphrase-encrypted), a parameter-change proposal, votes from three accounts,
//! the running tally, the close, and the new fee taking effect.

use agora_api::{
    AccountResponse, BlockResponse, ProposalResponse, ProposalsResponse, RoleName, StatusResponse,
    SubmitResponse, TxResponse, ValidatorsResponse,
};
use agora_core::genesis::{Genesis, GenesisAccount};
use agora_core::outcome::Event;
use agora_core::state::{Decision, ProposalStatus};
use agora_core::{AccountId, Amount, Hash32, KeyKind, Params};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use agora_tests::*;

#[test]
fn a_parameter_change_goes_from_proposal_to_effect_through_the_cli() {
    let dir = std::env::temp_dir().join(format!("agora-cli-lifecycle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut agora = Agora {
        node: String::new(),
        dir: dir.clone(),
    };
    // Three members make their keys with the CLI; the third encrypts hers.
    let mut members = Vec::new();
    for (name, extra) in [("alice", None), ("bob", None), ("carol", Some("--encrypt"))] {
        let mut args = vec!["keys", "new", "--kind", "ml-dsa-44"];
        args.extend(extra);
        let created = agora.json(&format!("{name}.key"), &args);
        assert_eq!(created["encrypted"], extra.is_some());
        members.push(created["account"].as_str().unwrap().to_string());
    }
    let carol_file = std::fs::read(dir.join("carol.key")).unwrap();
    assert!(carol_file.starts_with(b"age-encryption.org/v1\n"));
    // A chain where they hold stake 100 / 60 / 50 tokens; voting lasts 60 blocks.
    let validator = agora_testkit::seeded_key(KeyKind::MlDsa44, "lifecycle-validator");
    let genesis = Genesis {
        witnesses: vec![],
        chain_name: "cli-lifecycle".into(),
        params: Params {
            voting_period_blocks: 60,
            unbonding_blocks: 100,
            ..Params::default()
        },
        accounts: members
            .iter()
            .zip([100u128, 60, 50])
            .map(|(id, stake)| GenesisAccount {
                account: AccountId(Hash32::from_hex(id).unwrap()),
                balance: Amount(1_000_000_000),
                staked: Amount(stake * 1_000_000),
            })
            .collect(),
        validators: vec![seeded_validator("lifecycle-validator")],
        treasury: Amount(0),
    }
    .normalized()
    .unwrap();
    let (node, stop) = start_node(
        &dir,
        &genesis,
        &TestNode::new("lifecycle-validator"),
        vec![],
        false,
    );
    agora.node = node;
    let started = Instant::now();
    while !serde_json::from_slice::<StatusResponse>(
        &agora.run("alice.key", &["--json", "status"]).stdout,
    )
    .is_ok_and(|s| s.role == RoleName::Leader)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the node leads"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Propose: double the fee.
    let proposed: SubmitResponse = agora.answer(
        "alice.key",
        &[
            "propose",
            "param",
            "--set",
            "fee=0.00002",
            "--deposit",
            "1",
            "--wait",
        ],
    );
    assert!(applied(&proposed));
    // The proposal's transaction, looked up by its id.
    let hash = proposed.tx_hash.to_string();
    let found: TxResponse = agora.answer("alice.key", &["tx", &hash, "--wait"]);
    let TxResponse::Committed(found) = found else {
        panic!("committed: {found:?}")
    };
    assert_eq!(Some(found.height), proposed.height);
    assert_eq!(
        found.sender.map(|s| s.to_string()),
        Some(members[0].clone())
    );
    assert!(
        matches!(found.events.as_slice(), [Event::KeyRegistered { .. }, Event::ProposalSubmitted { proposer, .. }] if proposer.to_string() == members[0]),
        "{:?}",
        found.events
    );
    let text = agora.text("alice.key", &["tx", &hash]);
    assert!(
        text.starts_with(&format!("committed at height {}", found.height))
            && text.contains("proposal_submitted"),
        "{text}"
    );
    let unknown = agora.run("alice.key", &["tx", &"00".repeat(32)]);
    assert_eq!(unknown.status.code(), Some(3), "unknown: exit 3");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown_tx"));
    // The stream, from the start: the proposal's submission, as a JSON line.
    let watched = agora.text(
        "alice.key",
        &[
            "--json", "watch", "--from", "1", "--kind", "proposal", "--count", "1",
        ],
    );
    let line: Value = serde_json::from_str(watched.trim()).expect("one JSON line");
    assert_eq!(line["event"], "proposal");
    assert_eq!(line["id"], found.height.to_string());
    assert_eq!(
        line["data"]["event"]["event"], "proposal_submitted",
        "{line}"
    );
    let open: ProposalsResponse =
        agora.answer("alice.key", &["proposals", "list", "--status", "voting"]);
    let id = open.proposals.first().expect("the proposal is listed").id;
    let id_text = id.to_string();

    // Votes from three accounts: 160 tokens yes, 50 no.
    for (key, choice) in [
        ("alice.key", "yes"),
        ("bob.key", "yes"),
        ("carol.key", "no"),
    ] {
        let voted: SubmitResponse = agora.answer(key, &["vote", &id_text, choice, "--wait"]);
        assert!(applied(&voted), "{key} voted");
    }
    let shown: ProposalResponse = agora.answer("alice.key", &["proposals", "show", &id_text]);
    assert_eq!(shown.votes.len(), 3);
    let running = shown.running.expect("a running tally while voting");
    assert_eq!(running.tally.yes, Amount(160_000_000));
    assert_eq!(running.tally.no, Amount(50_000_000));
    assert_eq!(running.decision, Decision::Passes);
    let text = agora.text("alice.key", &["proposals", "show", &id_text]);
    assert!(text.contains("if tallied now, it passes"), "{text}");
    assert!(text.contains("blocks left"), "{text}");

    // With no further traffic, empty blocks (every 200 ms here) carry the chain past the
    // voting period; the vote closes and the proposal executes.
    let bob = members[1].clone();
    let started = Instant::now();
    loop {
        let shown: ProposalResponse = agora.answer("alice.key", &["proposals", "show", &id_text]);
        if shown.proposal.status != ProposalStatus::Voting {
            assert_eq!(shown.proposal.status, ProposalStatus::Passed);
            let tally = shown
                .proposal
                .tally
                .expect("a tallied proposal keeps its tally");
            assert_eq!(tally.yes, Amount(160_000_000));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the vote closes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The parameters as they were when the proposal was made, proved and verified here;
    // the same proof checked against the root archived for that height.
    let then = proposed.height.unwrap().to_string();
    let old = agora.json("alice.key", &["proof", "params", "--height", &then]);
    assert_eq!(old["verified"], true);
    assert_eq!(old["height"].to_string(), then);
    let block: BlockResponse = agora.answer("alice.key", &["block", &then]);
    let root = block.state_root.to_string();
    let against = agora.json(
        "alice.key",
        &["proof", "params", "--height", &then, "--root", &root],
    );
    assert_eq!(against["verified"], true);
    let now = agora.json("alice.key", &["proof", "params"]);
    assert_eq!(now["verified"], true);
    assert_ne!(now["value"], old["value"], "the fee changed since");
    // The verified value, decoded by its key's type (issue #12): the fee as it was then and
    // as it is now; an account as balances and a nonce.
    assert_ne!(now["decoded"]["fee"], old["decoded"]["fee"], "{now} {old}");
    let alice = agora.answer::<AccountResponse>("alice.key", &["account"]);
    let proved = agora.text(
        "alice.key",
        &["proof", &format!("account:{}", alice.account)],
    );
    assert!(
        proved.starts_with("VERIFIED")
            && proved.contains(&format!("nonce {}", alice.nonce))
            && proved.contains("balance "),
        "{proved}"
    );
    let future = agora.run("alice.key", &["proof", "params", "--height", "999999999"]);
    assert_eq!(future.status.code(), Some(3), "a height not reached yet");
    let validators: ValidatorsResponse = agora.answer("alice.key", &["validators"]);
    assert_eq!(validators.validators.len(), 1);
    // The cluster at a glance (issue #12): the node, and a port where nothing listens,
    // each on its own aligned row.
    let cluster = agora.text(
        "alice.key",
        &["--node", "http://127.0.0.1:9", "status", "--cluster"],
    );
    let lines: Vec<&str> = cluster.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two rows:\n{cluster}");
    assert!(
        lines[0].contains("reachable") && lines[0].contains("state root"),
        "{cluster}"
    );
    assert!(
        lines[1].contains("leader") && lines[1].trim_end().ends_with("yes"),
        "{cluster}"
    );
    assert!(
        lines[2].contains("127.0.0.1:9") && lines[2].contains("no:"),
        "{cluster}"
    );
    let column = lines[0].find("height").unwrap();
    assert!(
        lines[1][..column + "height".len()]
            .trim_end()
            .ends_with(char::is_numeric),
        "numbers line up under their header:\n{cluster}"
    );

    // What the CLI can refuse it refuses before signing (issue #16, item 6): zero,
    // unparsable and overflowing amounts are usage errors (2); amounts the account cannot
    // cover are refused (3) with the balance, and nothing reaches the chain. --force sends.
    let nonce = |agora: &Agora| {
        agora
            .answer::<AccountResponse>("alice.key", &["account"])
            .nonce
    };
    let before = nonce(&agora);
    for amount in [
        "0",
        "0.0",
        "twelve",
        "1.0000001",
        "340282366920938463463374607431768211456",
    ] {
        let refused = agora.run("alice.key", &["transfer", &bob, amount]);
        assert_eq!(refused.status.code(), Some(2), "transfer of {amount}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(amount), "names the bad amount: {stderr}");
    }
    let too_much = agora.run("alice.key", &["transfer", &bob, "5000", "--wait"]);
    assert_eq!(too_much.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&too_much.stderr);
    assert!(
        stderr.contains("balance is ") && stderr.contains("--force"),
        "{stderr}"
    );
    let unstake = agora.run("alice.key", &["unstake", "500", "--wait"]);
    assert_eq!(unstake.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unstake.stderr).contains("100 staked"));
    assert_eq!(nonce(&agora), before, "nothing was sent");
    let forced = agora.run(
        "alice.key",
        &["transfer", &bob, "5000", "--wait", "--force"],
    );
    assert_eq!(forced.status.code(), Some(3), "sent, and failed on chain");
    assert!(String::from_utf8_lossy(&forced.stderr).contains("the transaction failed"));
    assert_eq!(nonce(&agora), before + 1, "forced: on chain, fee paid");

    // The other seven kinds of proposal go in the same way.
    let validator_id = AccountId::from_public_key(validator.public_key()).to_string();
    // A node's public file (validator.json, as `agora-node init` writes it) for a label.
    let public_file = |label: &str| {
        let key = agora_testkit::seeded_key(KeyKind::MlDsa44, label);
        let path = dir.join(format!("{label}.json"));
        let public = serde_json::json!({
            "public_key": key.public_key(),
            "peer_id": agora_node::keys::seeded_network_key(label).public().to_peer_id().to_string(),
            "base_reputation": 5,
        });
        std::fs::write(&path, public.to_string()).unwrap();
        (key, path)
    };
    let (newcomer, validator_file) = public_file("lifecycle-newcomer");
    let (witness, witness_file) = public_file("lifecycle-witness");
    let kinds: [Vec<&str>; 6] = [
        vec![
            "text",
            "--title",
            "Adopt the charter",
            "--body",
            "As drafted.",
        ],
        vec!["spend", "--to", &bob, "--amount", "2.5"],
        vec![
            "add-validator",
            "--validator-file",
            validator_file.to_str().unwrap(),
        ],
        vec!["remove-validator", &validator_id],
        vec!["set-reputation", &validator_id, "--base", "40"],
        vec![
            "add-witness",
            "--validator-file",
            witness_file.to_str().unwrap(),
            "--weight",
            "7",
        ],
    ];
    for kind in &kinds {
        let mut args = vec!["propose"];
        args.extend(kind.iter().copied());
        args.extend(["--deposit", "1", "--wait"]);
        let answer: SubmitResponse = agora.answer("bob.key", &args);
        assert!(applied(&answer), "{kind:?}");
    }
    let open = agora.text("alice.key", &["proposals", "list", "--status", "voting"]);
    for expected in [
        "text: Adopt the charter",
        "spend 2.5 to",
        &format!(
            "add validator {}",
            AccountId::from_public_key(newcomer.public_key())
        ),
        &format!("remove validator {validator_id}"),
        &format!("set reputation of {validator_id} to 40"),
        &format!(
            "add witness {} of weight 7",
            AccountId::from_public_key(witness.public_key())
        ),
    ] {
        assert!(open.contains(expected), "{expected} in\n{open}");
    }
    // Removing a witness the chain does not have is refused on chain, with the reason.
    let unknown = agora.run(
        "bob.key",
        &[
            "propose",
            "remove-witness",
            &validator_id,
            "--deposit",
            "1",
            "--wait",
        ],
    );
    assert_eq!(unknown.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("unknown_witness") || stderr.contains("no such witness"),
        "{stderr}"
    );

    let passed: ProposalsResponse =
        agora.answer("alice.key", &["proposals", "list", "--status", "passed"]);
    assert_eq!(passed.proposals.first().map(|p| p.id), Some(id));
    // The effect: the next transaction pays the new fee.
    let paid: SubmitResponse = agora.answer("carol.key", &["transfer", &bob, "1", "--wait"]);
    assert!(applied(&paid));
    assert_eq!(paid.receipt.map(|r| r.fee), Some(Amount(20)));

    // A wrong passphrase opens nothing.
    let refused = Command::new(cli())
        .args(["--node", &agora.node, "--key"])
        .arg(dir.join("carol.key"))
        .args(["vote", &id_text, "yes"])
        .env("AGORA_PASSPHRASE", "not it")
        .env("AGORA_CONFIG", dir.join("no-config.toml"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot decrypt"));

    drop(stop);
    let _ = std::fs::remove_dir_all(dir);
}

/// `agora vectors check DIR --node …` replays the vector of the cluster's chain through a live three-node replay
/// cluster (in this process) and passes; a tampered copy is reported as diverging at the
/// tampered height, with exit code 5, through the cluster and through agora-core alike.
#[test]
fn vectors_check_through_a_live_cluster_finds_a_divergence() {
    let dir = std::env::temp_dir().join(format!("agora-cli-vectors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vector_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/transfers_and_fees.json");
    let text = std::fs::read_to_string(&vector_path).unwrap();
    let vector = agora_core::vectors::VectorFile::from_json(&text).unwrap();
    let nodes: Vec<TestNode> = (0..3)
        .map(|i| TestNode::new(&format!("validator-{i}")))
        .collect();
    let mut urls = Vec::new();
    let mut stops = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let peers = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| n.address())
            .collect();
        let (url, stop) = start_node(&dir, &vector.genesis, node, peers, true);
        urls.push(url);
        stops.push(stop);
    }
    let check = |file: &Path, live: bool| -> Output {
        let mut command = Command::new(cli());
        command.env("AGORA_CONFIG", dir.join("no-config.toml"));
        command.args(["vectors", "check"]).arg(file);
        if live {
            for url in &urls {
                command.args(["--node", url]);
            }
        }
        command.output().unwrap()
    };
    for url in &urls {
        wait_up(url, &dir);
    }
    // Given the whole directory, the cluster checks the one vector of its chain.
    let passed = check(vector_path.parent().unwrap(), true);
    let stdout = String::from_utf8_lossy(&passed.stdout).to_string();
    assert!(
        passed.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    assert!(
        stdout.contains("1 passed, 0 failed, through the cluster"),
        "{stdout}"
    );

    let mut tampered: Value = serde_json::from_str(&text).unwrap();
    tampered["entries"][3]["expected"]["receipts"][0]["fee"] = "11".into();
    let tampered_path = dir.join("tampered.json");
    std::fs::write(&tampered_path, tampered.to_string()).unwrap();
    for live in [true, false] {
        let failed = check(&tampered_path, live);
        let stdout = String::from_utf8_lossy(&failed.stdout).to_string();
        assert_eq!(failed.status.code(), Some(5), "{stdout}");
        assert!(stdout.contains("entry 4: receipts differ"), "{stdout}");
    }
    for stop in stops {
        drop(stop);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `agora-load` as a process against a live node: it funds its clients, signs their
/// transfers before the timed window (none inside it), commits them, and reports the CPU
/// time per committed transaction of the process it is pointed at (this one, which runs
/// the node).
#[test]
fn the_load_generator_commits_presigned_transfers_and_reports_cpu() {
    let dir = std::env::temp_dir().join(format!("agora-cli-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let agora = Agora {
        node: String::new(),
        dir: dir.clone(),
    };
    let created = agora.json("funder.key", &["keys", "new", "--kind", "ml-dsa-44"]);
    let funder = AccountId(Hash32::from_hex(created["account"].as_str().unwrap()).unwrap());
    let genesis = Genesis {
        witnesses: vec![],
        chain_name: "cli-load".into(),
        params: Params::default(),
        accounts: vec![GenesisAccount {
            account: funder,
            balance: Amount(1_000_000_000_000),
            staked: Amount(0),
        }],
        validators: vec![seeded_validator("load-validator")],
        treasury: Amount(0),
    }
    .normalized()
    .unwrap();
    let node = TestNode::new("load-validator");
    let (url, stop) = start_node(&dir, &genesis, &node, vec![], false);
    wait_up(&url, &dir);
    let output = Command::new(binary("agora-load"))
        .args(["--node", &url, "--funder"])
        .arg(dir.join("funder.key"))
        .args(["--clients", "3", "--seconds", "2", "--per-client", "1000"])
        .args(["--kind", "ml-dsa-44", "--json", "--cpu-pid"])
        .arg(stop.0.id().to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let committed = report["committed"].as_u64().unwrap();
    assert!(committed > 0, "{report}");
    assert_eq!(report["signed_in_window"], 0, "{report}");
    assert_eq!(report["kind"], "ml-dsa-44");
    let cpu = report["cpu"][0]["cpu_seconds"]
        .as_f64()
        .expect("the node process's CPU time");
    assert!(cpu > 0.0, "the node did work: {report}");
    drop(stop);
    let _ = std::fs::remove_dir_all(dir);
}
