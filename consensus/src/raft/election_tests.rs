//! Elections when the transport reports a closed connection to the leader
//! ([`Raft::leader_unreachable`](crate::raft::Raft::leader_unreachable)).

use crate::raft::{RaftConfig, Role};
use crate::sim::cluster::{node_id, weighted_config, Cluster};

/// The defaults' minimum election timeout, and the most the prompt path adds to it: the
/// rank offset (at most a fifth of the jitter, halved) and its random part (a fifth).
fn prompt_bounds() -> (u64, u64) {
    let cfg = RaftConfig::new(node_id(0));
    let small = (cfg.election_timeout_jitter_ticks / 5).max(1);
    (
        cfg.election_timeout_ticks_min,
        cfg.election_timeout_ticks_min + small / 2 + small,
    )
}

/// Stops the leader and tells the other two their connection to it closed; returns the
/// ticks until one of them campaigns (wins its pre-vote), then waits for a new leader.
fn fail_over(c: &mut Cluster, leader: usize) -> u64 {
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let campaigns = |c: &Cluster| -> u64 {
        others
            .iter()
            .map(|i| c.nodes[*i].as_ref().unwrap().counters().elections)
            .sum()
    };
    let before = campaigns(c);
    c.stop(leader);
    for i in &others {
        c.node(*i).leader_unreachable(node_id(leader));
    }
    let ticks = c.tick_until(200, |c| campaigns(c) > before);
    // Two that campaign in the same tick split the vote; the usual timeout then decides.
    c.tick_until(200, |c| c.leader().is_some_and(|l| l != leader));
    ticks
}

/// The leader dies and both followers learn it at once: in every fail-over, one campaigns
/// within the minimum election timeout plus the prompt path's few ticks, never after the
/// full random timeout (up to twice the minimum), whose slower draws show within a few
/// rounds without the report.
#[test]
fn followers_told_the_leader_is_gone_campaign_at_the_end_of_their_promise() {
    let (min, max) = prompt_bounds();
    let mut c = Cluster::new(&[1, 1, 1]);
    let mut leader = c.elect();
    let mut took = Vec::new();
    for _ in 0..12 {
        took.push(fail_over(&mut c, leader));
        let next = c.leader().expect("elected");
        c.start(leader);
        // The old leader rejoins and catches up before the next round.
        c.node(next).propose(b"round".to_vec()).unwrap();
        c.tick_until(50, |c| c.applied.iter().all(|a| !a.is_empty()));
        for _ in 0..30 {
            c.tick();
        }
        leader = c.leader().expect("still led");
    }
    // A follower heard from the leader at most a heartbeat before it stopped.
    let heartbeat = RaftConfig::new(node_id(0)).heartbeat_interval_ticks;
    assert!(
        took.iter().all(|t| *t + heartbeat >= min && *t <= max),
        "ticks to the first campaign {took:?}, not within {}..={max}",
        min - heartbeat
    );
}

/// The leader is cut off (alive, its lease still valid for a while) and the others are
/// told its connection closed; returns the ticks at which another member led while the
/// old leader's lease held. The third member is a witness (it never campaigns), so the
/// two told cannot split the vote by campaigning in the same tick of this lockstep
/// cluster.
fn lease_overlap(breaks_promise: bool) -> Vec<u64> {
    let mut config = weighted_config(&[1, 1, 1]);
    config.witnesses.insert(node_id(2));
    let mut c = Cluster::build(config, 0, |cfg| {
        cfg.lease_reads = true;
        cfg.bugs.disconnect_breaks_promise = breaks_promise;
    });
    let leader = c.elect();
    for _ in 0..10 {
        c.tick();
    }
    assert!(
        c.node(leader).lease_valid(),
        "a settled leader holds a lease"
    );
    c.isolated.insert(leader);
    for i in (0..3).filter(|i| *i != leader) {
        c.node(i).leader_unreachable(node_id(leader));
    }
    let mut overlap = Vec::new();
    for tick in 0..100 {
        c.tick();
        let new_leader = c.leader().is_some_and(|l| l != leader);
        if new_leader && c.nodes[leader].as_ref().unwrap().lease_valid() {
            overlap.push(tick);
        }
    }
    assert!(
        c.leader().is_some_and(|l| l != leader),
        "the other full member was elected"
    );
    overlap
}

/// The report is no excuse to break the promise: no member leads while the cut-off
/// leader's lease is still valid.
#[test]
fn a_report_does_not_shorten_the_leaders_lease() {
    let overlap = lease_overlap(false);
    assert!(overlap.is_empty(), "two leases at ticks {overlap:?}");
}

/// The check above has teeth: a core that forgets its leader on the report
/// (`Bugs::disconnect_breaks_promise`) elects a new leader under the old one's lease.
#[test]
fn breaking_the_promise_on_a_report_is_caught() {
    assert!(!lease_overlap(true).is_empty());
}

/// A false alarm: the link comes back and the leader's next message restores the usual
/// timeout, so a follower that was told once does not stay quick to campaign.
#[test]
fn a_false_alarm_is_forgotten_when_the_leader_is_heard() {
    let mut c = Cluster::new(&[1, 1, 1]);
    let leader = c.elect();
    let follower = (leader + 1) % 3;
    c.node(follower).leader_unreachable(node_id(leader));
    assert!(c.node(follower).leader_lost, "the timeout was shortened");
    let term = c.node(leader).term();
    for _ in 0..100 {
        c.tick();
    }
    assert!(!c.node(follower).leader_lost, "restored by the heartbeat");
    assert_eq!(c.leader(), Some(leader));
    assert_eq!(c.node(leader).term(), term, "no election");
}

/// Only the leader's connection counts: a report about another follower, or from a node
/// that is not following anyone, changes nothing.
#[test]
fn a_report_about_a_follower_changes_nothing() {
    let mut c = Cluster::new(&[1, 1, 1]);
    let leader = c.elect();
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    c.node(a).leader_unreachable(node_id(b));
    assert!(!c.node(a).leader_lost);
    c.node(leader).leader_unreachable(node_id(a));
    assert!(!c.node(leader).leader_lost);
    assert_eq!(c.node(leader).role(), Role::Leader);
}
