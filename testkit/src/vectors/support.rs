//! What the scenarios share: outcome readers, actions, and governance steps.

use super::*;

pub(super) fn statuses(outcome: &Outcome) -> Vec<TxStatus> {
    outcome.receipts.iter().map(|r| r.status.clone()).collect()
}

pub(super) fn failed(error: TxError) -> TxStatus {
    TxStatus::Failed(error)
}

pub(super) const OK: TxStatus = TxStatus::Applied;

pub(super) fn transfer(to: AccountId, amount: u128) -> Action {
    Action::Transfer {
        to,
        amount: Amount(amount),
    }
}

pub(super) fn vote(proposal: u64, choice: VoteChoice) -> Action {
    Action::Vote { proposal, choice }
}

pub(super) fn propose(proposal: ProposalKind) -> Action {
    Action::Propose {
        proposal,
        deposit: Amount(Params::default().min_deposit.0),
    }
}

pub(super) fn status_of(s: &Scenario, id: u64) -> ProposalStatus {
    s.ledger().state().proposals[&id].status.clone()
}

pub(super) fn balance(s: &Scenario, id: AccountId) -> u128 {
    s.ledger()
        .state()
        .accounts
        .get(&id)
        .map(|a| a.balance.0)
        .unwrap_or(0)
}

/// Member 0 opens a text proposal (id 0 in these scenarios) in a block by validator 0.
pub(super) fn open_text_proposal(s: &mut Scenario, title: &str, body: &str) {
    let tx = s.sign(
        0,
        propose(ProposalKind::Text {
            title: title.into(),
            body: body.into(),
        }),
    );
    s.block(0, "proposal", vec![tx]);
}

/// Member `i` votes `choices[i]` on proposal 0, all in one block by validator 1.
pub(super) fn vote_block(s: &mut Scenario, note: &str, choices: &[VoteChoice]) {
    let votes = choices
        .iter()
        .enumerate()
        .map(|(i, choice)| s.sign(i, vote(0, *choice)))
        .collect();
    s.block(1, note, votes);
}

/// Runs the voting period out with empty blocks, so proposal `id` is tallied.
pub(super) fn close_voting(s: &mut Scenario, id: u64) {
    let end = s.ledger().state().proposals[&id].voting_end_height;
    while s.ledger().height() < end {
        s.block(0, "voting period runs", vec![]);
    }
}

pub(super) fn propose_with(proposal: ProposalKind, deposit: u128) -> Action {
    Action::Propose {
        proposal,
        deposit: Amount(deposit),
    }
}

pub(super) fn invalid(error: ProposalError) -> TxStatus {
    failed(TxError::InvalidProposal(error))
}

/// Every member votes Yes on every proposal in `ids`, in one block by `proposer`.
pub(super) fn all_vote_yes(
    s: &mut Scenario,
    proposer: usize,
    ids: std::ops::Range<u64>,
    note: &str,
) {
    let mut votes = Vec::new();
    for id in ids {
        for i in 0..s.members.len() {
            votes.push(s.sign(i, vote(id, VoteChoice::Yes)));
        }
    }
    let out = s.block(proposer, note, votes);
    assert!(statuses(&out).iter().all(|status| *status == OK));
}

/// Empty blocks by `proposer` until proposal `id`'s voting period is over.
pub(super) fn close_voting_by(s: &mut Scenario, proposer: usize, id: u64) -> Outcome {
    let end = s.ledger().state().proposals[&id].voting_end_height;
    let mut last = None;
    while s.ledger().height() < end {
        last = Some(s.block(proposer, "voting period runs", vec![]));
    }
    last.expect("the voting period was still running")
}
