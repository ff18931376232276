//! Commit certificates: blocks carrying them, the reputation they earn and cost, a
//! committee change the light client must follow, and every way a certificate is refused.

use super::support::*;
use super::*;
use agora_core::certificate::{CertificateFault, MISSED_RUN_BEFORE_PENALTY};
use agora_core::state::StateKey;

fn points(s: &Scenario, i: usize) -> u128 {
    s.ledger().state().validators[&s.validator(i)].points_bits >> 64
}

fn missed(s: &Scenario, i: usize) -> u64 {
    s.ledger().state().validators[&s.validator(i)].missed_certificates
}

fn certified(s: &Scenario) -> u64 {
    s.ledger().state().globals.certified_height
}

pub(super) fn certificates() -> VectorFile {
    let mut s = Scenario::new(
        "certificates",
        "Blocks carry certificates for earlier heights: all three validators sign; then validator 0 stops signing (misses, then loses points past the run allowed) while validators 1 and 2 still certify; a height without a majority is passed over; governance adds validator 3, and certificates across the committee change are signed by the committee in force before each height.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    s.certify_by(&[0, 1, 2]);
    s.block(1, "nothing to certify yet", vec![]);
    let tx = s.sign(0, transfer(s.member(1), 500));
    let out = s.block(1, "certifies height 1", vec![tx]);
    assert!(out.events.contains(&Event::Certified {
        height: 1,
        signers: 3
    }));
    assert_eq!(certified(&s), 1);
    s.block(1, "certifies height 2", vec![]);
    let before = points(&s, 2);
    s.block(1, "certifies height 3: every signer earns points", vec![]);
    assert!(points(&s, 2) > before, "a follower earns by signing");

    s.certify_by(&[1, 2]);
    for _ in 0..MISSED_RUN_BEFORE_PENALTY + 2 {
        s.block(1, "validator 0 does not sign", vec![]);
    }
    assert!(missed(&s, 0) > MISSED_RUN_BEFORE_PENALTY);
    let at_penalty = points(&s, 0);
    s.block(1, "validator 0 misses again and loses points", vec![]);
    assert!(points(&s, 0) < at_penalty || at_penalty == 0);

    // With three voters the consensus cap keeps any one below half: no certificate.
    s.certify_by(&[2]);
    let stalled = certified(&s);
    s.block(1, "only validator 2 signs: nothing certified", vec![]);
    s.block(1, "still nothing", vec![]);
    assert_eq!(certified(&s), stalled);
    // A later height certified, the ones before it passed over.
    let skip_to = s.ledger().height();
    let cert = s.certificate(skip_to, &signers_in_order(&s, &[1, 2]));
    let out = s.block_with_certificates(
        1,
        "certifies the newest height, passing two over",
        vec![cert],
    );
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, Event::Certified { height, .. } if *height == skip_to)));
    assert_eq!(certified(&s), skip_to);

    // Validator 3 joins through governance: the committee changes at the tally, and the
    // certificate of that height is signed by the committee before it.
    s.certify_by(&[0, 1, 2]);
    let end = add_validator_3(&mut s, KeyKind::MlDsa44);
    s.certify_by(&[0, 1, 2, 3]);
    let out = s.block(1, "certifies the tally height (old committee)", vec![]);
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, Event::Certified { height, signers: 3 } if *height == end)));
    let out = s.block(
        3,
        "certifies the first height under the new committee (four signers)",
        vec![],
    );
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, Event::Certified { signers: 4, .. })));
    s.empty_blocks(12, "an epoch with every validator signing");
    let proposer = points(&s, 1);
    let follower = points(&s, 2);
    assert!(
        follower * 2 >= proposer,
        "a signing follower keeps up with the proposer: {follower} vs {proposer}"
    );
    assert!(s.ledger().prove(&StateKey::Committee).is_some());
    s.finish()
}

/// A chain for the light client's benchmark: three validators with keys of `kind`
/// certifying every height, governance adding a fourth (of the same kind) whose
/// tally lands at about `change_at`, then empty blocks until `heights`. Not a vector.
pub fn certified_chain(kind: KeyKind, heights: u64, change_at: u64) -> VectorFile {
    let mut s = Scenario::with_validator_kind(
        "certified-chain",
        "three validators certify every height; a fourth joins through governance",
        &[kind],
        Params::default(),
        [10, 20, 30],
        kind,
    );
    s.certify_by(&[0, 1, 2]);
    let voting = s.ledger().state().params.voting_period_blocks;
    while s.ledger().height() + voting + 2 < change_at {
        s.block(1, "certified as it goes", vec![]);
    }
    add_validator_3(&mut s, kind);
    s.certify_by(&[0, 1, 2, 3]);
    while s.ledger().height() < heights {
        s.block(1, "certified as it goes", vec![]);
    }
    s.finish()
}

/// Governance adds validator 3 (a key of `kind`): member 0 proposes it, every member
/// votes yes, validator 1 proposes blocks until the tally, where the committee changes.
/// Returns the tally height; the new validator joins `s.validators`.
fn add_validator_3(s: &mut Scenario, kind: KeyKind) -> u64 {
    let newcomer = seeded_key(kind, "validator-3");
    let add = ProposalKind::AddValidator {
        public_key: newcomer.public_key().clone(),
        peer: validator_peer(3),
        base_reputation: 25,
    };
    let tx = s.sign(0, propose(add));
    s.block(1, "propose adding validator 3", vec![tx]);
    let id = *s
        .ledger()
        .state()
        .proposals
        .keys()
        .next_back()
        .expect("opened");
    all_vote_yes(s, 1, id..id + 1, "every member votes yes");
    let end = s.ledger().state().proposals[&id].voting_end_height;
    while s.ledger().height() < end {
        s.block(1, "voting runs", vec![]);
    }
    assert_eq!(
        s.ledger().state().committee.since,
        end,
        "the committee changed at the tally"
    );
    s.validators.push(newcomer);
    end
}

