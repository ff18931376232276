//! Governance scenarios: proposals passing, failing and refused, and consensus weights.

use super::support::*;
use super::*;

pub(super) fn governance_parameter_change() -> VectorFile {
    let mut s = Scenario::new(
        "governance_parameter_change",
        "A parameter change (fee 10 -> 25, quorum 2/5) passes with all stake voting Yes and takes effect for the next transaction; the deposit is refunded.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    let changes = vec![
        ParamChange::Fee(Amount(25)),
        ParamChange::Quorum(Ratio::new(2, 5)),
    ];
    let tx = s.sign(0, propose(ProposalKind::ParameterChange { changes }));
    let out = s.block(0, "member 0 proposes", vec![tx]);
    assert_eq!(statuses(&out), vec![OK]);
    let votes = (0..3)
        .map(|i| s.sign(i, vote(0, VoteChoice::Yes)))
        .collect();
    s.block(1, "everyone votes yes", votes);
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Passed);
    assert_eq!(s.ledger().state().params.fee, Amount(25));
    let m2 = s.member(2);
    let tx = s.sign(1, transfer(m2, 1));
    let out = s.block(2, "the new fee applies", vec![tx]);
    assert_eq!(out.receipts[0].fee, Amount(25));
    s.finish()
}

pub(super) fn governance_treasury_spend() -> VectorFile {
    let mut s = Scenario::new(
        "governance_treasury_spend",
        "A treasury spend passes and pays its recipient; a second spend larger than the treasury passes the vote but fails to execute, refunding its deposit.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    let recipient = AccountId(tagged_hash(b"agora/test-seed/v1", &[b"grant recipient"]));
    let txs = vec![
        s.sign(
            0,
            propose(ProposalKind::TreasurySpend {
                to: recipient,
                amount: Amount(40_000),
            }),
        ),
        s.sign(
            1,
            propose(ProposalKind::TreasurySpend {
                to: recipient,
                amount: Amount(10_000_000),
            }),
        ),
    ];
    s.block(0, "two spends proposed", txs);
    let mut votes = Vec::new();
    for i in 0..3 {
        votes.push(s.sign(i, vote(0, VoteChoice::Yes)));
        votes.push(s.sign(i, vote(1, VoteChoice::Yes)));
    }
    s.block(1, "both pass the vote", votes);
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Passed);
    assert!(matches!(
        status_of(&s, 1),
        ProposalStatus::ExecutionFailed(_)
    ));
    assert_eq!(balance(&s, recipient), 40_000);
    s.finish()
}

pub(super) fn governance_rejected() -> VectorFile {
    let mut s = Scenario::new(
        "governance_rejected",
        "A text proposal with quorum met but a No majority is rejected; its deposit is refunded; votes and tally stay in state.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    open_text_proposal(&mut s, "Adopt the charter", "Shall we?");
    vote_block(
        &mut s,
        "one yes, two no",
        &[VoteChoice::Yes, VoteChoice::No, VoteChoice::No],
    );
    let proposer = s.member(0);
    let before = balance(&s, proposer);
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Rejected);
    assert_eq!(
        balance(&s, proposer),
        before + Params::default().min_deposit.0
    );
    s.finish()
}

pub(super) fn governance_vetoed() -> VectorFile {
    let mut s = Scenario::new(
        "governance_vetoed",
        "A proposal with Veto above the veto threshold is vetoed although Yes leads; the deposit goes to the treasury.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    open_text_proposal(&mut s, "Contentious", "");
    vote_block(
        &mut s,
        "two yes, one veto: a third of the votes, just under the 0.334 veto threshold",
        &[VoteChoice::Yes, VoteChoice::Yes, VoteChoice::Veto],
    );
    // Member 2 adds stake so that its veto weighs more than 33.4% of the votes.
    let tx = s.sign(
        2,
        Action::Stake {
            amount: Amount(10_000),
        },
    );
    s.block(
        2,
        "the vetoing member stakes more before the tally",
        vec![tx],
    );
    let treasury = s.ledger().state().globals.treasury.0;
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Vetoed);
    assert_eq!(
        s.ledger().state().globals.treasury.0,
        treasury + Params::default().min_deposit.0
    );
    s.finish()
}

