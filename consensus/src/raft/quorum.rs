//! Weighted quorums. A set of nodes is a quorum when its weight is strictly more than half
//! of the configuration's total weight; the same rule decides elections and commits.
//! Learners (weight 0) never count. Any two quorums of one configuration intersect in a
//! voter: if both held at most half, together they would hold at most the total, so one
//! of them would not be a quorum. Joint consensus asks for a quorum of each configuration.

use crate::raft::config::Config;
use crate::raft::types::NodeId;
use std::collections::BTreeMap;

/// Whether the nodes for which `acked` is true hold more than half the weight.
pub fn is_quorum(config: &Config, acked: impl Fn(&NodeId) -> bool) -> bool {
    let total = u128::from(config.total_weight());
    let acked_weight: u128 = config
        .voters()
        .filter(|(id, _)| acked(id))
        .map(|(_, w)| u128::from(w))
        .sum();
    total > 0 && 2 * acked_weight > total
}

/// The highest index `i` such that the voters with `matched >= i` form a quorum.
pub fn committed_index(config: &Config, matched: impl Fn(&NodeId) -> u64) -> u64 {
    let total = u128::from(config.total_weight());
    let mut by_index: Vec<(u64, u64)> = config
        .voters()
        .map(|(id, weight)| (matched(id), weight))
        .collect();
    // Walk from the highest match downward, accumulating weight until it passes half.
    by_index.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.0));
    let mut weight = 0u128;
    for (index, w) in by_index {
        weight += u128::from(w);
        if 2 * weight > total {
            return index;
        }
    }
    0
}

/// Where an election stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// Enough refused that no quorum can grant.
    Lost,
    /// Not decided yet.
    Pending,
}

