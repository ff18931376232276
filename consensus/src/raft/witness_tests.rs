//! Witnesses in the core: they never lead, they give a full member that missed entries a
//! dead leader committed with them what it needs to be elected, they may forget only what
//! a quorum of the full members holds, and a configuration without witnesses keeps its
//! bytes.

use crate::raft::config::{Config, Membership};
use crate::raft::{ConfigChange, EntryData, Role};
use crate::sim::cluster::{node_id, weighted_config, Cluster};

fn applied(c: &Cluster, i: usize, payload: &[u8]) -> bool {
    c.applied[i]
        .iter()
        .any(|e| matches!(&e.data, EntryData::Normal(p) if &p[..] == payload))
}

/// With both full members gone the witness never leads, however long it waits; with one
/// of them back, that one leads.
#[test]
fn a_witness_never_campaigns_and_gets_no_vote() {
    let mut c = Cluster::with_witnesses(&[1, 1, 5], &[2], 0);
    let leader = c.elect();
    assert_ne!(
        leader, 2,
        "the heaviest member is a witness: it cannot lead"
    );
    c.stop(0);
    c.stop(1);
    for _ in 0..400 {
        c.tick();
        assert_ne!(c.node(2).role(), Role::Leader);
        assert_ne!(c.node(2).role(), Role::Candidate);
    }
    assert_eq!(c.node(2).counters().elections, 0);
    c.start(1);
    c.tick_until(500, |c| c.leader() == Some(1));
}

/// Once `other` has caught up, cuts it off; the leader commits `payload` without it, then
/// stops, and `other` is reconnected: it lacks `payload`.
fn commit_without_then_lose_the_leader(
    c: &mut Cluster,
    leader: usize,
    other: usize,
    payload: &[u8],
) {
    c.tick_until(50, |c| {
        c.nodes[other]
            .as_ref()
            .is_some_and(|r| r.commit_index() == c.nodes[leader].as_ref().unwrap().commit_index())
    });
    c.isolated.insert(other);
    c.node(leader).propose(payload.to_vec()).unwrap();
    c.tick_until(50, |c| applied(c, leader, payload));
    assert!(!applied(c, other, payload));
    c.stop(leader);
    c.isolated.clear();
}

/// Two full members and a witness: the leader commits an entry with the witness alone (the
/// other full member is cut off), then dies. The survivor's log lacks that entry, so the
/// witness refuses it its vote, but relays the entry; the survivor is elected and applies
/// it. Without the relay nobody could ever be elected again.
#[test]
fn a_full_member_behind_the_witness_catches_up_from_it_and_is_elected() {
    let mut c = Cluster::with_witnesses(&[1, 1, 1], &[2], 0);
    let leader = c.elect();
    let other = 1 - leader;
    commit_without_then_lose_the_leader(&mut c, leader, other, b"with the witness");
    c.tick_until(1_000, |c| c.leader() == Some(other));
    c.tick_until(50, |c| applied(c, other, b"with the witness"));
    assert!(c.node(2).counters().witness_relays > 0);
    assert!(c.node(other).counters().witness_entries_taken > 0);
    c.node(other).propose(b"after".to_vec()).unwrap();
    c.tick_until(50, |c| {
        applied(c, other, b"after") && applied(c, 2, b"after")
    });
}

/// A witness may forget entries only once a quorum of the full members' weight holds them:
/// while one of two equal full members is cut off, commits go on (leader + witness) but
/// the witness keeps everything after what the cut-off member has.
#[test]
fn a_witness_forgets_only_what_a_quorum_of_full_members_holds() {
    let mut c = Cluster::with_witnesses(&[1, 1, 1], &[2], 0);
    let leader = c.elect();
    let other = 1 - leader;
    c.node(leader).propose(b"before".to_vec()).unwrap();
    c.tick_until(50, |c| {
        applied(c, other, b"before") && applied(c, 2, b"before")
    });
    for _ in 0..10 {
        c.tick();
    }
    let held_by_both = c.node(other).last_index();
    c.isolated.insert(other);
    for n in 0..5u8 {
        c.node(leader).propose(vec![n]).unwrap();
    }
    c.tick_until(50, |c| applied(c, 2, &[4]));
    for _ in 0..10 {
        c.tick();
    }
    assert!(c.node(2).commit_index() > held_by_both);
    assert_eq!(
        c.node(2).witness_forgettable(),
        held_by_both,
        "the cut-off member holds nothing after this"
    );
    c.isolated.clear();
    let commit = c.node(leader).commit_index();
    c.tick_until(100, |c| {
        c.nodes[2]
            .as_ref()
            .is_some_and(|r| r.witness_forgettable() >= commit)
    });
}