pub(super) fn governance_quorum_not_met() -> VectorFile {
    let mut s = Scenario::new(
        "governance_quorum_not_met",
        "Only one of four equal stakers votes (25% < 33.4% quorum): quorum not met, deposit refunded.",
        &[KeyKind::MlDsa44; 4],
        Params::default(),
    );
    open_text_proposal(&mut s, "Quiet", "");
    vote_block(&mut s, "a single vote", &[VoteChoice::Yes]);
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::QuorumNotMet);
    s.finish()
}

pub(super) fn governance_validators() -> VectorFile {
    let mut s = Scenario::new(
        "governance_validators",
        "Governance adds a validator (which then proposes a block) and removes another; each change emits a new target configuration.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    let newcomer = seeded_key(KeyKind::MlDsa44, "validator-3");
    let add = ProposalKind::AddValidator {
        public_key: newcomer.public_key().clone(),
        peer: validator_peer(3),
        base_reputation: 15,
    };
    let remove = ProposalKind::RemoveValidator {
        validator: s.validator(0),
    };
    let txs = vec![s.sign(0, propose(add)), s.sign(1, propose(remove))];
    s.block(1, "add and remove proposed", txs);
    let mut votes = Vec::new();
    for i in 0..3 {
        votes.push(s.sign(i, vote(0, VoteChoice::Yes)));
        votes.push(s.sign(i, vote(1, VoteChoice::Yes)));
    }
    s.block(1, "both pass", votes);
    let end = s.ledger().state().proposals[&0].voting_end_height;
    while s.ledger().height() < end - 1 {
        s.block(1, "voting period runs", vec![]);
    }
    let out = s.block(2, "tally: validator 3 joins, validator 0 leaves", vec![]);
    assert!(out.config_changed.is_some());
    let ids: Vec<ValidatorId> = s
        .ledger()
        .target_config()
        .members
        .iter()
        .map(|m| m.validator)
        .collect();
    assert!(ids.contains(&ValidatorId::from_public_key(newcomer.public_key())));
    assert!(!ids.contains(&s.validator(0)));
    s.validators.push(newcomer);
    s.block(3, "the new validator proposes", vec![]);
    s.finish()
}

pub(super) fn governance_vote_changed() -> VectorFile {
    let mut s = Scenario::new(
        "governance_vote_changed",
        "Votes change before the end: a No becomes Yes and the proposal passes; a voter who unstakes before the tally counts with its remaining stake.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    open_text_proposal(&mut s, "Change of heart", "");
    vote_block(
        &mut s,
        "one yes, two no",
        &[VoteChoice::Yes, VoteChoice::No, VoteChoice::No],
    );
    let txs = vec![
        s.sign(1, vote(0, VoteChoice::Yes)),
        s.sign(
            2,
            Action::Unstake {
                amount: Amount(MEMBER_STAKE - 1),
            },
        ),
    ];
    s.block(
        2,
        "member 1 switches to yes; member 2 unstakes almost everything",
        txs,
    );
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Passed);
    let record = &s.ledger().state().votes[&(0, s.member(2))];
    assert_eq!(record.weight, Some(Amount(1)));
    s.finish()
}

pub(super) fn governance_failures() -> VectorFile {
    let mut s = Scenario::new(
        "governance_failures",
        "Every way governance refuses: a deposit below the minimum, each invalid_proposal code at submission, a vote on an unknown proposal and on a closed one; and passed proposals that fail to execute because an earlier proposal at the same tally changed the state (validator gone, key already added, parameters invalid together, no validator left with weight). No reputation from proposing, so weights are the bases.",
        &[KeyKind::MlDsa44; 3],
        Params {
            reputation_per_block: 0,
            ..Params::default()
        },
    );
    let min = Params::default().min_deposit.0;
    let stranger = AccountId(tagged_hash(b"agora/test-seed/v1", &[b"no such validator"]));
    let newcomer = seeded_key(KeyKind::MlDsa44, "validator-3");
    let add = |base| ProposalKind::AddValidator {
        public_key: newcomer.public_key().clone(),
        peer: validator_peer(3),
        base_reputation: base,
    };
    let params = |changes| ProposalKind::ParameterChange { changes };
    let txs = vec![
        s.sign(
            0,
            propose_with(
                ProposalKind::Text {
                    title: "Too cheap".into(),
                    body: String::new(),
                },
                min - 1,
            ),
        ),
        s.sign(0, propose(params(vec![]))),
        s.sign(
            0,
            propose(params(vec![ParamChange::VotingPeriodBlocks(20)])),
        ),
        s.sign(
            0,
            propose(ProposalKind::TreasurySpend {
                to: s.member(1),
                amount: Amount(0),
            }),
        ),
        s.sign(
            1,
            propose(ProposalKind::AddValidator {
                public_key: s.validators[1].public_key().clone(),
                peer: validator_peer(1),
                base_reputation: 5,
            }),
        ),
        s.sign(1, propose(add(1_000_001))),
        s.sign(
            1,
            propose(ProposalKind::RemoveValidator {
                validator: stranger,
            }),
        ),
        s.sign(
            2,
            propose(ProposalKind::SetReputation {
                validator: s.validator(0),
                base_reputation: 2_000_000,
            }),
        ),
        s.sign(
            2,
            propose(ProposalKind::SetReputation {
                validator: stranger,
                base_reputation: 1,
            }),
        ),
        s.sign(2, vote(7, VoteChoice::Yes)),
    ];
    let out = s.block(
        0,
        "refused at submission: each pays the fee and uses its nonce, no deposit is taken",
        txs,
    );
    assert_eq!(
        statuses(&out),
        vec![
            failed(TxError::DepositTooLow {
                minimum: Amount(min)
            }),
            invalid(ProposalError::EmptyChange),
            invalid(ProposalError::InvalidParameters),
            invalid(ProposalError::ZeroSpend),
            invalid(ProposalError::AlreadyValidator),
            invalid(ProposalError::BaseReputationTooHigh),
            invalid(ProposalError::UnknownValidator),
            invalid(ProposalError::BaseReputationTooHigh),
            invalid(ProposalError::UnknownValidator),
            failed(TxError::UnknownProposal),
        ]
    );
    assert_eq!(s.ledger().state().globals.next_proposal_id, 0);

    let remove = |s: &Scenario, i| ProposalKind::RemoveValidator {
        validator: s.validator(i),
    };
    let proposals = vec![
        (0, remove(&s, 0)),
        (0, remove(&s, 0)),
        (0, remove(&s, 1)),
        (
            1,
            ProposalKind::SetReputation {
                validator: s.validator(2),
                base_reputation: 0,
            },
        ),
        (1, remove(&s, 2)),
        (1, add(5)),
        (2, add(7)),
        (2, params(vec![ParamChange::VotingPeriodBlocks(15)])),
        (2, params(vec![ParamChange::UnbondingBlocks(12)])),
    ];
    let count = proposals.len() as u64;
    let txs = proposals
        .into_iter()
        .map(|(member, kind)| s.sign(member, propose(kind)))
        .collect();
    let out = s.block(
        1,
        "nine proposals, each valid on its own now; they all end at the same height",
        txs,
    );
    assert!(statuses(&out).iter().all(|status| *status == OK));
    all_vote_yes(&mut s, 2, 0..count, "every member votes yes on all nine");
    let out = close_voting_by(&mut s, 2, 0);
    let expected = [
        ProposalStatus::Passed,
        ProposalStatus::ExecutionFailed(ProposalError::UnknownValidator),
        ProposalStatus::Passed,
        ProposalStatus::ExecutionFailed(ProposalError::NoValidatorWithWeight),
        ProposalStatus::ExecutionFailed(ProposalError::NoValidatorWithWeight),
        ProposalStatus::Passed,
        ProposalStatus::ExecutionFailed(ProposalError::AlreadyValidator),
        ProposalStatus::Passed,
        ProposalStatus::ExecutionFailed(ProposalError::InvalidParameters),
    ];
    for (id, status) in expected.into_iter().enumerate() {
        assert_eq!(status_of(&s, id as u64), status, "proposal {id}");
    }
    assert!(out.events.contains(&Event::ConfigChanged));
    assert_eq!(s.ledger().state().validators.len(), 2);
    let late = s.sign(0, vote(0, VoteChoice::No));
    let out = s.block(2, "a vote after the tally", vec![late]);
    assert_eq!(statuses(&out), vec![failed(TxError::VotingClosed)]);
    s.finish()
}

pub(super) fn consensus_weights() -> VectorFile {
    let params = Params {
        reputation_per_block: 0,
        ..Params::default()
    };
    let mut s = Scenario::new(
        "consensus_weights",
        "The consensus weight cap and when config_changed fires: validator 2's weight (30 of 60) is capped to 29 from genesis; raising it to 31 changes the stored weight but not the capped configuration (no config_changed); two re-ratings tallied at one height emit one config_changed, where validator 1 (20 of 36) is now the capped one. No reputation from proposing, so only governance moves weights.",
        &[KeyKind::MlDsa44; 3],
        params,
    );
    let rate = |s: &Scenario, i: usize, base: u64| {
        propose(ProposalKind::SetReputation {
            validator: s.validator(i),
            base_reputation: base,
        })
    };
    let capped = |s: &Scenario| -> Vec<u64> {
        s.ledger()
            .target_config()
            .members
            .iter()
            .map(|m| m.weight)
            .collect()
    };
    let by_id = |s: &Scenario, weights: [u64; 3]| -> Vec<u64> {
        let mut pairs: Vec<(ValidatorId, u64)> =
            (0..3).map(|i| (s.validator(i), weights[i])).collect();
        pairs.sort();
        pairs.into_iter().map(|(_, w)| w).collect()
    };
    assert_eq!(capped(&s), by_id(&s, [10, 20, 29]));
    let tx = s.sign(0, rate(&s, 2, 31));
    s.block(0, "proposal 0: validator 2's base to 31", vec![tx]);
    let txs = vec![s.sign(1, rate(&s, 2, 5)), s.sign(2, rate(&s, 0, 11))];
    s.block(
        1,
        "proposals 1 and 2: validator 2's base to 5, validator 0's to 11",
        txs,
    );
    all_vote_yes(&mut s, 0, 0..3, "every member votes yes on all three");
    let out = close_voting_by(&mut s, 1, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Passed);
    assert_eq!(s.ledger().state().validators[&s.validator(2)].weight, 31);
    assert_eq!(out.config_changed, None, "capped weights unchanged");
    assert_eq!(capped(&s), by_id(&s, [10, 20, 29]));
    let out = close_voting_by(&mut s, 0, 1);
    assert_eq!(status_of(&s, 1), ProposalStatus::Passed);
    assert_eq!(status_of(&s, 2), ProposalStatus::Passed);
    let changes = out
        .events
        .iter()
        .filter(|e| **e == Event::ConfigChanged)
        .count();
    assert_eq!(changes, 1, "once per height");
    assert_eq!(capped(&s), by_id(&s, [11, 15, 5]));
    s.block(2, "validator 2 still proposes with its low weight", vec![]);
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::vectors::{check, Divergence};

    #[test]
    fn a_tampered_vector_is_caught() {
        let mut file = governance_quorum_not_met();
        check(&file).unwrap();
        file.entries[1].expected.state_root = Hash32([1; 32]);
        assert!(matches!(
            check(&file),
            Err(Divergence::Mismatch {
                index: 2,
                what: "state root",
                ..
            })
        ));
        let mut file = governance_quorum_not_met();
        file.entries[0].expected.events.pop();
        assert!(matches!(
            check(&file),
            Err(Divergence::Mismatch {
                index: 1,
                what: "events",
                ..
            })
        ));
        let mut file = governance_quorum_not_met();
        file.genesis.treasury = Amount(1);
        assert!(matches!(check(&file), Err(Divergence::Genesis(_))));
    }
}
