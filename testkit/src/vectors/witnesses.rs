//! Witnesses added and removed by governance, and every way such a proposal is refused.

use super::support::*;
use super::*;
use agora_core::ledger::MAX_VALIDATOR_WEIGHT;

pub(super) fn governance_witnesses() -> VectorFile {
    let mut s = Scenario::new(
        "governance_witnesses",
        "Governance adds a witness (weight 10; the configuration lists it after the validators, the committee stays) and removes it again; refused at submission: a validator's key, weights 0 and 2^32 + 1, an unknown witness, and once it is a witness its key as a validator or a second witness; a second removal at the same tally fails to execute.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    let newcomer = seeded_key(KeyKind::MlDsa44, "validator-3");
    let witness = ValidatorId::from_public_key(newcomer.public_key());
    let stranger = AccountId(tagged_hash(b"agora/test-seed/v1", &[b"no such witness"]));
    let add = |weight| ProposalKind::AddWitness {
        public_key: newcomer.public_key().clone(),
        peer: validator_peer(3),
        weight,
    };
    let txs = vec![
        s.sign(0, propose(add(10))),
        s.sign(
            1,
            propose(ProposalKind::AddWitness {
                public_key: s.validators[2].public_key().clone(),
                peer: validator_peer(2),
                weight: 10,
            }),
        ),
        s.sign(1, propose(add(0))),
        s.sign(2, propose(add(MAX_VALIDATOR_WEIGHT + 1))),
        s.sign(
            2,
            propose(ProposalKind::RemoveWitness { witness: stranger }),
        ),
    ];
    let out = s.block(0, "a witness proposed; four refused at submission", txs);
    assert_eq!(
        statuses(&out),
        vec![
            OK,
            invalid(ProposalError::AlreadyValidator),
            invalid(ProposalError::WitnessWeightOutOfRange),
            invalid(ProposalError::WitnessWeightOutOfRange),
            invalid(ProposalError::UnknownWitness),
        ]
    );
    all_vote_yes(&mut s, 1, 0..1, "every member votes yes");
    let out = close_voting_by(&mut s, 2, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Passed);
    assert!(out.events.contains(&Event::WitnessAdded { witness }));
    let config = out
        .config_changed
        .expect("the witness joins the configuration");
    assert_eq!(config.witnesses.len(), 1);
    assert_eq!(config.witnesses[0].validator, witness);
    assert_eq!(config.members.len(), 3);
    let committee = &s.ledger().state().committee.members;
    assert!(
        committee.len() == 3 && committee.iter().all(|m| m.validator != witness),
        "a witness signs no certificate: the committee holds validators only"
    );

    let remove = ProposalKind::RemoveWitness { witness };
    let txs = vec![
        s.sign(
            0,
            propose(ProposalKind::AddValidator {
                public_key: newcomer.public_key().clone(),
                peer: validator_peer(3),
                base_reputation: 10,
            }),
        ),
        s.sign(1, propose(add(20))),
        s.sign(1, propose(remove.clone())),
        s.sign(2, propose(remove)),
    ];
    let out = s.block(
        0,
        "its key refused as a validator and as a second witness; two removals proposed",
        txs,
    );
    assert_eq!(
        statuses(&out),
        vec![
            invalid(ProposalError::AlreadyWitness),
            invalid(ProposalError::AlreadyWitness),
            OK,
            OK,
        ]
    );
    all_vote_yes(&mut s, 1, 1..3, "every member votes yes on both");
    let out = close_voting_by(&mut s, 2, 1);
    assert_eq!(status_of(&s, 1), ProposalStatus::Passed);
    assert_eq!(
        status_of(&s, 2),
        ProposalStatus::ExecutionFailed(ProposalError::UnknownWitness)
    );
    assert!(out.events.contains(&Event::WitnessRemoved { witness }));
    let config = out.config_changed.expect("the witness leaves");
    assert!(config.witnesses.is_empty());
    assert!(s.ledger().state().witnesses.is_empty());
    s.block(0, "a block without witnesses again", vec![]);
    s.finish()
}