/// The bytes: a configuration without witnesses encodes as before witnesses existed (one
/// member map; the derived enum forms), with witnesses it round-trips with its witness set
/// and peers, and the witness form without witnesses, or naming a non-member, is refused.
#[test]
fn configurations_without_witnesses_keep_their_bytes() {
    let plain = weighted_config(&[1, 2, 3]);
    let change = ConfigChange::Final(plain.clone());
    let mut expected = vec![1u8];
    expected.extend(borsh::to_vec(&plain.members).unwrap());
    assert_eq!(borsh::to_vec(&change).unwrap(), expected);
    let joint = Membership {
        incoming: plain.clone(),
        outgoing: Some(weighted_config(&[1, 1])),
    };
    let mut expected = borsh::to_vec(&plain.members).unwrap();
    expected.push(1);
    expected.extend(borsh::to_vec(&weighted_config(&[1, 1]).members).unwrap());
    assert_eq!(borsh::to_vec(&joint).unwrap(), expected);

    let mut witnessed: Config = plain.clone();
    witnessed.witnesses.insert(node_id(2));
    for (i, member) in witnessed.members.values_mut().enumerate() {
        member.peer = vec![i as u8; 3];
    }
    for change in [
        ConfigChange::Final(witnessed.clone()),
        ConfigChange::Joint {
            old: plain.clone(),
            new: witnessed.clone(),
        },
    ] {
        let bytes = borsh::to_vec(&change).unwrap();
        assert_eq!(borsh::from_slice::<ConfigChange>(&bytes).unwrap(), change);
    }
    let membership = Membership {
        incoming: witnessed.clone(),
        outgoing: Some(plain.clone()),
    };
    let bytes = borsh::to_vec(&membership).unwrap();
    assert_eq!(borsh::from_slice::<Membership>(&bytes).unwrap(), membership);

    // Tag 3 (with witnesses) carrying an empty witness set: a second form of tag 1.
    let mut bytes = vec![3u8];
    bytes.extend(borsh::to_vec(&plain.members).unwrap());
    bytes.extend(borsh::to_vec(&std::collections::BTreeSet::<crate::raft::NodeId>::new()).unwrap());
    bytes.extend(borsh::to_vec(&vec![Vec::<u8>::new(); 3]).unwrap());
    assert!(borsh::from_slice::<ConfigChange>(&bytes).is_err());
    // A witness that is not a member.
    let mut stranger = witnessed.clone();
    stranger.witnesses.insert(node_id(9));
    let bytes = borsh::to_vec(&ConfigChange::Final(stranger)).unwrap();
    assert!(borsh::from_slice::<ConfigChange>(&bytes).is_err());
}

/// A configuration needs a full member with weight: witnesses alone cannot lead.
#[test]
fn a_configuration_of_witnesses_alone_is_refused() {
    let mut config = weighted_config(&[0, 2]);
    config.witnesses.insert(node_id(1));
    assert_eq!(
        config.validate(),
        Err(crate::raft::config::ConfigError::NoFullVoters)
    );
    config.witnesses.clear();
    assert_eq!(config.validate(), Ok(()));
}

/// A heavy full member is a quorum of the full members alone, but one disk: the witness
/// keeps what the other full member lacks, so losing the heavy one's disk loses nothing
/// (the simulator found the last copy gone when a witness forgot by the quorum alone).
#[test]
fn a_witness_keeps_what_only_one_full_member_holds() {
    let mut c = Cluster::with_witnesses(&[5, 1, 1], &[2], 0);
    c.tick_until(500, |c| c.leader() == Some(0));
    c.node(0).propose(b"before".to_vec()).unwrap();
    c.tick_until(50, |c| applied(c, 1, b"before") && applied(c, 2, b"before"));
    for _ in 0..10 {
        c.tick();
    }
    let held_by_both = c.node(1).last_index();
    c.isolated.insert(1);
    for n in 0..5u8 {
        c.node(0).propose(vec![n]).unwrap();
    }
    c.tick_until(50, |c| applied(c, 2, &[4]));
    for _ in 0..10 {
        c.tick();
    }
    assert!(c.node(2).commit_index() > held_by_both);
    assert_eq!(c.node(2).witness_forgettable(), held_by_both);
}