/// The result of `votes` (granted or refused, by voter) in `config`.
pub fn vote_result(config: &Config, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    let total = u128::from(config.total_weight());
    let (mut granted, mut refused) = (0u128, 0u128);
    for (id, weight) in config.voters() {
        match votes.get(id) {
            Some(true) => granted += u128::from(weight),
            Some(false) => refused += u128::from(weight),
            None => {}
        }
    }
    if 2 * granted > total {
        VoteResult::Won
    } else if 2 * (total - refused) <= total {
        // Even if every missing voter granted, the yes side could not pass half.
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

/// Joint result: won only if both won, lost if either lost.
pub fn combine(a: VoteResult, b: VoteResult) -> VoteResult {
    match (a, b) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::config::{Member, Membership};
    use agora_core::{AccountId, Hash32};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn id(n: u8) -> NodeId {
        AccountId(Hash32([n; 32]))
    }

    fn config(weights: &[u64]) -> Config {
        Config {
            members: weights
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    (
                        id(i as u8),
                        Member {
                            weight: *w,
                            public_key: vec![],
                            peer: vec![],
                        },
                    )
                })
                .collect(),
            witnesses: BTreeSet::new(),
        }
    }

    /// Brute force: a subset is a quorum iff its weight is more than half.
    fn brute_is_quorum(weights: &[u64], subset: u32) -> bool {
        let total: u64 = weights.iter().sum();
        let acked: u64 = weights
            .iter()
            .enumerate()
            .filter(|(i, _)| subset >> i & 1 == 1)
            .map(|(_, w)| w)
            .sum();
        total > 0 && 2 * acked > total
    }

    /// Brute force: the largest index that some quorum has entirely matched.
    fn brute_committed(weights: &[u64], matched: &[u64]) -> u64 {
        let mut best = 0;
        for subset in 0u32..(1 << weights.len()) {
            if brute_is_quorum(weights, subset) {
                let min = (0..weights.len())
                    .filter(|i| subset >> i & 1 == 1)
                    .map(|i| matched[i])
                    .min()
                    .unwrap_or(0);
                best = best.max(min);
            }
        }
        best
    }

    proptest! {
        #[test]
        fn weighted_quorum_matches_brute_force(weights in prop::collection::vec(0u64..6, 1..8), subset in any::<u32>()) {
            let c = config(&weights);
            let subset = subset & ((1 << weights.len()) - 1);
            let acks: BTreeSet<NodeId> = (0..weights.len()).filter(|i| subset >> i & 1 == 1).map(|i| id(i as u8)).collect();
            prop_assert_eq!(c.is_quorum(&acks), brute_is_quorum(&weights, subset));
        }

        #[test]
        fn weighted_commit_index_matches_brute_force(weights in prop::collection::vec(0u64..6, 1..8), matched in prop::collection::vec(0u64..20, 8)) {
            let c = config(&weights);
            let got = committed_index(&c, |n| matched[n.0 .0[0] as usize]);
            prop_assert_eq!(got, brute_committed(&weights, &matched[..weights.len()]));
        }

        #[test]
        fn joint_quorum_is_quorum_of_both(old in prop::collection::vec(0u64..6, 1..7), new in prop::collection::vec(0u64..6, 1..7), subset in any::<u32>(), matched in prop::collection::vec(0u64..20, 8)) {
            let membership = Membership { incoming: config(&new), outgoing: Some(config(&old)) };
            let width = old.len().max(new.len());
            let subset = subset & ((1 << width) - 1);
            let acked = |n: &NodeId| subset >> n.0 .0[0] & 1 == 1;
            prop_assert_eq!(membership.is_quorum(acked), brute_is_quorum(&old, subset & ((1 << old.len()) - 1)) && brute_is_quorum(&new, subset & ((1 << new.len()) - 1)));
            let got = membership.committed_index(|n| matched[n.0 .0[0] as usize]);
            prop_assert_eq!(got, brute_committed(&old, &matched[..old.len()]).min(brute_committed(&new, &matched[..new.len()])));
        }

        #[test]
        fn vote_result_is_consistent(weights in prop::collection::vec(0u64..6, 1..8), votes in prop::collection::vec(prop::option::of(any::<bool>()), 8)) {
            let c = config(&weights);
            let map: BTreeMap<NodeId, bool> = votes.iter().take(weights.len()).enumerate().filter_map(|(i, v)| v.map(|v| (id(i as u8), v))).collect();
            let yes: u32 = (0..weights.len()).filter(|i| votes[*i] == Some(true)).fold(0, |s, i| s | 1 << i);
            let maybe: u32 = (0..weights.len()).filter(|i| votes[*i] != Some(false)).fold(0, |s, i| s | 1 << i);
            let expected = if brute_is_quorum(&weights, yes) { VoteResult::Won } else if !brute_is_quorum(&weights, maybe) { VoteResult::Lost } else { VoteResult::Pending };
            prop_assert_eq!(vote_result(&c, &map), expected);
        }
    }

    /// The counter-example that forces joint consensus for weight changes:
    /// {A:1,B:1,C:1} -> {A:3,B:1,C:1} in one step lets {B,C} (a quorum of the old
    /// configuration) and {A} (a quorum of the new) decide without a common member.
    #[test]
    fn a_lone_weight_change_allows_disjoint_quorums_joint_consensus_does_not() {
        let old = config(&[1, 1, 1]);
        let new = config(&[3, 1, 1]);
        let b_c: BTreeSet<NodeId> = [id(1), id(2)].into();
        let a: BTreeSet<NodeId> = [id(0)].into();
        assert!(
            old.is_quorum(&b_c),
            "B and C are a majority of the old weights"
        );
        assert!(new.is_quorum(&a), "A alone has 3 of 5 in the new weights");
        assert!(
            b_c.is_disjoint(&a),
            "two deciding groups with no node in common"
        );
        let joint = Membership {
            incoming: new,
            outgoing: Some(old),
        };
        assert!(
            !joint.is_quorum(|n| b_c.contains(n)),
            "B,C lack a quorum of the new configuration"
        );
        assert!(
            !joint.is_quorum(|n| a.contains(n)),
            "A lacks a quorum of the old configuration"
        );
        // Under joint consensus, every pair of quorums intersects (checked exhaustively).
        for x in 0u32..8 {
            for y in 0u32..8 {
                let qx = joint.is_quorum(|n| x >> n.0 .0[0] & 1 == 1);
                let qy = joint.is_quorum(|n| y >> n.0 .0[0] & 1 == 1);
                if qx && qy {
                    assert_ne!(x & y, 0, "joint quorums {x:03b} and {y:03b} intersect");
                }
            }
        }
    }

    #[test]
    fn learners_never_count() {
        let c = config(&[2, 0, 1]);
        assert!(c.is_quorum(&[id(0)].into()));
        assert!(!c.is_quorum(&[id(1), id(2)].into()));
        assert_eq!(committed_index(&c, |n| if *n == id(0) { 9 } else { 3 }), 9);
    }
}
