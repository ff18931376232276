//! A member removed while it could not hear the leader learns it was removed (see the
//! `leaving` module), and the leader lets it go once it knows, or after a bound.

use crate::raft::{Config, Index, Raft, StubVotes};
use crate::sim::cluster::{node_id, Cluster};

/// Four equal members; the leader removes one (not itself) while that one is cut off,
/// and the change completes without it. Returns the cluster, the leader, the removed
/// member and the configuration without it.
fn removed_while_cut_off() -> (Cluster, usize, usize, Config) {
    let mut c = Cluster::new(&[1, 1, 1, 1]);
    let leader = c.elect();
    let removed = (leader + 1) % 4;
    c.isolated.insert(removed);
    let mut config = c.node(leader).membership().incoming.clone();
    config.members.remove(&node_id(removed));
    c.node(leader).propose_config(config.clone()).unwrap();
    c.tick_until(100, |c| {
        (0..4).filter(|i| *i != removed).all(|i| {
            c.nodes[i].as_ref().is_some_and(|r| {
                !r.membership().is_joint()
                    && r.membership().incoming == config
                    && r.commit_index() >= r.membership_index()
            })
        })
    });
    (c, leader, removed, config)
}

fn knows_it_was_removed(raft: &Raft<StubVotes>) -> Option<Index> {
    raft.voted_out()
}

/// Without being told, the removed member would hold the old configuration forever, keep
/// campaigning, and keep its clients waiting. Healed, it is told: it holds the committed
/// configuration that removed it, and the leader then lets it go.
#[test]
fn a_member_removed_while_cut_off_is_told_once_it_can_hear() {
    let (mut c, leader, removed, config) = removed_while_cut_off();
    let removing = c.node(leader).membership_index();
    assert!(c.node(leader).leaving().any(|id| id == node_id(removed)));
    assert_eq!(knows_it_was_removed(c.node(removed)), None);
    for i in (0..4).filter(|i| *i != removed) {
        assert_eq!(
            knows_it_was_removed(c.node(i)),
            None,
            "members are not voted out"
        );
    }
    c.isolated.clear();
    c.tick_until(100, |c| {
        c.nodes[removed]
            .as_ref()
            .is_some_and(|r| knows_it_was_removed(r) == Some(removing))
    });
    assert_eq!(c.node(removed).membership().incoming, config);
    // Told, it is let go: no progress, nothing more sent to it.
    c.tick_until(50, |c| {
        let leader = c.nodes[leader].as_ref().unwrap();
        leader.leaving().next().is_none() && !leader.progress().contains_key(&node_id(removed))
    });
    // It never campaigns again (it is not a voter of the configuration it holds).
    let term = c.node(removed).term();
    for _ in 0..300 {
        c.tick();
    }
    assert_eq!(c.node(removed).term(), term);
    assert_eq!(c.leader(), Some(leader));
}

/// The leader that removed it died before telling it: the next leader finds the removal
/// in its log and tells it.
#[test]
fn the_next_leader_tells_a_member_the_last_one_removed() {
    let (mut c, leader, removed, _) = removed_while_cut_off();
    let removing = c.node(leader).membership_index();
    c.stop(leader);
    let next = c.elect();
    assert_ne!(next, leader);
    assert!(c.node(next).leaving().any(|id| id == node_id(removed)));
    c.isolated.clear();
    c.tick_until(100, |c| {
        c.nodes[removed]
            .as_ref()
            .is_some_and(|r| knows_it_was_removed(r) == Some(removing))
    });
}

/// A removed member that stays unreachable is let go after the bound: the leader does not
/// replicate to it for ever.
#[test]
fn an_unreachable_removed_member_is_let_go_after_a_bound() {
    let (mut c, leader, removed, _) = removed_while_cut_off();
    assert!(c.node(leader).progress().contains_key(&node_id(removed)));
    c.tick_until(1_000, |c| {
        !c.nodes[leader]
            .as_ref()
            .unwrap()
            .progress()
            .contains_key(&node_id(removed))
    });
    assert!(c.node(leader).leaving().next().is_none());
    assert_eq!(c.leader(), Some(leader));
}