/// A witness never campaigns, so nobody names it a leader its log does not know (a full
/// member learns one when a member refuses its pre-vote). Cut off while a spare joins and
/// takes the lead, the witness would drop that leader's messages forever; it asks the
/// members it knows after an election timeout, one names the leader, and it catches up.
/// (Found by the simulator with two witnesses: a witness stuck 3,000 entries behind.)
#[test]
fn a_witness_that_missed_its_leaders_addition_asks_and_catches_up() {
    let mut c = Cluster::with_witnesses(&[1, 1, 1], &[2], 1);
    // How the transport reaches each node (the replica gives these from the ledger).
    let contacts: std::collections::BTreeMap<_, _> =
        (0..4).map(|i| (node_id(i), vec![i as u8; 4])).collect();
    for i in 0..4 {
        c.node(i).set_contacts(contacts.clone());
    }
    let leader = c.elect();
    c.isolated.insert(2);
    let mut config = weighted_config(&[1, 1, 1, 1]);
    config.witnesses.insert(node_id(2));
    c.node(leader).propose_config(config.clone()).unwrap();
    c.tick_until(200, |c| {
        [0, 1, 3].iter().all(|i| {
            c.nodes[*i]
                .as_ref()
                .is_some_and(|r| !r.membership().is_joint() && r.membership().incoming == config)
        })
    });
    c.node(leader).transfer_leader(node_id(3)).unwrap();
    c.tick_until(300, |c| c.leader() == Some(3));
    c.isolated.clear();
    c.node(3).propose(b"from the new leader".to_vec()).unwrap();
    c.tick_until(1_000, |c| applied(c, 2, b"from the new leader"));
    assert!(c.node(2).counters().leaders_vouched > 0);
}

/// Two full members and a witness of equal weight, plus a third full member: one full member
/// is voted out while the other is cut off. Returns the cluster (still joint: the leader
/// waits), the leader, the cut-off member and the new configuration.
fn voted_out_while_the_other_is_cut_off() -> (Cluster, usize, usize, Config) {
    let mut c = Cluster::with_witnesses(&[1, 1, 1, 1], &[3], 0);
    let leader = c.elect();
    let (removed, lagging) = match leader {
        0 => (1, 2),
        1 => (2, 0),
        _ => (0, 1),
    };
    c.isolated.insert(lagging);
    let mut config = c.node(leader).membership().incoming.clone();
    config.members.remove(&node_id(removed));
    c.node(leader).propose_config(config.clone()).unwrap();
    c.node(leader).propose(b"during".to_vec()).unwrap();
    c.tick_until(100, |c| applied(c, leader, b"during"));
    for _ in 0..200 {
        c.tick();
        assert!(
            c.nodes[leader].as_ref().unwrap().membership().is_joint(),
            "left the joint configuration with one full holder"
        );
    }
    (c, leader, lagging, config)
}

fn left_joint_for(c: &Cluster, nodes: &[usize], config: &Config) -> bool {
    nodes.iter().all(|i| {
        c.nodes[*i]
            .as_ref()
            .is_some_and(|r| !r.membership().is_joint() && r.membership().incoming == *config)
    })
}

/// Leaving a joint configuration may drop a full member that held entries a witness
/// forgot: the leader appends C(new) only once two full members of the new configuration
/// hold the joint entry. Here the leader stays joint (commits go on) until the cut-off
/// member catches up. (Found by the simulator: a holder voted out, the other holder's disk
/// lost, and the full members left could catch up from nobody.)
#[test]
fn leaving_joint_waits_until_two_full_members_of_the_new_configuration_hold_it() {
    let (mut c, leader, lagging, config) = voted_out_while_the_other_is_cut_off();
    c.isolated.clear();
    c.tick_until(300, |c| left_joint_for(c, &[leader, lagging], &config));
}

/// The same after every node compacted its log (the joint entry is inside the snapshot)
/// and restarted: the joint membership comes from the snapshot, and a leader still leaves
/// it. (The simulator found a cluster joint forever when the rule above looked only at
/// configuration entries in the log.)
#[test]
fn a_joint_configuration_restored_from_a_snapshot_is_left() {
    let (mut c, _, _, config) = voted_out_while_the_other_is_cut_off();
    c.compact_all();
    for i in 0..4 {
        c.stop(i);
        c.start(i);
    }
    c.isolated.clear();
    c.tick_until(1_000, |c| {
        c.leader().is_some_and(|l| left_joint_for(c, &[l], &config))
    });
}

