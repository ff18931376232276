//! Disk faults on real processes (issue #13): a damaged database, a torn write-ahead log,
//! a full disk. Each node either refuses to start with a message that names the file and
//! says what to do, or recovers from its peers; none serves from a state it cannot vouch
//! for, and nothing the cluster acknowledged is lost. (A missing database is the wiped
//! follower of `e2e.rs`.)

use agora_api::AccountResponse;
use agora_tests::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Commits transfers `nonces` from the demo account through node `via`: up to 20 are
/// submitted without waiting, then the last of each group is awaited. Nonce 0 registers
/// the account's key and is awaited first: a follower that has not applied it yet knows
/// no account to check nonce 1 against (the leader's mempool would).
fn commit_transfers(cluster: &Cluster, via: usize, mut nonces: std::ops::Range<u64>) {
    let port = cluster.nodes[via].http_port;
    if nonces.start == 0 {
        let tx = cluster.transfer(0, random_account(), 3);
        cluster.submit_and_wait(via, &tx, Duration::from_secs(60));
        nonces.start = 1;
    }
    let end = nonces.end;
    for start in nonces.step_by(20) {
        let last = (start + 20).min(end) - 1;
        for nonce in start..last {
            let tx = cluster.transfer(nonce, random_account(), 3);
            wait_for(
                "a transfer accepted",
                Duration::from_secs(30),
                || match http(port, "POST", "/v1/tx", &tx) {
                    Some((200, _)) => Some(()),
                    Some((503, _)) | None => None,
                    Some((status, body)) => panic!("transfer {nonce} refused: {status} {body}"),
                },
            );
        }
        let tx = cluster.transfer(last, random_account(), 3);
        cluster.submit_and_wait(via, &tx, Duration::from_secs(60));
    }
}

/// Waits until node `i` holds the leader's state root at the leader's height, with the
/// demo account's nonce at `nonce`.
fn wait_caught_up(cluster: &Cluster, leader: usize, i: usize, nonce: u64) {
    wait_for(
        &format!("node {i} at the leader's root"),
        Duration::from_secs(90),
        || {
            let (a, b) = (cluster.status(leader)?, cluster.status(i)?);
            (a.height == b.height && a.state_root == b.state_root).then_some(())
        },
    );
    let account: AccountResponse = cluster
        .get_as(
            i,
            &format!("/v1/accounts/{}?consistency=local", cluster.demo_account()),
        )
        .expect("the account answers");
    assert_eq!(account.nonce, nonce, "every acknowledged transfer is there");
}

fn database_files(dir: &Path) -> [PathBuf; 3] {
    ["node.db", "node.db-wal", "node.db-shm"].map(|f| dir.join(f))
}

/// A database damaged while the node was down: the node refuses to start, naming the
/// file, saying it is corrupt and what to do; doing what it says (move the database
/// aside, keep the keys) brings it back with every acknowledged transfer.
#[test]
fn a_damaged_database_refuses_to_start_and_the_stated_remedy_works() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start("damaged", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let leader = wait_for("a leader", Duration::from_secs(30), || cluster.leader());
    let victim = (leader + 1) % 3;
    commit_transfers(&cluster, leader, 0..40);
    wait_caught_up(&cluster, leader, victim, 40);
    assert!(cluster.stop(victim).success(), "a graceful stop");
    let db = cluster.nodes[victim].dir.join("node.db");
    let mut bytes = std::fs::read(&db).unwrap();
    // 16 bytes in the middle of every page but the first: the log entries, the archive
    // and the b-tree pages that index them.
    damage_every_page(&mut bytes);
    std::fs::write(&db, &bytes).unwrap();
    let log_before = cluster.log(victim).len();
    cluster.launch(victim);
    let status = cluster.wait_exit(victim, Duration::from_secs(60));
    assert!(!status.success(), "a damaged database must not start");
    let log = cluster.log(victim)[log_before..].to_string();
    let path = db.display().to_string();
    assert!(
        log.contains(&format!("storage at {path} is corrupt")),
        "names the file: {log}"
    );
    assert!(
        log.contains("move") && log.contains("-wal") && log.contains("catches up"),
        "says what to do: {log}"
    );
    assert!(
        !log.contains("starting the zone"),
        "it stopped before its network and API started: {log}"
    );
    // The remedy it states.
    for file in database_files(&cluster.nodes[victim].dir) {
        if file.exists() {
            let aside = file.with_extension(format!(
                "{}.damaged",
                file.extension().unwrap().to_str().unwrap()
            ));
            std::fs::rename(&file, aside).unwrap();
        }
    }
    commit_transfers(&cluster, leader, 40..45);
    cluster.launch(victim);
    wait_caught_up(&cluster, leader, victim, 45);
}

