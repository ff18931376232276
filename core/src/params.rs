//! Chain parameters, and the typed changes governance can make to them.

use crate::types::{Amount, Ratio};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// The most transactions a block may carry, whatever the parameter says.
pub const MAX_BLOCK_TXS_LIMIT: u32 = 10_000;
/// The largest base reputation governance may set (keeps weight sums far from overflow).
pub const MAX_BASE_REPUTATION: u64 = 1_000_000;

/// Every tunable of the ledger. All of it sits in one state leaf.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Params {
    /// Flat fee per transaction, paid to the treasury whenever signature and nonce are valid.
    pub fee: Amount,
    /// Minted for the proposer of each committed block.
    pub proposer_reward: Amount,
    /// Smallest deposit a proposal may carry.
    pub min_deposit: Amount,
    /// Blocks between an unstake and the moment the tokens are spendable again.
    pub unbonding_blocks: u64,
    /// Blocks a proposal stays open for votes.
    pub voting_period_blocks: u64,
    /// Blocks per reputation epoch.
    pub epoch_blocks: u64,
    /// Share of all stake that must vote (any choice) for a tally to count.
    pub quorum: Ratio,
    /// Share of Yes among Yes + No + Veto needed to pass.
    pub threshold: Ratio,
    /// Share of Veto among all votes at which a proposal is vetoed and its deposit kept.
    pub veto_threshold: Ratio,
    /// Reputation points a validator earns for each committed block it proposed.
    pub reputation_per_block: u64,
    /// Share of earned points kept at each epoch boundary.
    pub reputation_decay: Ratio,
    /// Most transactions in one block.
    pub max_block_txs: u32,
    /// Reputation points a validator earns for each of its commit signatures that lands
    /// in a certificate on chain (and loses for each one it misses after a run of
    /// [`crate::certificate::MISSED_RUN_BEFORE_PENALTY`]).
    #[serde(default = "default_reputation_per_signature")]
    pub reputation_per_signature: u64,
}

fn default_reputation_per_signature() -> u64 {
    Params::default().reputation_per_signature
}

impl Default for Params {
    /// Cosmos x/gov's defaults for the tally (0.334 / 0.5 / 0.334), small test-friendly
    /// periods otherwise.
    fn default() -> Self {
        Params {
            fee: Amount(10),
            proposer_reward: Amount(100),
            min_deposit: Amount(1_000),
            unbonding_blocks: 20,
            voting_period_blocks: 10,
            epoch_blocks: 10,
            quorum: Ratio::new(334, 1000),
            threshold: Ratio::new(1, 2),
            veto_threshold: Ratio::new(334, 1000),
            reputation_per_block: 2,
            reputation_decay: Ratio::new(1, 2),
            max_block_txs: 1_000,
            reputation_per_signature: 8,
        }
    }
}

/// Why a parameter set is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ParamsError {
    /// A ratio is not a fraction in [0, 1].
    #[error("{0} must be a fraction n/d with d > 0 and n <= d")]
    BadRatio(String),
    /// A period is zero.
    #[error("{0} must be at least 1 block")]
    ZeroPeriod(String),
    /// Unbonding is not longer than voting, so stake could vote twice.
    #[error("unbonding_blocks ({unbonding}) must exceed voting_period_blocks ({voting}), or unstaked tokens could vote again")]
    UnbondingTooShort {
        /// The unbonding period.
        unbonding: u64,
        /// The voting period.
        voting: u64,
    },
    /// The block size is out of range.
    #[error("max_block_txs must be between 1 and {MAX_BLOCK_TXS_LIMIT}")]
    BlockSize,
}

