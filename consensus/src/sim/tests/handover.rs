//! What a node took from a client survives a leader change while that node lives: the
//! transactions it forwarded to a leader that is gone, and those it queued while it led,
//! go to the next leader without the client sending them again; a read it asked a gone
//! leader to confirm is asked of the next one, and the client gets its answer, not a
//! retry.

use super::{quiet_world_with_account, step_ticks, submit_unawaited, transfer_from};
use crate::sim::world::World;
use agora_core::{AccountId, SecretKey};

/// The account's next nonce on node `i`, and how many transactions it handed on.
fn next_nonce_and_handed_on(world: &World, i: usize, key: &SecretKey) -> (u64, u64) {
    let replica = world.nodes[i].replica.as_ref().expect("running");
    let account = AccountId::from_public_key(key.public_key());
    (
        replica.ledger().next_nonce(&account),
        replica.counters().handed_on_txs,
    )
}

/// A follower forwards three transfers to a leader that never gets them (the link is cut,
/// as when a leader's disk fills), and the leader then crashes. The next leader commits
/// all three. Without the hand-on they are lost: the account stays at nonce 1.
#[test]
fn what_a_follower_forwarded_to_a_lost_leader_reaches_the_next() {
    let (mut world, leader, key) = quiet_world_with_account(1);
    step_ticks(&mut world, 50); // the follower applies the registration
    let follower = (leader + 1) % 3;
    let (follower_id, leader_id) = (world.nodes[follower].id, world.nodes[leader].id);
    world.network.block(follower_id, leader_id);
    for nonce in 1..=3 {
        let bytes = transfer_from(&world, &key, nonce);
        submit_unawaited(&mut world, follower, bytes);
    }
    step_ticks(&mut world, 20);
    let replica = world.nodes[follower].replica.as_ref().unwrap();
    assert_eq!(replica.counters().forwarded_txs, 3, "all three went out");
    assert_eq!(
        next_nonce_and_handed_on(&world, follower, &key),
        (1, 0),
        "and none arrived"
    );
    world.crash_with(leader, 100_000, 2);
    world.network.heal();
    step_ticks(&mut world, 600);
    let new_leader = world.leader().expect("a new leader");
    assert_ne!(new_leader, leader);
    let (next, handed_on) = next_nonce_and_handed_on(&world, follower, &key);
    assert_eq!(next, 4, "all three committed");
    assert!(handed_on >= 3, "handed on: {handed_on}");
}

/// A leader holds two transfers that wait for a missing nonce, then hands its leadership
/// over. It hands them on with it: once the missing nonce reaches the new leader, all
/// three commit. Without the hand-on, the two stay in the old leader's mempool and only
/// the missing one commits.
#[test]
fn a_leader_that_hands_over_hands_on_what_it_queued() {
    let (mut world, leader, key) = quiet_world_with_account(1);
    for nonce in 2..=3 {
        let bytes = transfer_from(&world, &key, nonce);
        submit_unawaited(&mut world, leader, bytes);
    }
    step_ticks(&mut world, 20);
    let me = world.nodes[leader].id;
    let replica = world.nodes[leader].replica.as_mut().unwrap();
    assert_eq!(replica.mempool_len(), 2, "held for nonce 1");
    let to = replica
        .balance_leadership(|id| if *id == me { 2 } else { 0 })
        .expect("a transfer starts");
    step_ticks(&mut world, 300);
    let new_leader = world.leader().expect("a leader");
    assert_eq!(world.nodes[new_leader].id, to, "the leadership moved");
    let old = world.nodes[leader].replica.as_ref().unwrap();
    assert_eq!(old.mempool_len(), 0, "nothing left behind");
    assert!(old.counters().handed_on_txs >= 2);
    let bytes = transfer_from(&world, &key, 1);
    submit_unawaited(&mut world, new_leader, bytes);
    step_ticks(&mut world, 300);
    assert_eq!(next_nonce_and_handed_on(&world, new_leader, &key).0, 4);
}

/// A follower asks the leader to confirm a linearizable read, the request is lost and the
/// leader crashes. Once the next leader is elected, the follower asks it, and the client
/// gets the account (served, checked by the simulator's read checker) rather than a 503
/// telling it to retry — which it was, before: the CLI then paused 100 ms in every
/// fail-over.
#[test]
fn a_read_asked_of_a_lost_leader_is_asked_of_the_next() {
    let (mut world, leader) = super::quiet_world();
    world.random_reads = false; // the test's read is the only one
    let follower = (leader + 1) % 3;
    let (follower_id, leader_id) = (world.nodes[follower].id, world.nodes[leader].id);
    world.network.block(follower_id, leader_id);
    let served = world.report.reads_served;
    let id = world.read(follower).expect("the follower runs");
    step_ticks(&mut world, 20);
    assert!(world.outstanding.contains_key(&id), "not confirmed yet");
    world.crash_with(leader, 100_000, 2);
    world.network.heal();
    let mut ticks = 0;
    while world.outstanding.contains_key(&id) {
        assert!(ticks < 1_000, "never answered");
        step_ticks(&mut world, 1);
        ticks += 1;
    }
    assert_ne!(world.leader(), None);
    assert_eq!(world.report.reads_served, served + 1, "served, not refused");
}

/// A leader takes what a follower forwarded in one frame, the frame's ids hashed together:
/// each transaction is admitted on its own, under its own id. The two transfers commit
/// around a malformed item; an id paired with the wrong bytes would put a transaction
/// root in the block that no follower computes, and nothing would commit.
#[test]
fn a_forwarded_frame_is_admitted_item_by_item_under_each_items_own_id() {
    let (mut world, leader, key) = quiet_world_with_account(1);
    let frame: Vec<(u64, Vec<u8>)> = [
        vec![0xff; 40],
        transfer_from(&world, &key, 1),
        transfer_from(&world, &key, 2),
    ]
    .into_iter()
    .map(|bytes| {
        world.next_request += 1;
        (world.next_request - 1, bytes)
    })
    .collect();
    let replica = world.nodes[leader].replica.as_mut().unwrap();
    replica.forwarded(frame);
    step_ticks(&mut world, 100);
    assert_eq!(next_nonce_and_handed_on(&world, leader, &key).0, 3);
    for node in 0..3 {
        let replica = world.nodes[node].replica.as_ref().unwrap();
        let account = AccountId::from_public_key(key.public_key());
        assert_eq!(replica.ledger().next_nonce(&account), 3, "node {node}");
    }
}
