//! The actions a transaction carries (transfer, stake, unstake, propose, vote), run once the
//! transaction is authorized and its fee charged.

use super::*;

impl Ledger {
    /// Runs an authorized action. Every check comes before the first write, so a failed
    /// action changes nothing.
    pub(super) fn execute(
        &mut self,
        sender: AccountId,
        action: &Action,
        events: &mut Vec<Event>,
    ) -> Result<(), TxError> {
        let height = self.height();
        let mut account = self.account(&sender);
        match action {
            Action::Transfer { to, amount } => {
                positive(*amount)?;
                account.balance = account
                    .balance
                    .checked_sub(*amount)
                    .ok_or(TxError::InsufficientFunds)?;
                // Check the credit before writing anything (a self-transfer nets to zero).
                if to != &sender {
                    self.account(to)
                        .balance
                        .checked_add(*amount)
                        .ok_or(TxError::Overflow)?;
                }
                self.put_account(sender, account);
                self.credit(*to, *amount).expect("checked above");
                events.push(Event::Transferred {
                    from: sender,
                    to: *to,
                    amount: *amount,
                });
            }
            Action::Stake { amount } => {
                positive(*amount)?;
                account.balance = account
                    .balance
                    .checked_sub(*amount)
                    .ok_or(TxError::InsufficientFunds)?;
                account.staked = account
                    .staked
                    .checked_add(*amount)
                    .ok_or(TxError::Overflow)?;
                let total = self
                    .state
                    .globals
                    .total_staked
                    .checked_add(*amount)
                    .ok_or(TxError::Overflow)?;
                self.state.globals.total_staked = total;
                self.put_account(sender, account);
                events.push(Event::Staked {
                    account: sender,
                    amount: *amount,
                });
            }
            Action::Unstake { amount } => {
                positive(*amount)?;
                account.staked = account
                    .staked
                    .checked_sub(*amount)
                    .ok_or(TxError::InsufficientStake)?;
                account.unbonding = account
                    .unbonding
                    .checked_add(*amount)
                    .ok_or(TxError::Overflow)?;
                let release_height = height
                    .checked_add(self.state.params.unbonding_blocks)
                    .ok_or(TxError::Overflow)?;
                let queued = self
                    .state
                    .unbonding
                    .get(&(release_height, sender))
                    .copied()
                    .unwrap_or_default();
                let queued = queued.checked_add(*amount).ok_or(TxError::Overflow)?;
                let total = self
                    .state
                    .globals
                    .total_staked
                    .checked_sub(*amount)
                    .expect("total stake covers each account's stake");
                self.state.globals.total_staked = total;
                self.state
                    .unbonding
                    .insert((release_height, sender), queued);
                self.dirty
                    .insert(StateKey::Unbonding(release_height, sender));
                self.put_account(sender, account);
                events.push(Event::UnstakeStarted {
                    account: sender,
                    amount: *amount,
                    release_height,
                });
            }
            Action::Propose { proposal, deposit } => {
                let minimum = self.state.params.min_deposit;
                if *deposit < minimum || deposit.is_zero() {
                    return Err(TxError::DepositTooLow { minimum });
                }
                account.balance = account
                    .balance
                    .checked_sub(*deposit)
                    .ok_or(TxError::InsufficientFunds)?;
                self.check_proposal(proposal)
                    .map_err(TxError::InvalidProposal)?;
                let id = self.state.globals.next_proposal_id;
                let voting_end_height = height
                    .checked_add(self.state.params.voting_period_blocks)
                    .ok_or(TxError::Overflow)?;
                self.state.globals.next_proposal_id = id.checked_add(1).ok_or(TxError::Overflow)?;
                self.put_account(sender, account);
                self.state.proposals.insert(
                    id,
                    Proposal {
                        id,
                        proposer: sender,
                        kind: proposal.clone(),
                        deposit: *deposit,
                        submit_height: height,
                        voting_end_height,
                        status: ProposalStatus::Voting,
                        tally: None,
                    },
                );
                self.dirty.insert(StateKey::Proposal(id));
                self.open_by_end.insert((voting_end_height, id));
                events.push(Event::ProposalSubmitted {
                    proposal: id,
                    proposer: sender,
                    voting_end_height,
                });
            }
            Action::Vote { proposal, choice } => {
                let open = self
                    .state
                    .proposals
                    .get(proposal)
                    .ok_or(TxError::UnknownProposal)?;
                if open.status != ProposalStatus::Voting || height > open.voting_end_height {
                    return Err(TxError::VotingClosed);
                }
                self.state.votes.insert(
                    (*proposal, sender),
                    VoteRecord {
                        choice: *choice,
                        weight: None,
                    },
                );
                self.dirty.insert(StateKey::Vote(*proposal, sender));
                events.push(Event::VoteCast {
                    proposal: *proposal,
                    voter: sender,
                    choice: *choice,
                });
            }
        }
        Ok(())
    }
}
