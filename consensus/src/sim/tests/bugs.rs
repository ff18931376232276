//! Injected bugs: for each, a seed within CI's budget on which a checker reports it.
//! A checker that stays silent on its bug fails here.

use super::CI_TICKS;
use crate::raft::Bugs;
use crate::replica::ReplicaBugs;
use crate::sim::{run, SimFailure, SimOptions};

/// Finds a seed on which a checker reports an injected bug, within the CI budget of 300
/// seeds; the test fails if the checkers stay silent. (A broken core often also stops
/// converging; a progress failure does not count as detection here unless it is the
/// property expected.)
fn detected(bugs: Bugs, expected_properties: &[&str]) -> SimFailure {
    detected_with(bugs, ReplicaBugs::default(), expected_properties)
}

fn detected_with(
    bugs: Bugs,
    replica_bugs: ReplicaBugs,
    expected_properties: &[&str],
) -> SimFailure {
    detected_in(bugs, replica_bugs, |_| {}, expected_properties)
}

/// [`detected_with`] on worlds that `shape` narrows (fewer nodes, say), for a bug that
/// only some worlds can show.
fn detected_in(
    bugs: Bugs,
    replica_bugs: ReplicaBugs,
    shape: impl Fn(&mut SimOptions),
    expected_properties: &[&str],
) -> SimFailure {
    for seed in 0..300 {
        let mut options = SimOptions {
            bugs,
            replica_bugs,
            safety_ticks: CI_TICKS,
            ..SimOptions::standard(seed)
        };
        shape(&mut options);
        if let Err(failure) = run(&options) {
            let expected = expected_properties
                .iter()
                .any(|p| failure.violation.property.contains(p));
            // A broken core often stalls too: a progress failure counts only when it is
            // the property under test.
            if failure.violation.is_liveness() && !expected {
                continue;
            }
            assert!(
                expected,
                "seed {seed}: expected a violation of {expected_properties:?}, got {failure}"
            );
            return failure;
        }
    }
    panic!("no checker noticed the injected bug in 300 seeds");
}

#[test]
fn committing_with_a_minority_is_caught() {
    let failure = detected(
        Bugs {
            commit_with_minority: true,
            ..Bugs::default()
        },
        &[
            "state machine safety",
            "leader completeness",
            "no reply before the entry is durable on a quorum",
        ],
    );
    eprintln!("caught: {failure}");
}

#[test]
fn granting_two_votes_in_a_term_is_caught() {
    let failure = detected(
        Bugs {
            grant_two_votes: true,
            ..Bugs::default()
        },
        // Two leaders of one term: seen as such, or as their two different entries at
        // one index and term, whichever check runs first.
        &["election safety", "log matching"],
    );
    eprintln!("caught: {failure}");
}

#[test]
fn skipping_the_log_consistency_check_is_caught() {
    let failure = detected(
        Bugs {
            skip_log_consistency_check: true,
            ..Bugs::default()
        },
        &[
            "log matching",
            "state machine safety",
            "leader completeness",
            "no reply before the entry is durable on a quorum",
            // A diverged log reaches the ledger as a block whose parent is not the last
            // block applied: it refuses it rather than apply a fork.
            "the ledger never halts",
        ],
    );
    eprintln!("caught: {failure}");
}

/// A leader that answers waiting clients when it proposes their block (a speculative
/// apply), before the block is durable anywhere, is caught.
#[test]
fn acknowledging_before_durable_is_caught() {
    let failure = detected_with(
        Bugs::default(),
        ReplicaBugs {
            acknowledge_on_propose: true,
            ..ReplicaBugs::default()
        },
        &[
            "no reply before the entry is durable on a quorum",
            "receipts given to clients",
        ],
    );
    eprintln!("caught: {failure}");
}

/// A replica that never re-sends awaited submissions strands clients whose transaction
/// went to a leader that died or lost its block: caught once the cluster heals.
#[test]
fn dropping_the_resend_is_caught() {
    let failure = detected_with(
        Bugs::default(),
        ReplicaBugs {
            no_resend: true,
            ..ReplicaBugs::default()
        },
        &["every waiting client is answered once the cluster heals"],
    );
    eprintln!("caught: {failure}");
}

/// A replica that stores a leader's snapshot but keeps its old ledger applies the entries
/// after it on the wrong state: caught.
#[test]
fn applying_on_a_stale_state_after_a_snapshot_is_caught() {
    let failure = detected_with(
        Bugs::default(),
        ReplicaBugs {
            skip_snapshot_install: true,
            ..ReplicaBugs::default()
        },
        &["the ledger never halts", "state machine safety"],
    );
    eprintln!("caught: {failure}");
}

/// A follower that forgets its leader as soon as the transport says the connection closed
/// (instead of campaigning once its promise ends) elects a new leader while the old one,
/// cut off but alive, still holds its lease: caught by the lease check.
#[test]
fn breaking_the_promise_on_a_disconnect_is_caught() {
    // Three nodes, whose partitions that cut the leader off tell both others at once; short
    // runs, as the overlap follows such a cut within a few ticks.
    let failure = detected_in(
        Bugs {
            disconnect_breaks_promise: true,
            ..Bugs::default()
        },
        ReplicaBugs::default(),
        |o| {
            o.node_count = Some(3);
            o.safety_ticks = 2_000;
        },
        &["leader lease"],
    );
    eprintln!("caught: {failure}");
}
