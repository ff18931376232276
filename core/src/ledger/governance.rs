//! Governance inside the ledger: the checks a proposal must pass (at submission and again
//! at execution), the tally at the end of a voting period, and executing a passed proposal.

use super::*;
use crate::state::Witness;

impl Ledger {
    /// Refuses at submission a proposal that could never execute.
    pub(super) fn check_proposal(&self, proposal: &ProposalKind) -> Result<(), ProposalError> {
        let validators = &self.state.validators;
        let known = |id: &ValidatorId| {
            if validators.contains_key(id) {
                Ok(())
            } else {
                Err(ProposalError::UnknownValidator)
            }
        };
        let base_allowed = |base: u64| {
            if base > MAX_BASE_REPUTATION {
                Err(ProposalError::BaseReputationTooHigh)
            } else {
                Ok(())
            }
        };
        match proposal {
            ProposalKind::Text { .. } => Ok(()),
            ProposalKind::ParameterChange { changes } => {
                if changes.is_empty() {
                    return Err(ProposalError::EmptyChange);
                }
                self.state
                    .params
                    .with_changes(changes)
                    .map(|_| ())
                    .map_err(|_| ProposalError::InvalidParameters)
            }
            ProposalKind::TreasurySpend { amount, .. } => {
                if amount.is_zero() {
                    Err(ProposalError::ZeroSpend)
                } else {
                    Ok(())
                }
            }
            ProposalKind::AddValidator {
                public_key,
                base_reputation,
                ..
            } => self
                .new_member(public_key)
                .and_then(|()| base_allowed(*base_reputation)),
            ProposalKind::RemoveValidator { validator } => known(validator),
            ProposalKind::SetReputation {
                validator,
                base_reputation,
            } => known(validator).and_then(|()| base_allowed(*base_reputation)),
            ProposalKind::AddWitness {
                public_key, weight, ..
            } => self.new_member(public_key).and_then(|()| {
                if (1..=MAX_VALIDATOR_WEIGHT).contains(weight) {
                    Ok(())
                } else {
                    Err(ProposalError::WitnessWeightOutOfRange)
                }
            }),
            ProposalKind::RemoveWitness { witness } => {
                if self.state.witnesses.contains_key(witness) {
                    Ok(())
                } else {
                    Err(ProposalError::UnknownWitness)
                }
            }
        }
    }

    /// A key to add as a validator or a witness must be neither yet.
    fn new_member(&self, public_key: &PublicKey) -> Result<(), ProposalError> {
        let id = ValidatorId::from_public_key(public_key);
        if self.state.validators.contains_key(&id) {
            Err(ProposalError::AlreadyValidator)
        } else if self.state.witnesses.contains_key(&id) {
            Err(ProposalError::AlreadyWitness)
        } else {
            Ok(())
        }
    }

    /// Tallies proposal `id` at the end of its voting period: records each vote's weight,
    /// decides, executes if passed, and returns or forfeits the deposit.
    pub(super) fn tally(&mut self, id: u64, events: &mut Vec<Event>) {
        let tally = self.state.running_tally(id);
        for (voter, _, stake) in self.state.votes_by_stake(id) {
            let record = self
                .state
                .votes
                .get_mut(&(id, voter))
                .expect("listed above");
            record.weight = Some(stake);
            self.dirty.insert(StateKey::Vote(id, voter));
        }
        let proposal = self
            .state
            .proposals
            .get(&id)
            .expect("open proposals exist")
            .clone();
        let status = match tally.decide(&self.state.params) {
            Decision::QuorumNotMet => ProposalStatus::QuorumNotMet,
            Decision::Vetoed => ProposalStatus::Vetoed,
            Decision::Passes => match self.execute_proposal(&proposal.kind, events) {
                Ok(()) => ProposalStatus::Passed,
                Err(reason) => ProposalStatus::ExecutionFailed(reason),
            },
            Decision::Rejected => ProposalStatus::Rejected,
        };
        if status == ProposalStatus::Vetoed {
            self.state.globals.treasury = self
                .state
                .globals
                .treasury
                .checked_add(proposal.deposit)
                .expect("within the supply");
            events.push(Event::DepositForfeited {
                proposal: id,
                amount: proposal.deposit,
            });
        } else {
            self.credit(proposal.proposer, proposal.deposit)
                .expect("within the supply");
            events.push(Event::DepositRefunded {
                proposal: id,
                to: proposal.proposer,
                amount: proposal.deposit,
            });
        }
        events.push(Event::ProposalTallied {
            proposal: id,
            status: status.clone(),
            tally: tally.clone(),
        });
        let stored = self.state.proposals.get_mut(&id).expect("exists");
        stored.status = status;
        stored.tally = Some(tally);
        self.dirty.insert(StateKey::Proposal(id));
        self.dirty.insert(StateKey::Globals);
    }