/// Validators `of` (indexes) sorted by validator id, as a certificate lists them.
fn signers_in_order(s: &Scenario, of: &[usize]) -> Vec<usize> {
    let mut signers = of.to_vec();
    signers.sort_by_key(|&i| s.validator(i));
    signers
}

pub(super) fn certificate_failures() -> VectorFile {
    let mut s = Scenario::new(
        "certificate_failures",
        "Every way a block's certificates make it invalid, each refused (the ledger halts and changes nothing) before the valid block at that index: out-of-order and future heights, unsorted, duplicate and unknown signers, too little weight, a signature over another root, certificates the header does not bind, a committee no longer kept, a root no longer kept.",
        &[KeyKind::MlDsa44; 1],
        Params::default(),
    );
    let code = |fault: CertificateFault| format!("invalid_certificate/{}", <&str>::from(fault));
    s.certify_by(&[0, 1, 2]);
    for _ in 0..4 {
        s.block(1, "certified as it goes", vec![]);
    }
    s.certify_by(&[]);
    s.block(1, "no certificates", vec![]);
    s.block(1, "no certificates", vec![]);
    let h = s.ledger().height();
    let all = signers_in_order(&s, &[0, 1, 2]);
    let certified_now = certified(&s);
    s.refuse_certificates(
        1,
        "a height already certified",
        vec![s.certificate(certified_now, &all)],
        &code(CertificateFault::HeightOutOfOrder),
    );
    s.refuse_certificates(
        1,
        "heights in decreasing order",
        vec![s.certificate(h, &all), s.certificate(h - 1, &all)],
        &code(CertificateFault::HeightOutOfOrder),
    );
    let mut future = s.certificate(h, &all);
    future.height = h + 1;
    s.refuse_certificates(
        1,
        "the block's own height",
        vec![future],
        &code(CertificateFault::HeightOutOfOrder),
    );
    let mut unsorted = s.certificate(h, &all);
    unsorted.signatures.swap(0, 1);
    s.refuse_certificates(
        1,
        "signers out of order",
        vec![unsorted],
        &code(CertificateFault::UnsortedSigners),
    );
    let mut duplicate = s.certificate(h, &all);
    duplicate.signatures[0] = duplicate.signatures[1].clone();
    s.refuse_certificates(
        1,
        "a signer twice",
        vec![duplicate],
        &code(CertificateFault::DuplicateSigner),
    );
    let outsider = s.members[0].clone();
    let statement = s.ledger().commit_statement(h).expect("kept");
    let mut unknown = s.certificate(h, &all);
    unknown.signatures.push(CommitSignature {
        validator: ValidatorId::from_public_key(outsider.public_key()),
        signature: outsider.sign(Purpose::Commit, &statement.to_bytes(), [0; 32]),
    });
    unknown.signatures.sort_by_key(|sig| sig.validator);
    s.refuse_certificates(
        1,
        "a member who is not a validator signs",
        vec![unknown],
        &code(CertificateFault::UnknownSigner),
    );
    // The heaviest validator alone: 29 of 59 (the cap keeps any one below half).
    let light = s.certificate(h, &[2]);
    s.refuse_certificates(
        1,
        "half the weight or less",
        vec![light],
        &code(CertificateFault::InsufficientWeight),
    );
    let mut forged = s.certificate(h, &all);
    forged.signatures[0].signature = s.commit_signature(all[0], h - 1).signature;
    s.refuse_certificates(
        1,
        "a signature over another height's root",
        vec![forged],
        &code(CertificateFault::BadSignature),
    );
    // The header binds the certificates: swapping them after signing is refused.
    let honest = s.certificate(h, &all);
    let payload = s.tampered_block(1, vec![honest.clone()], vec![s.certificate(h - 1, &all)]);
    s.refuse(
        payload,
        "certificates the header does not bind",
        "invalid_block",
    );
    s.block_with_certificates(1, "the valid block at this index", vec![honest]);

    // Two committee changes later, the committee that certified an old height is gone.
    let old = s.ledger().height();
    while s.ledger().certifying_committee(old).is_some() {
        assert!(s.ledger().height() < old + 200, "weights stopped changing");
        s.block(
            0,
            "validator 0 proposes: weights change at each epoch",
            vec![],
        );
    }
    s.refuse_certificates(
        1,
        "a height whose committee is no longer kept",
        vec![s.certificate(old, &all)],
        &code(CertificateFault::CommitteeUnknown),
    );
    s.block(1, "valid", vec![]);
    // Past the 1,024 roots kept.
    let stale = s.ledger().height() - 1;
    let stale_cert = s.certificate(stale, &all);
    for _ in 0..agora_core::state::ROOT_HISTORY_LEN {
        s.noop("time passes");
    }
    s.refuse_certificates(
        1,
        "a height whose root is no longer kept",
        vec![stale_cert],
        &code(CertificateFault::HeightNotRecorded),
    );
    s.block(1, "valid", vec![]);
    s.finish()
}