/// A node killed with its write-ahead log's last frames torn (cut mid-frame, as a crash
/// during a write leaves it): SQLite drops the torn transaction, the node starts from what
/// was whole, learns the rest from its peers and agrees with the leader.
#[test]
fn a_torn_write_ahead_log_is_recovered_and_the_node_catches_up() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start("torn-wal", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let leader = wait_for("a leader", Duration::from_secs(30), || cluster.leader());
    let victim = (leader + 2) % 3;
    commit_transfers(&cluster, leader, 0..30);
    wait_caught_up(&cluster, leader, victim, 30);
    cluster.kill9(victim);
    let wal = cluster.nodes[victim].dir.join("node.db-wal");
    let length = std::fs::metadata(&wal).expect("a WAL after kill -9").len();
    assert!(
        length > 8_192,
        "the WAL holds recent writes: {length} bytes"
    );
    let file = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    file.set_len(length - 1_000).unwrap();
    drop(file);
    commit_transfers(&cluster, leader, 30..40);
    let log_before = cluster.log(victim).len();
    cluster.launch(victim);
    wait_caught_up(&cluster, leader, victim, 40);
    let log = cluster.log(victim)[log_before..].to_string();
    assert!(!log.contains("is corrupt"), "recovered, not refused: {log}");
}

/// The disk under a follower fills up while the cluster commits: the follower stops with
/// a message that names the database, says the disk is full and what to do; the others
/// go on committing; once space is freed it starts again and catches up.
#[test]
fn a_full_disk_stops_the_node_with_a_clear_error_and_it_catches_up_once_freed() {
    if !may_mount("the full-disk test") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start("full-disk", 3, 1_000);
    cluster.wait_ready(Duration::from_secs(60));
    let leader = wait_for("a leader", Duration::from_secs(30), || cluster.leader());
    let victim = (leader + 1) % 3;
    commit_transfers(&cluster, leader, 0..10);
    wait_caught_up(&cluster, leader, victim, 10);
    assert!(cluster.stop(victim).success());
    // The follower's data directory moves onto a small tmpfs; its log stays outside.
    let mount = Tmpfs::mount(cluster.dir.join("small-disk"), 16);
    for entry in std::fs::read_dir(&cluster.nodes[victim].dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "node.log" {
            std::fs::copy(entry.path(), mount.0.join(entry.file_name())).unwrap();
        }
    }
    cluster.nodes[victim].log = cluster.dir.join("full-disk-node.log");
    cluster.nodes[victim].dir = mount.0.clone();
    let filler = mount.0.join("filler");
    fill_leaving(&filler, 256 * 1024);
    cluster.launch(victim);
    // Commit until the follower's writes no longer fit.
    let mut nonce = 10;
    while cluster.nodes[victim]
        .child
        .as_mut()
        .unwrap()
        .try_wait()
        .unwrap()
        .is_none()
    {
        assert!(nonce < 2_000, "the follower never ran out of space");
        commit_transfers(&cluster, leader, nonce..nonce + 20);
        nonce += 20;
    }
    let status = cluster.wait_exit(victim, Duration::from_secs(10));
    assert!(!status.success(), "stopped with an error");
    let log = cluster.log(victim);
    let db = mount.0.join("node.db").display().to_string();
    assert!(
        log.contains(&format!("storage at {db}")) && log.contains("disk is full"),
        "names the file and the cause: {log}"
    );
    assert!(log.contains("Free space"), "says what to do: {log}");
    // The other two go on.
    commit_transfers(&cluster, leader, nonce..nonce + 5);
    nonce += 5;
    std::fs::remove_file(&filler).unwrap();
    cluster.launch(victim);
    wait_caught_up(&cluster, leader, victim, nonce);
    cluster.kill9(victim);
    drop(mount);
}