impl Params {
    /// Checks the rules every parameter set must keep.
    pub fn validate(&self) -> Result<(), ParamsError> {
        for (name, ratio) in [
            ("quorum", self.quorum),
            ("threshold", self.threshold),
            ("veto_threshold", self.veto_threshold),
            ("reputation_decay", self.reputation_decay),
        ] {
            if !ratio.is_fraction() {
                return Err(ParamsError::BadRatio(name.to_string()));
            }
        }
        for (name, period) in [
            ("unbonding_blocks", self.unbonding_blocks),
            ("voting_period_blocks", self.voting_period_blocks),
            ("epoch_blocks", self.epoch_blocks),
        ] {
            if period == 0 {
                return Err(ParamsError::ZeroPeriod(name.to_string()));
            }
        }
        if self.unbonding_blocks <= self.voting_period_blocks {
            return Err(ParamsError::UnbondingTooShort {
                unbonding: self.unbonding_blocks,
                voting: self.voting_period_blocks,
            });
        }
        if self.max_block_txs == 0 || self.max_block_txs > MAX_BLOCK_TXS_LIMIT {
            return Err(ParamsError::BlockSize);
        }
        Ok(())
    }

    /// The parameters after `changes`, validated as a whole.
    pub fn with_changes(&self, changes: &[ParamChange]) -> Result<Params, ParamsError> {
        let mut next = self.clone();
        for change in changes {
            match *change {
                ParamChange::Fee(value) => next.fee = value,
                ParamChange::ProposerReward(value) => next.proposer_reward = value,
                ParamChange::MinDeposit(value) => next.min_deposit = value,
                ParamChange::UnbondingBlocks(value) => next.unbonding_blocks = value,
                ParamChange::VotingPeriodBlocks(value) => next.voting_period_blocks = value,
                ParamChange::EpochBlocks(value) => next.epoch_blocks = value,
                ParamChange::Quorum(value) => next.quorum = value,
                ParamChange::Threshold(value) => next.threshold = value,
                ParamChange::VetoThreshold(value) => next.veto_threshold = value,
                ParamChange::ReputationPerBlock(value) => next.reputation_per_block = value,
                ParamChange::ReputationDecay(value) => next.reputation_decay = value,
                ParamChange::MaxBlockTxs(value) => next.max_block_txs = value,
                ParamChange::ReputationPerSignature(value) => next.reputation_per_signature = value,
            }
        }
        next.validate()?;
        Ok(next)
    }
}

/// One parameter and its new value.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ParamChange {
    /// See [`Params::fee`].
    Fee(Amount),
    /// See [`Params::proposer_reward`].
    ProposerReward(Amount),
    /// See [`Params::min_deposit`].
    MinDeposit(Amount),
    /// See [`Params::unbonding_blocks`].
    UnbondingBlocks(u64),
    /// See [`Params::voting_period_blocks`].
    VotingPeriodBlocks(u64),
    /// See [`Params::epoch_blocks`].
    EpochBlocks(u64),
    /// See [`Params::quorum`].
    Quorum(Ratio),
    /// See [`Params::threshold`].
    Threshold(Ratio),
    /// See [`Params::veto_threshold`].
    VetoThreshold(Ratio),
    /// See [`Params::reputation_per_block`].
    ReputationPerBlock(u64),
    /// See [`Params::reputation_decay`].
    ReputationDecay(Ratio),
    /// See [`Params::max_block_txs`].
    MaxBlockTxs(u32),
    /// See [`Params::reputation_per_signature`].
    ReputationPerSignature(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Params::default().validate().unwrap();
    }

    #[test]
    fn unbonding_must_outlast_voting() {
        let err = Params::default()
            .with_changes(&[ParamChange::VotingPeriodBlocks(50)])
            .unwrap_err();
        assert!(matches!(err, ParamsError::UnbondingTooShort { .. }));
    }

    #[test]
    fn bad_ratio_refused() {
        let err = Params::default()
            .with_changes(&[ParamChange::Quorum(Ratio::new(3, 2))])
            .unwrap_err();
        assert_eq!(err, ParamsError::BadRatio("quorum".into()));
        let err = Params::default()
            .with_changes(&[ParamChange::Threshold(Ratio::new(0, 0))])
            .unwrap_err();
        assert_eq!(err, ParamsError::BadRatio("threshold".into()));
    }
}
