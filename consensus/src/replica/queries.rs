//! What a read asks of the ledger, and the typed answer.

use super::Answer;
use agora_api::{
    AccountResponse, ApiError, At, ChainResponse, ProofResponse, ProposalResponse,
    ProposalsResponse, RunningTally, TallyParams, ValidatorInfo, ValidatorWeight,
    ValidatorsResponse, VoteInfo,
};
use agora_core::state::ProposalStatus;
use agora_core::{AccountId, Ledger, StateKey};
use std::collections::BTreeMap;

/// A question about the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// One account.
    Account(AccountId),
    /// All validators with their consensus weights.
    Validators,
    /// Proposals, newest first.
    Proposals,
    /// One proposal with its votes and running tally.
    Proposal(u64),
    /// The current state root and height.
    StateRoot,
    /// Parameters and chain counters.
    Chain,
    /// A value with its Merkle proof.
    Proof(StateKey),
}

/// Each validator's weight in the configuration the ledger wants (capped).
fn consensus_weights(ledger: &Ledger) -> BTreeMap<AccountId, u64> {
    ledger
        .target_config()
        .members
        .iter()
        .map(|m| (m.validator, m.weight))
        .collect()
}

/// Every validator's stored and consensus weights now.
pub fn weights(ledger: &Ledger) -> Vec<ValidatorWeight> {
    let consensus = consensus_weights(ledger);
    ledger
        .state()
        .validators
        .iter()
        .map(|(id, v)| ValidatorWeight {
            validator: *id,
            weight: v.weight,
            consensus_weight: consensus.get(id).copied(),
        })
        .collect()
}

/// Answers `query` from `ledger`.
pub fn answer(ledger: &Ledger, query: &Query) -> Result<Answer, ApiError> {
    let state = ledger.state();
    let at = At {
        height: ledger.height(),
        state_root: ledger.state_root(),
    };
    Ok(match query {
        Query::Account(id) => {
            let account = state.accounts.get(id).cloned().unwrap_or_default();
            Answer::Account(AccountResponse {
                account: *id,
                balance: account.balance,
                staked: account.staked,
                unbonding: account.unbonding,
                nonce: account.nonce,
                key_registered: state.account_keys.contains_key(id),
                at,
            })
        }
        Query::Validators => {
            let consensus = consensus_weights(ledger);
            Answer::Validators(ValidatorsResponse {
                validators: state
                    .validators
                    .iter()
                    .map(|(id, v)| ValidatorInfo {
                        validator: *id,
                        weight: v.weight,
                        consensus_weight: consensus.get(id).copied(),
                        base_reputation: v.base_reputation,
                        blocks_proposed: v.blocks_proposed,
                        peer: hex::encode(&v.peer),
                        public_key: v.public_key.clone(),
                    })
                    .collect(),
                at,
            })
        }
        Query::Proposals => Answer::Proposals(ProposalsResponse {
            proposals: state.proposals.values().rev().cloned().collect(),
            at,
        }),
        Query::Proposal(id) => {
            let proposal = state
                .proposals
                .get(id)
                .ok_or_else(|| ApiError::not_found(format!("no proposal {id}")))?;
            let votes = state
                .votes_by_stake(*id)
                .into_iter()
                .map(|(voter, choice, current_stake)| VoteInfo {
                    voter,
                    choice,
                    weight: state.votes[&(*id, voter)].weight,
                    current_stake,
                })
                .collect();
            // While voting is open: the tally if it were taken now, and what it would decide.
            let running = (proposal.status == ProposalStatus::Voting).then(|| {
                let tally = state.running_tally(*id);
                let decision = tally.decide(&state.params);
                RunningTally { tally, decision }
            });
            Answer::Proposal(Box::new(ProposalResponse {
                proposal: proposal.clone(),
                votes,
                running,
                blocks_left: proposal
                    .voting_end_height
                    .saturating_sub(state.globals.height),
                params: TallyParams {
                    quorum: state.params.quorum,
                    threshold: state.params.threshold,
                    veto_threshold: state.params.veto_threshold,
                },
                total_staked: state.globals.total_staked,
                at,
            }))
        }
        Query::StateRoot => Answer::StateRoot(at),
        Query::Chain => Answer::Chain(Box::new(ChainResponse {
            chain_id: ledger.chain_id(),
            params: state.params.clone(),
            globals: state.globals.clone(),
            at,
        })),
        Query::Proof(key) => {
            let (value, proof) = ledger
                .prove(key)
                .ok_or_else(|| ApiError::not_found("no value at that key"))?;
            Answer::Proof(Box::new(ProofResponse {
                key: hex::encode(key.to_bytes()),
                value: hex::encode(value),
                proof,
                at,
            }))
        }
    })
}
