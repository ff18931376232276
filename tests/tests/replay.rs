//! End-to-end: every committed test vector replayed through a live replay cluster
//! (`agora-node devnet --vector`), real processes on loopback.

use agora_tests::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Every file in vectors/, replayed through a live cluster of its validators
/// (`agora-node devnet --vector`), reaches the vector's root, receipts and events at every
/// height, on every node; a gap, a follower and a repeat are refused and change nothing.
#[test]
fn every_vector_replays_through_a_live_cluster() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors");
    let mut files: Vec<_> = std::fs::read_dir(&vectors)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 11, "the committed vectors are found");
    for file in files {
        let vector: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let dir = temp_dir(&format!("replay-{}", vector["name"].as_str().unwrap()));
        let (p2p, http_base) = (free_port_block(3), free_port_block(3));
        let _devnet = Terminate(
            Command::new(bin())
                .args(["devnet", "--vector", file.to_str().unwrap(), "--dir"])
                .arg(&dir)
                .args(["--p2p-base-port", &p2p.to_string()])
                .args(["--http-base-port", &http_base.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let ports: Vec<u16> = (0..3).map(|i| http_base + i).collect();
        let leader = || {
            ports.iter().copied().find(|p| {
                http(*p, "GET", "/v1/status", &[])
                    .and_then(|(_, s)| serde_json::from_value::<StatusResponse>(s).ok())
                    .is_some_and(|s| s.role == RoleName::Leader)
            })
        };
        let mut entries = vector["entries"].as_array().unwrap().clone();
        if entries.last().unwrap()["entry"]["payload"]
            .get("membership")
            .is_some()
        {
            // A configuration entry (edge_cases.json ends with one) is the ledger's no-op
            // but not a live cluster's to take: refused, changing nothing.
            let membership = entries.pop().unwrap();
            let body = serde_json::to_vec(&membership["entry"]).unwrap();
            let (status, error) = wait_for("a leader", Duration::from_secs(60), || {
                http(leader()?, "POST", "/v1/replay", &body)
            });
            assert_eq!(
                (status, error_code(&error).as_deref()),
                (400, Some("membership_entry"))
            );
        }
        for (n, expected) in entries.iter().enumerate() {
            let body = serde_json::to_vec(&expected["entry"]).unwrap();
            let (_, answer) = wait_for(
                "the leader to apply the entry",
                Duration::from_secs(60),
                || http(leader()?, "POST", "/v1/replay", &body).filter(|(s, _)| *s == 200),
            );
            let index = expected["entry"]["index"].as_u64().unwrap();
            let replayed: agora_api::ReplayResponse = serde_json::from_value(answer).unwrap();
            assert_eq!(replayed.index, index);
            let answer = serde_json::to_value(&replayed).unwrap();
            for field in ["state_root", "receipts", "events"] {
                assert_eq!(
                    answer[field],
                    expected["expected"][field],
                    "{}: {field} at height {index}",
                    file.display()
                );
            }
            if n == 0 {
                // Refused, changing nothing: the same entry again, one past a gap, and
                // any entry at a follower.
                let leader = leader().unwrap();
                let (status, error) = http(leader, "POST", "/v1/replay", &body).unwrap();
                assert_eq!(
                    (status, error_code(&error).as_deref()),
                    (409, Some("already_applied"))
                );
                let mut gap = expected["entry"].clone();
                gap["index"] = (index + 5).into();
                let gap = serde_json::to_vec(&gap).unwrap();
                let (status, error) = http(leader, "POST", "/v1/replay", &gap).unwrap();
                assert_eq!((status, error_code(&error).as_deref()), (409, Some("gap")));
                let follower = *ports.iter().find(|p| **p != leader).unwrap();
                let (status, error) = http(follower, "POST", "/v1/replay", &body).unwrap();
                assert_eq!(
                    (status, error_code(&error).as_deref()),
                    (421, Some("not_leader"))
                );
                let (status, error) = http(leader, "POST", "/v1/tx", b"anything").unwrap();
                assert_eq!(
                    (status, error_code(&error).as_deref()),
                    (404, Some("replay_mode")),
                    "a replay node serves no transactions"
                );
            }
        }
        let last = entries.last().unwrap();
        let height = last["entry"]["index"].as_u64().unwrap();
        for port in &ports {
            wait_for(
                "every node at the vector's last root",
                Duration::from_secs(30),
                || {
                    let (_, status) = http(*port, "GET", "/v1/status", &[])?;
                    let status: StatusResponse = serde_json::from_value(status).ok()?;
                    (status.height == height
                        && serde_json::to_value(status.state_root).ok()?
                            == last["expected"]["state_root"])
                        .then_some(())
                },
            );
        }
        drop(_devnet);
        let _ = std::fs::remove_dir_all(dir);
    }
}