    /// Executes a passed proposal; every check precedes the first write.
    pub(super) fn execute_proposal(
        &mut self,
        kind: &ProposalKind,
        events: &mut Vec<Event>,
    ) -> Result<(), ProposalError> {
        self.check_proposal(kind)?;
        match kind {
            ProposalKind::Text { .. } => {}
            ProposalKind::ParameterChange { changes } => {
                let next = self
                    .state
                    .params
                    .with_changes(changes)
                    .map_err(|_| ProposalError::InvalidParameters)?;
                self.state.params = next;
                self.dirty.insert(StateKey::Params);
                events.push(Event::ParamsChanged);
            }
            ProposalKind::TreasurySpend { to, amount } => {
                let treasury = self
                    .state
                    .globals
                    .treasury
                    .checked_sub(*amount)
                    .ok_or(ProposalError::TreasuryTooSmall)?;
                self.state.globals.treasury = treasury;
                // The treasury is part of the supply, so no balance can overflow by it.
                self.credit(*to, *amount).expect("within the supply");
                events.push(Event::TreasurySpent {
                    to: *to,
                    amount: *amount,
                });
            }
            ProposalKind::AddValidator {
                public_key,
                peer,
                base_reputation,
            } => {
                let id = ValidatorId::from_public_key(public_key);
                let validator = Validator {
                    public_key: public_key.clone(),
                    peer: peer.clone(),
                    base_reputation: *base_reputation,
                    points_bits: 0,
                    blocks_proposed: 0,
                    weight: derive_weight(*base_reputation, 0),
                    missed_certificates: 0,
                };
                self.state.validators.insert(id, validator);
                self.dirty.insert(StateKey::Validator(id));
                events.push(Event::ValidatorAdded { validator: id });
            }
            ProposalKind::RemoveValidator { validator } => {
                if self.weight_of_others(validator) == 0 {
                    return Err(ProposalError::NoValidatorWithWeight);
                }
                self.state.validators.remove(validator);
                self.dirty.insert(StateKey::Validator(*validator));
                events.push(Event::ValidatorRemoved {
                    validator: *validator,
                });
            }
            ProposalKind::SetReputation {
                validator,
                base_reputation,
            } => {
                let current = &self.state.validators[validator];
                let new_weight = derive_weight(*base_reputation, current.points_bits);
                if self.weight_of_others(validator) == 0 && new_weight == 0 {
                    return Err(ProposalError::NoValidatorWithWeight);
                }
                let stored = self.state.validators.get_mut(validator).expect("checked");
                stored.base_reputation = *base_reputation;
                stored.weight = new_weight;
                self.dirty.insert(StateKey::Validator(*validator));
                events.push(Event::ReputationSet {
                    validator: *validator,
                    base_reputation: *base_reputation,
                });
            }
            ProposalKind::AddWitness {
                public_key,
                peer,
                weight,
            } => {
                let id = ValidatorId::from_public_key(public_key);
                let witness = Witness {
                    public_key: public_key.clone(),
                    peer: peer.clone(),
                    weight: *weight,
                };
                self.state.witnesses.insert(id, witness);
                self.dirty.insert(StateKey::Witness(id));
                events.push(Event::WitnessAdded { witness: id });
            }
            ProposalKind::RemoveWitness { witness } => {
                self.state.witnesses.remove(witness);
                self.dirty.insert(StateKey::Witness(*witness));
                events.push(Event::WitnessRemoved { witness: *witness });
            }
        }
        Ok(())
    }

    /// The summed weight of every validator but `validator`.
    fn weight_of_others(&self, validator: &ValidatorId) -> u64 {
        self.state
            .validators
            .iter()
            .filter(|(id, _)| *id != validator)
            .map(|(_, v)| v.weight)
            .sum()
    }
}