/// The weight rules hold with witnesses: a witness's vote counts like a full member's, so
/// the counter-example that forces joint consensus for weight changes has its witness
/// form — {A:1, B:1, W:1} → {A:3, B:1, W:1} in one step lets {B, W} (a quorum of the old
/// weights) and {A} (of the new) decide with no node in common — and joint consensus
/// rules it out: every two joint quorums intersect, checked exhaustively over every
/// weight pair below 4 with the witness in either configuration or both.
#[test]
fn the_joint_consensus_counter_example_holds_with_witnesses() {
    let with_witness = |weights: &[u64]| {
        let mut config = weighted_config(weights);
        config.witnesses.insert(node_id(2));
        config
    };
    let (old, new) = (with_witness(&[1, 1, 1]), with_witness(&[3, 1, 1]));
    let b_w: std::collections::BTreeSet<_> = [node_id(1), node_id(2)].into();
    let a: std::collections::BTreeSet<_> = [node_id(0)].into();
    assert!(old.is_quorum(&b_w) && new.is_quorum(&a) && b_w.is_disjoint(&a));
    let joint = Membership {
        incoming: new,
        outgoing: Some(old),
    };
    assert!(!joint.is_quorum(|n| b_w.contains(n)));
    assert!(!joint.is_quorum(|n| a.contains(n)));
    for old_weights in (0..64u64).map(|w| [w % 4, w / 4 % 4, w / 16 % 4]) {
        for new_weights in (0..64u64).map(|w| [w % 4, w / 4 % 4, w / 16 % 4]) {
            for witness_in in 1..4u8 {
                let config = |weights: &[u64; 3], flag: u8| {
                    if witness_in & flag != 0 {
                        with_witness(weights)
                    } else {
                        weighted_config(weights)
                    }
                };
                let joint = Membership {
                    incoming: config(&new_weights, 1),
                    outgoing: Some(config(&old_weights, 2)),
                };
                let quorum = |set: u32| {
                    joint.is_quorum(|n| (0..3).any(|i| set >> i & 1 == 1 && *n == node_id(i)))
                };
                for x in 0u32..8 {
                    for y in 0u32..8 {
                        if quorum(x) && quorum(y) {
                            assert_ne!(
                                x & y,
                                0,
                                "{old_weights:?} -> {new_weights:?}: {x:03b}, {y:03b}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// A member standing aside (a former witness made a validator) relays like a witness: the
/// leader commits an entry with it alone (the third member is cut off) and dies; the third
/// member lacks the entry, so the one standing aside refuses it its vote but sends it
/// the entry, and it is elected. Without the relay nobody could lead again: the member
/// that has the entry never campaigns. (Found by the simulator: `agora-sim --nodes 2
/// --witnesses 1`, seed 21003.)
#[test]
fn a_member_standing_aside_relays_to_a_candidate_behind_it() {
    let mut c = Cluster::new(&[1, 1, 1]);
    c.node(2).set_stands_aside(true);
    let leader = c.elect();
    assert_ne!(leader, 2);
    let other = 1 - leader;
    commit_without_then_lose_the_leader(&mut c, leader, other, b"with the one aside");
    c.tick_until(1_000, |c| c.leader() == Some(other));
    c.tick_until(50, |c| applied(c, other, b"with the one aside"));
    assert!(c.node(2).counters().witness_relays > 0);
}

/// The only member that may lead lost its disk; the other two, a witness and a member
/// standing aside, hold the log but never lead, so no leader can bring the rejoining node
/// what it must reach before it campaigns. They relay it when it probes them, it takes the
/// entries once it knows its target, finishes rejoining and is elected (the simulator's
/// `--nodes 2 --witnesses 1`, seed 21042, could elect nobody before).
#[test]
fn a_rejoining_member_takes_the_log_from_members_that_never_lead() {
    let mut c = Cluster::with_witnesses(&[1, 1, 1], &[2], 0);
    c.node(1).set_stands_aside(true);
    assert_eq!(c.elect(), 0, "the only member that may lead");
    c.node(0).propose(b"before the loss".to_vec()).unwrap();
    c.tick_until(50, |c| {
        let commit = |i: usize| c.nodes[i].as_ref().map(|r| r.commit_index());
        applied(c, 0, b"before the loss") && commit(1) == commit(0) && commit(2) == commit(0)
    });
    c.stop(0);
    c.lose_storage(0);
    c.start(0);
    assert!(c.node(0).is_rejoining());
    c.tick_until(1_000, |c| c.leader() == Some(0));
    let node = c.node(0);
    assert!(
        node.counters().witness_entries_taken > 0,
        "it took relayed entries"
    );
    assert_eq!(node.counters().rejoins, 1);
    c.tick_until(50, |c| applied(c, 0, b"before the loss"));
    c.node(0).propose(b"after".to_vec()).unwrap();
    c.tick_until(50, |c| applied(c, 0, b"after"));
}
