//! Zones as real processes: three `agora-node` processes on loopback serving three
//! independent ledgers over one transport and one HTTP port each.

use agora_core::genesis::Genesis;
use agora_core::ChainId;
use agora_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a zone may go without committing after losing a node (the e2e fail-over
/// bound the other tests use).
const FAIL_OVER: Duration = Duration::from_secs(30);

/// Writes a zone's genesis: `validators` and `witnesses` (node indexes), the demo account
/// funded.
fn zone_genesis(
    cluster: &Cluster,
    name: &str,
    validators: &[usize],
    witnesses: &[usize],
) -> PathBuf {
    let path = cluster.dir.join(format!("{name}.json"));
    let mut args: Vec<String> = vec![
        "genesis".into(),
        "--chain-name".into(),
        name.into(),
        "--out".into(),
        path.display().to_string(),
        "--account".into(),
        format!("{}=1000000000", cluster.demo_account()),
    ];
    for (flag, nodes) in [("--validator", validators), ("--witness", witnesses)] {
        for i in nodes {
            args.push(flag.into());
            args.push(
                cluster.nodes[*i]
                    .dir
                    .join("validator.json")
                    .display()
                    .to_string(),
            );
        }
    }
    let output = Command::new(bin()).args(&args).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    path
}

/// `agora-node zone add`, as a process; its output and whether it succeeded.
fn zone_add(data_dir: &Path, genesis: &Path) -> (bool, String) {
    let output = Command::new(bin())
        .args(["zone", "add", "--data-dir"])
        .arg(data_dir)
        .arg("--genesis")
        .arg(genesis)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn chain_of(path: &Path) -> ChainId {
    Genesis::from_json(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .chain_id()
}

/// The leader of zone `zone` as node `i` reports it (by node index), once it knows one.
fn zone_leader(cluster: &Cluster, zone: &str, i: usize) -> Option<usize> {
    let status: agora_api::StatusResponse =
        cluster.get_as(i, &format!("/v1/zones/{zone}/status"))?;
    let leader = status.leader?;
    cluster
        .nodes
        .iter()
        .position(|n| n.public["account"].as_str() == Some(leader.to_string().as_str()))
}

/// The leader of `zone` on which every running node agrees.
fn agreed_leader(cluster: &Cluster, zone: &str) -> Option<usize> {
    let running: Vec<usize> = (0..cluster.nodes.len())
        .filter(|i| cluster.nodes[*i].child.is_some())
        .collect();
    let first = zone_leader(cluster, zone, running[0])?;
    running
        .iter()
        .all(|i| zone_leader(cluster, zone, *i) == Some(first))
        .then_some(first)
}

/// Three nodes, three zones: the first zone (the genesis each node runs with), `zone-b`
/// (the same three validators) and `zone-w` (nodes 0 and 1 full members, node 2 a
/// witness), the last two joined by `agora-node zone add` while the nodes run. Every zone
/// commits on its own chain; leaders spread so that no node leads two zones; kill -9 of
/// a node leaves every zone committing again within the fail-over bound; `zone-w`
/// survives the loss of either of its full members. The CLI reaches each zone with
/// `--zone`, the metrics carry a `zone` label, and `zone add` refuses a zone the node is
/// not a member of, or one it has.
#[test]
fn three_nodes_serve_three_zones_with_spread_leaders_and_survive_a_kill() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start("zones", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let first = "zones";
    let zone_b = zone_genesis(&cluster, "zone-b", &[0, 1, 2], &[]);
    let zone_w = zone_genesis(&cluster, "zone-w", &[0, 1], &[2]);
    let outsider = zone_genesis(&cluster, "zone-x", &[0, 1], &[]);
    for i in 0..3 {
        for genesis in [&zone_b, &zone_w] {
            let (ok, text) = zone_add(&cluster.nodes[i].dir, genesis);
            assert!(ok, "zone add: {text}");
        }
    }
    // Refused, changing nothing: a second add, and a zone whose genesis lacks the node.
    let (ok, text) = zone_add(&cluster.nodes[0].dir, &zone_b);
    assert!(!ok && text.contains("already has zone zone-b"), "{text}");
    let (ok, text) = zone_add(&cluster.nodes[2].dir, &outsider);
    assert!(
        !ok && text.contains("neither a validator nor a witness"),
        "{text}"
    );
    assert!(!cluster.nodes[2].dir.join("zones/zone-x").exists());

    // The running nodes serve the new zones without a restart.
    let zones = [first, "zone-b", "zone-w"];
    let chains = [
        cluster.genesis.chain_id(),
        chain_of(&zone_b),
        chain_of(&zone_w),
    ];
    let listed: agora_api::ZonesResponse = wait_for("three zones", Duration::from_secs(30), || {
        cluster
            .get_as::<agora_api::ZonesResponse>(1, "/v1/zones")
            .filter(|z| z.zones.len() == 3)
    });
    let names: Vec<&str> = listed.zones.iter().map(|z| z.name.as_str()).collect();
    assert_eq!(names, zones, "the first zone first, then by name");
    for (entry, chain) in listed.zones.iter().zip(chains) {
        assert_eq!(entry.chain_id, chain);
        assert_eq!(entry.halted, None);
    }

    // Each zone commits on its own chain: a transfer in one is not in the others.
    let mut nonces = [0u64; 3];
    let to = random_account();
    for (z, zone) in zones.iter().enumerate() {
        let tx = cluster.transfer_on(chains[z], nonces[z], to, 1_000 + z as u128);
        // Through a different node for each zone (node 2 is zone-w's witness: node 1).
        let through = [0, 2, 1][z];
        let answer = cluster.submit_and_wait_in(Some(zone), through, &tx, Duration::from_secs(60));
        assert!(applied(&answer), "{zone}: {answer:?}");
        nonces[z] += 1;
    }
    let agora = Agora {
        node: format!("http://127.0.0.1:{}", cluster.nodes[1].http_port),
        dir: cluster.dir.clone(),
    };
    for (z, zone) in zones.iter().enumerate() {
        let account: agora_api::AccountResponse =
            agora.answer("no.key", &["--zone", zone, "account", &to.to_string()]);
        assert_eq!(account.balance.0, 1_000 + z as u128, "{zone}");
    }
    // The light client, per zone: zone-b's balance verified against zone-b's genesis
    // (its committee and certificates), without trusting node 1, once a certificate covers
    // the transfer; the first zone's genesis is not zone-b's chain, and the same client
    // refuses the answer.
    let key = format!("account:{to}");
    let proof = |genesis: &Path| {
        agora.run(
            "no.key",
            &[
                "--json",
                "--zone",
                "zone-b",
                "proof",
                &key,
                "--trustless",
                "--genesis",
                genesis.to_str().unwrap(),
            ],
        )
    };
    let verified = wait_for(
        "a certified proof in zone-b",
        Duration::from_secs(60),
        || {
            let output = proof(&zone_b);
            output.status.success().then(|| {
                serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("--json output")
            })
        },
    );
    assert_eq!(
        (&verified["verified"], &verified["trustless"]),
        (&serde_json::json!(true), &serde_json::json!(true)),
        "{verified}"
    );
    assert_eq!(verified["decoded"]["balance"], "1001", "{verified}");
    let output = proof(&cluster.dir.join("genesis.json"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("not from the trusted chain"), "{stderr}");

    // A signature for one zone's chain is refused in another, and nothing changes.
    let wrong = cluster.transfer_on(chains[0], nonces[1], to, 5);
    let (code, body) = http(
        cluster.nodes[0].http_port,
        "POST",
        "/v1/zones/zone-b/tx",
        &wrong,
    )
    .unwrap();
    assert_eq!(
        (code, error_code(&body).as_deref()),
        (400, Some("wrong_chain")),
        "{body}"
    );
    let (code, body) = cluster.get(0, "/v1/zones/nowhere/status").unwrap();
    assert_eq!(
        (code, error_code(&body).as_deref()),
        (404, Some("unknown_zone"))
    );

    // Metrics: one exposition, each zone's series labelled.
    let (_, metrics) = cluster.get(0, "/metrics").unwrap();
    let metrics = metrics.as_str().unwrap().to_string();
    for zone in zones {
        assert!(
            metrics.contains(&format!("agora_raft_commit_index{{zone=\"{zone}\"}}")),
            "{zone} has its series"
        );
    }

    // Leaders spread: each zone's leader on its own node.
    let leaders = wait_for("leaders on three nodes", Duration::from_secs(60), || {
        let leaders: Vec<usize> = zones
            .iter()
            .map(|z| agreed_leader(&cluster, z))
            .collect::<Option<_>>()?;
        let mut distinct = leaders.clone();
        distinct.sort();
        distinct.dedup();
        (distinct.len() == 3).then_some(leaders)
    });
    assert_ne!(leaders[2], 2, "the witness of zone-w never leads it");
    eprintln!("leaders: {leaders:?}");

    // kill -9 of zone-w's leader (a full member there, the leader of one zone): every
    // zone commits again, through a survivor, within the fail-over bound.
    let victim = leaders[2];
    let survivor = 1 - victim;
    cluster.kill9(victim);
    let killed_at = Instant::now();
    for (z, zone) in zones.iter().enumerate() {
        let tx = cluster.transfer_on(chains[z], nonces[z], to, 1);
        let answer = cluster.submit_and_wait_in(Some(zone), survivor, &tx, FAIL_OVER);
        assert!(applied(&answer), "{zone}: {answer:?}");
        nonces[z] += 1;
        eprintln!(
            "{zone} committed {:.2} s after the kill",
            killed_at.elapsed().as_secs_f64()
        );
    }
    // zone-w's other full member: the restarted victim carries zone-w with the witness.
    cluster.launch(victim);
    wait_for(
        "the restarted node in every zone",
        Duration::from_secs(60),
        || {
            zones
                .iter()
                .all(|z| zone_leader(&cluster, z, victim).is_some())
                .then_some(())
        },
    );
    cluster.kill9(survivor);
    let killed_at = Instant::now();
    let tx = cluster.transfer_on(chains[2], nonces[2], to, 1);
    let answer = cluster.submit_and_wait_in(Some("zone-w"), victim, &tx, FAIL_OVER);
    assert!(applied(&answer), "{answer:?}");
    eprintln!(
        "zone-w committed {:.2} s after losing its other full member",
        killed_at.elapsed().as_secs_f64()
    );

    // A zone whose database is damaged does not hold up the node's others: node 2 comes
    // back with zone-b's database corrupt; it serves its first zone and zone-w, says why
    // zone-b is halted, and zone-b goes on without it.
    cluster.launch(survivor);
    assert!(cluster.stop(2).success(), "a graceful stop");
    let db = cluster.nodes[2].dir.join("zones/zone-b/node.db");
    let mut bytes = std::fs::read(&db).unwrap();
    damage_every_page(&mut bytes);
    std::fs::write(&db, &bytes).unwrap();
    cluster.launch(2);
    let listed = wait_for("node 2 back", Duration::from_secs(60), || {
        cluster.get_as::<agora_api::ZonesResponse>(2, "/v1/zones")
    });
    let halted = listed.zones.iter().find(|z| z.name == "zone-b").unwrap();
    let why = halted.halted.as_deref().expect("zone-b is halted");
    assert!(why.contains("corrupt"), "{why}");
    let (code, body) = cluster.get(2, "/v1/zones/zone-b/status").unwrap();
    assert_eq!(
        (code, error_code(&body).as_deref()),
        (503, Some("zone_halted"))
    );
    wait_for("node 2's other zones", Duration::from_secs(60), || {
        (zone_leader(&cluster, first, 2).is_some() && zone_leader(&cluster, "zone-w", 2).is_some())
            .then_some(())
    });
    let tx = cluster.transfer_on(chains[1], nonces[1], to, 1);
    let answer = cluster.submit_and_wait_in(Some("zone-b"), 0, &tx, FAIL_OVER);
    assert!(applied(&answer), "{answer:?}");
}

/// A zone that halts while the node runs does not stall the node's other zone: node 1's
/// `zone-b` database sits on a small tmpfs that fills up while zone-b commits; its
/// driver stops on the failed write (the zone answers `zone_halted`, `/v1/zones` says the
/// disk is full), and node 1 — the same process — goes on serving and committing in its
/// first zone.
#[test]
fn a_zone_whose_disk_fills_halts_alone() {
    if !may_mount("the zone full-disk test") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start("zone-full", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let zone_b = zone_genesis(&cluster, "zone-b", &[0, 1, 2], &[]);
    let chain_b = chain_of(&zone_b);
    let victim = 1;
    assert!(cluster.stop(victim).success(), "a graceful stop");
    for i in 0..3 {
        let (ok, text) = zone_add(&cluster.nodes[i].dir, &zone_b);
        assert!(ok, "zone add: {text}");
    }
    // Node 1's zone-b directory moves onto a 16 MiB tmpfs, filled to 256 KiB.
    let zone_dir = cluster.nodes[victim].dir.join("zones/zone-b");
    let saved = cluster.dir.join("zone-b-saved");
    std::fs::rename(&zone_dir, &saved).unwrap();
    let mount = Tmpfs::mount(zone_dir.clone(), 16);
    for entry in std::fs::read_dir(&saved).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), zone_dir.join(entry.file_name())).unwrap();
    }
    fill_leaving(&zone_dir.join("filler"), 256 * 1024);
    cluster.launch(victim);
    wait_for("zone-b on every node", Duration::from_secs(60), || {
        (0..3)
            .all(|i| zone_leader(&cluster, "zone-b", i).is_some())
            .then_some(())
    });
    // zone-b commits through node 0 until node 1's copy of it no longer fits.
    let to = random_account();
    // Nonce 0 registers the demo key in zone-b: awaited first, so that node 0 knows the
    // account when the next ones come.
    let tx = cluster.transfer_on(chain_b, 0, to, 1);
    cluster.submit_and_wait_in(Some("zone-b"), 0, &tx, FAIL_OVER);
    let mut nonce = 1;
    let halted = |cluster: &Cluster| {
        cluster
            .get_as::<agora_api::ZonesResponse>(victim, "/v1/zones")
            .and_then(|z| z.zones.into_iter().find(|z| z.name == "zone-b")?.halted)
    };
    let why = loop {
        if let Some(why) = halted(&cluster) {
            break why;
        }
        assert!(nonce < 3_000, "node 1's zone-b never ran out of space");
        // A batch of 20 transfers, the last awaited.
        for _ in 0..19 {
            let tx = cluster.transfer_on(chain_b, nonce, to, 1);
            let port = cluster.nodes[0].http_port;
            wait_for("a transfer accepted", FAIL_OVER, || {
                match http(port, "POST", "/v1/zones/zone-b/tx", &tx) {
                    Some((200, _)) => Some(()),
                    Some((503, _)) | None => None,
                    Some((status, body)) => panic!("transfer {nonce} refused: {status} {body}"),
                }
            });
            nonce += 1;
        }
        let tx = cluster.transfer_on(chain_b, nonce, to, 1);
        cluster.submit_and_wait_in(Some("zone-b"), 0, &tx, FAIL_OVER);
        nonce += 1;
    };
    assert!(why.contains("disk is full"), "{why}");
    assert!(
        cluster.nodes[victim]
            .child
            .as_mut()
            .unwrap()
            .try_wait()
            .unwrap()
            .is_none(),
        "the process runs on"
    );
    let (code, body) = cluster.get(victim, "/v1/zones/zone-b/status").unwrap();
    assert_eq!(
        (code, error_code(&body).as_deref()),
        (503, Some("zone_halted"))
    );
    // Its first zone still takes a transaction through node 1 and commits it.
    let tx = cluster.transfer(0, to, 7);
    let answer = cluster.submit_and_wait(victim, &tx, FAIL_OVER);
    assert!(applied(&answer), "{answer:?}");
    // zone-b goes on without node 1.
    let tx = cluster.transfer_on(chain_b, nonce, to, 1);
    assert!(applied(&cluster.submit_and_wait_in(
        Some("zone-b"),
        2,
        &tx,
        FAIL_OVER
    )));
    cluster.kill9(victim);
    drop(mount);
}

/// Submits `tx` to `zone` on `port` again and again until `stop` is set; returns how
/// many times the zone answered that its mempool is full (anything else fails the test).
fn hammer(port: u16, zone: &str, tx: &[u8], stop: &std::sync::atomic::AtomicBool) -> u64 {
    let path = format!("/v1/zones/{zone}/tx");
    let mut full = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match http(port, "POST", &path, tx) {
            Some((503, body))
                if body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("mempool is full")) =>
            {
                full += 1
            }
            Some((status, body)) => panic!("{zone} took or refused otherwise: {status} {body}"),
            None => {}
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    full
}

/// A zone whose mempool is full and that snapshots again and again does not stall the
/// node's other zone. Mempools hold 64 transactions and every node snapshots every 20
/// entries (empty blocks every 100 ms keep both zones' logs growing). Three senders fill
/// `zone-b`'s mempool on its leader with 64 transactions that wait for a missing nonce (held,
/// so it stays full), a client keeps submitting there and is refused for the full mempool,
/// and meanwhile transfers in the first zone commit through every node, each within the
/// fail-over bound, until zone-b has compacted its log on every node. Then the missing
/// nonces arrive and zone-b commits all 64.
#[test]
fn a_full_mempool_and_snapshots_in_one_zone_do_not_stall_another() {
    use agora_core::{AccountId, KeyKind, SecretKey};
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let extra = ["--mempool-capacity", "64", "--empty-block-ms", "100"];
    let cluster = Cluster::start_with("zone-flood", 3, 20, &extra);
    cluster.wait_ready(Duration::from_secs(60));
    let first = "zone-flood";
    let zone_b = zone_genesis(&cluster, "zone-b", &[0, 1, 2], &[]);
    let chain_b = chain_of(&zone_b);
    for i in 0..3 {
        let (ok, text) = zone_add(&cluster.nodes[i].dir, &zone_b);
        assert!(ok, "zone add: {text}");
    }
    // Leaders spread (one node leading both would hand one over); then they stay.
    let leader_b = wait_for("the zones' leaders apart", Duration::from_secs(60), || {
        let (a, b) = (
            agreed_leader(&cluster, first)?,
            agreed_leader(&cluster, "zone-b")?,
        );
        (a != b).then_some(b)
    });
    // Three funded, registered senders in zone-b.
    let senders: Vec<SecretKey> = (0..3)
        .map(|_| agora_node::keys::generate_ml_dsa(KeyKind::MlDsa44))
        .collect();
    let account = |key: &SecretKey| AccountId::from_public_key(key.public_key());
    let submit_b = |tx: &[u8]| {
        let answer = cluster.submit_and_wait_in(Some("zone-b"), leader_b, tx, FAIL_OVER);
        assert!(applied(&answer), "{answer:?}");
    };
    for (n, key) in senders.iter().enumerate() {
        submit_b(&cluster.transfer_on(chain_b, n as u64, account(key), 10_000_000));
        submit_b(&sign_transfer(key, chain_b, 0, random_account(), 1));
    }
    // 31 + 31 + 2 transactions from nonce 2 on, nonce 1 missing: all held.
    let port = cluster.nodes[leader_b].http_port;
    let sink = random_account();
    for (key, last) in senders.iter().zip([32u64, 32, 3]) {
        for nonce in 2..=last {
            let tx = sign_transfer(key, chain_b, nonce, sink, 1);
            match http(port, "POST", "/v1/zones/zone-b/tx", &tx) {
                Some((200, _)) => {}
                other => panic!("nonce {nonce} not taken: {other:?}"),
            }
        }
    }
    let depth = |i: usize| zone_metric(&cluster, i, "agora_mempool_depth", "zone-b");
    wait_for("zone-b's mempool full", Duration::from_secs(10), || {
        (depth(leader_b)? == 64.0).then_some(())
    });
    let snapshots = || -> Vec<f64> {
        (0..3)
            .map(|i| zone_metric(&cluster, i, "agora_raft_snapshot_index", "zone-b").unwrap_or(0.0))
            .collect()
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let refused = sign_transfer(&senders[2], chain_b, 4, sink, 1);
    let (full, before, after, committed) = std::thread::scope(|scope| {
        let hammering = scope.spawn(|| hammer(port, "zone-b", &refused, &stop));
        let before = snapshots();
        // The first zone commits, one awaited transfer after another through each node in
        // turn, until zone-b has snapshotted again on every node.
        let to = random_account();
        let mut nonce = 0u64;
        let started = Instant::now();
        let after = loop {
            let tx = cluster.transfer(nonce, to, 1);
            let answer = cluster.submit_and_wait((nonce % 3) as usize, &tx, FAIL_OVER);
            assert!(applied(&answer), "{answer:?}");
            nonce += 1;
            let now = snapshots();
            if nonce >= 3 && now.iter().zip(&before).all(|(a, b)| a > b) {
                break now;
            }
            assert!(
                started.elapsed() < Duration::from_secs(50),
                "zone-b did not snapshot on every node: {before:?} -> {now:?}"
            );
        };
        assert_eq!(depth(leader_b), Some(64.0), "zone-b's mempool stayed full");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (hammering.join().unwrap(), before, after, nonce)
    });
    assert!(
        full > 0,
        "zone-b never refused a transaction for its full mempool"
    );
    eprintln!(
        "{committed} transfers committed in {first} while zone-b was full ({full} refusals) and snapshotted: {before:?} -> {after:?}"
    );
    // A missing nonce arrives at the full mempool: it takes the place of a held
    // transaction (the furthest ahead), commits, and the held ones behind it follow; the
    // others' missing nonces then find room.
    for key in &senders {
        submit_b(&sign_transfer(key, chain_b, 1, sink, 1));
    }
    let nonce_of = |key: &SecretKey| {
        let path = format!("/v1/zones/zone-b/accounts/{}", account(key));
        cluster.get(leader_b, &path)?.1["nonce"].as_u64()
    };
    wait_for("zone-b's mempool drained", FAIL_OVER, || {
        (depth(leader_b)? == 0.0).then_some(())
    });
    // 3 + 64 transactions, of which the first missing nonce dropped one held at the end
    // of a sender's run: the three accounts' nonces, from 1 each, moved by 66 together.
    let nonces: Vec<u64> = senders.iter().map(|k| nonce_of(k).unwrap()).collect();
    assert_eq!(nonces.iter().sum::<u64>(), 3 + 66, "{nonces:?}");
    // Every zone's event loop kept moving: the watchdog's gauge is there and says so.
    for i in 0..3 {
        for zone in [first, "zone-b"] {
            let stalled = zone_metric(&cluster, i, "agora_event_loop_stalled_seconds", zone);
            assert_eq!(stalled, Some(0.0), "node {i}, {zone}");
        }
    }
}

/// A zone's series of metric `name` on node `i`.
fn zone_metric(cluster: &Cluster, i: usize, name: &str, zone: &str) -> Option<f64> {
    let (_, metrics) = cluster.get(i, "/metrics")?;
    let label = format!("zone=\"{zone}\"");
    metrics
        .as_str()?
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}
