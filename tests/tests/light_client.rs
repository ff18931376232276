//! The light client as a member runs it: `agora proof KEY --trustless` against a real
//! cluster checks a balance without trusting the node it asks, and refuses each lie a
//! node in the test-only lying mode (`AGORA_INJECT_LIE`) tells, saying which.

use agora_tests::*;
use std::time::Duration;

/// Node 2 of a 3-node cluster answers honestly, then tells each lie in turn (restarted
/// with `AGORA_INJECT_LIE`); the light client accepts the first and refuses every lie
/// with its reason and exit code 5.
#[test]
fn a_trustless_balance_check_accepts_the_truth_and_refuses_each_lie() {
    let mut cluster = Cluster::start("light", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let to = random_account();
    let answer = cluster.submit_and_wait(
        0,
        &cluster.transfer(0, to, 1_500_000),
        Duration::from_secs(30),
    );
    assert!(applied(&answer), "{answer:?}");
    let committed = answer.height.expect("a committed height");
    let genesis = cluster.dir.join("genesis.json");
    let urls: Vec<String> = (0..3)
        .map(|i| format!("http://127.0.0.1:{}", cluster.nodes[i].http_port))
        .collect();
    let dir = cluster.dir.clone();
    let agora = |node: usize| Agora {
        node: urls[node].clone(),
        dir: dir.clone(),
    };
    let key = format!("account:{to}");
    let args = [
        "proof",
        key.as_str(),
        "--trustless",
        "--genesis",
        genesis.to_str().unwrap(),
    ];
    wait_for(
        "the transfer's height certified on node 2",
        Duration::from_secs(30),
        || {
            cluster
                .status(2)
                .filter(|s| s.certified_height >= committed)
        },
    );
    let verified = agora(2).json("none.key", &args);
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["trustless"], true);
    assert!(
        verified["height"].as_u64().unwrap() >= committed,
        "{verified}"
    );
    assert_eq!(
        verified["decoded"]["balance"], "1500000",
        "the balance the transfer made: {verified}"
    );
    assert!(verified["certificates_checked"].as_u64().unwrap() >= 1);

    for (lie, reason) in [
        (
            "value",
            "does not match its proof against the certified root",
        ),
        ("root", "does not sign state root"),
        ("signature", "does not sign state root"),
        ("underweight", "half of the committee's weight or less"),
        ("other-chain", "not from the trusted chain"),
    ] {
        cluster.stop(2);
        cluster.env = vec![("AGORA_INJECT_LIE".into(), lie.into())];
        cluster.launch(2);
        wait_for(
            &format!("node 2 back, lying ({lie})"),
            Duration::from_secs(60),
            || {
                cluster
                    .status(2)
                    .filter(|s| s.certified_height >= committed)
            },
        );
        let output = agora(2).run("none.key", &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(5), "{lie}: {stderr}");
        assert!(
            stderr.contains("REFUSED") && stderr.contains(reason),
            "{lie}: expected {reason:?} in {stderr}"
        );
        assert!(
            output.stdout.is_empty(),
            "{lie}: nothing printed as verified"
        );
    }
    // The same client against an honest node of the same cluster still verifies.
    let again = agora(0).json("none.key", &args);
    assert_eq!(again["verified"], true, "{again}");
}
