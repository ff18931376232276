//! `agora propose …` and `agora proposals list|show`.

use crate::format::{parse_ratio, parse_tokens, positive_tokens, ratio, tokens, tokens_arg};
use agora_api::{ProposalResponse, ProposalsResponse};
use agora_core::params::ParamChange;
use agora_core::state::{Decision, Proposal, ProposalStatus, Tally};
use agora_core::tx::{Action, ProposalKind};
use agora_core::{AccountId, Amount, Hash32, PublicKey};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Deserialize;
use std::path::PathBuf;

/// What every proposal takes.
#[derive(Args)]
pub struct ProposeArgs {
    /// Deposit in tokens (refunded unless vetoed; at least the chain's min_deposit).
    #[arg(long, value_parser = tokens_arg)]
    pub deposit: Amount,
    /// Wait for the commit and print the receipt.
    #[arg(long)]
    pub wait: bool,
}

/// The eight kinds of proposal.
#[derive(Subcommand)]
pub enum ProposeCommand {
    /// A statement to vote on; passing it changes nothing but the record.
    ///
    /// Example: agora propose text --title "Adopt the charter" --body "…" --deposit 10
    Text {
        /// Up to 128 bytes.
        #[arg(long)]
        title: String,
        /// Up to 4 KiB.
        #[arg(long)]
        body: String,
        #[command(flatten)]
        args: ProposeArgs,
    },
    /// Change chain parameters (each --set NAME=VALUE; at most 12).
    ///
    /// Names: fee, proposer_reward, min_deposit (tokens); unbonding_blocks,
    /// voting_period_blocks, epoch_blocks, reputation_per_block, reputation_per_signature,
    /// max_block_txs (integers);
    /// quorum, threshold, veto_threshold, reputation_decay (fractions like 1/3).
    ///
    /// Example: agora propose param --set fee=0.00002 --set quorum=2/5 --deposit 10
    Param {
        /// NAME=VALUE.
        #[arg(long = "set", value_name = "NAME=VALUE", required = true)]
        set: Vec<String>,
        #[command(flatten)]
        args: ProposeArgs,
    },
    /// Pay tokens from the treasury.
    ///
    /// Example: agora propose spend --to 3f2a…c9 --amount 500 --deposit 10
    Spend {
        /// Recipient account id (hex).
        #[arg(long)]
        to: String,
        /// Amount in tokens.
        #[arg(long, value_parser = positive_tokens)]
        amount: Amount,
        #[command(flatten)]
        args: ProposeArgs,
    },
    /// Add a validator, from the validator.json that `agora-node init` wrote.
    ///
    /// Example: agora propose add-validator --validator-file node4/validator.json --deposit 10
    AddValidator {
        /// The new validator's public file.
        #[arg(long)]
        validator_file: PathBuf,
        /// Base reputation (default: the file's).
        #[arg(long)]
        base_reputation: Option<u64>,
        #[command(flatten)]
        args: ProposeArgs,
    },
    /// Remove a validator.
    ///
    /// Example: agora propose remove-validator 24b5…a3 --deposit 10
    RemoveValidator {
        /// Validator id (hex).
        validator: String,
        #[command(flatten)]
        args: ProposeArgs,
    },
    /// Set a validator's base reputation.
    ///
    /// Example: agora propose set-reputation 24b5…a3 --base 40 --deposit 10
    SetReputation {
        /// Validator id (hex).
        validator: String,
        /// The new base reputation.
        #[arg(long)]
        base: u64,
        #[command(flatten)]
        args: ProposeArgs,
    },
    /// Add a witness (votes and keeps the log, never leads, does not execute the
    /// ledger), from the validator.json that `agora-node init` wrote for its node.
    ///
    /// Example: agora propose add-witness --validator-file node4/validator.json --weight 10 --deposit 10
    AddWitness {
        /// The new witness's public file.
        #[arg(long)]
        validator_file: PathBuf,
        /// Its consensus weight (1 to 2^32; capped like a validator's).
        #[arg(long, default_value_t = 10)]
        weight: u64,
        #[command(flatten)]
        args: ProposeArgs,
    },
    /// Remove a witness.
    ///
    /// Example: agora propose remove-witness 24b5…a3 --deposit 10
    RemoveWitness {
        /// Witness id (hex).
        witness: String,
        #[command(flatten)]
        args: ProposeArgs,
    },
}

/// The fields of `validator.json` a proposal needs.
#[derive(Deserialize)]
struct ValidatorFile {
    public_key: PublicKey,
    peer_id: String,
    base_reputation: u64,
}

impl ValidatorFile {
    /// Reads `path`; returns the file and its peer id's bytes.
    fn read(path: &std::path::Path) -> Result<(ValidatorFile, Vec<u8>)> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: ValidatorFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a validator.json", path.display()))?;
        let peer = bs58::decode(&file.peer_id)
            .into_vec()
            .map_err(|e| anyhow!("{}: bad peer id: {e}", file.peer_id))?;
        Ok((file, peer))
    }
}

fn account(text: &str) -> Result<AccountId> {
    Ok(AccountId(
        Hash32::from_hex(text).map_err(|e| anyhow!("{text}: not an id: {e}"))?,
    ))
}

/// One `NAME=VALUE` parameter change.
pub fn parse_param(text: &str) -> Result<ParamChange> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("{text}: expected NAME=VALUE"))?;
    let integer = || -> Result<u64> {
        value
            .parse()
            .map_err(|_| anyhow!("{name}: {value} is not a whole number"))
    };
    Ok(match name {
        "fee" => ParamChange::Fee(parse_tokens(value)?),
        "proposer_reward" => ParamChange::ProposerReward(parse_tokens(value)?),
        "min_deposit" => ParamChange::MinDeposit(parse_tokens(value)?),
        "unbonding_blocks" => ParamChange::UnbondingBlocks(integer()?),
        "voting_period_blocks" => ParamChange::VotingPeriodBlocks(integer()?),
        "epoch_blocks" => ParamChange::EpochBlocks(integer()?),
        "reputation_per_block" => ParamChange::ReputationPerBlock(integer()?),
        "reputation_per_signature" => ParamChange::ReputationPerSignature(integer()?),
        "max_block_txs" => ParamChange::MaxBlockTxs(
            u32::try_from(integer()?).map_err(|_| anyhow!("max_block_txs: too large"))?,
        ),
        "quorum" => ParamChange::Quorum(parse_ratio(value)?),
        "threshold" => ParamChange::Threshold(parse_ratio(value)?),
        "veto_threshold" => ParamChange::VetoThreshold(parse_ratio(value)?),
        "reputation_decay" => ParamChange::ReputationDecay(parse_ratio(value)?),
        other => bail!("{other}: not a parameter; see `agora propose param --help`"),
    })
}

/// The transaction a `propose` command asks for, and whether to wait for it.
pub fn action(command: &ProposeCommand) -> Result<(Action, bool)> {
    let (proposal, args) = match command {
        ProposeCommand::Text { title, body, args } => (
            ProposalKind::Text {
                title: title.clone(),
                body: body.clone(),
            },
            args,
        ),
        ProposeCommand::Param { set, args } => (
            ProposalKind::ParameterChange {
                changes: set.iter().map(|s| parse_param(s)).collect::<Result<_>>()?,
            },
            args,
        ),
        ProposeCommand::Spend { to, amount, args } => (
            ProposalKind::TreasurySpend {
                to: account(to)?,
                amount: *amount,
            },
            args,
        ),
        ProposeCommand::AddValidator {
            validator_file,
            base_reputation,
            args,
        } => {
            let (file, peer) = ValidatorFile::read(validator_file)?;
            (
                ProposalKind::AddValidator {
                    public_key: file.public_key,
                    peer,
                    base_reputation: base_reputation.unwrap_or(file.base_reputation),
                },
                args,
            )
        }
        ProposeCommand::RemoveValidator { validator, args } => (
            ProposalKind::RemoveValidator {
                validator: account(validator)?,
            },
            args,
        ),
        ProposeCommand::SetReputation {
            validator,
            base,
            args,
        } => (
            ProposalKind::SetReputation {
                validator: account(validator)?,
                base_reputation: *base,
            },
            args,
        ),
        ProposeCommand::AddWitness {
            validator_file,
            weight,
            args,
        } => {
            let (file, peer) = ValidatorFile::read(validator_file)?;
            (
                ProposalKind::AddWitness {
                    public_key: file.public_key,
                    peer,
                    weight: *weight,
                },
                args,
            )
        }
        ProposeCommand::RemoveWitness { witness, args } => (
            ProposalKind::RemoveWitness {
                witness: account(witness)?,
            },
            args,
        ),
    };
    let deposit = args.deposit;
    Ok((Action::Propose { proposal, deposit }, args.wait))
}

/// A status as one word.
pub fn status_name(status: &ProposalStatus) -> &'static str {
    match status {
        ProposalStatus::Voting => "voting",
        ProposalStatus::Passed => "passed",
        ProposalStatus::ExecutionFailed(_) => "execution_failed",
        ProposalStatus::Rejected => "rejected",
        ProposalStatus::Vetoed => "vetoed",
        ProposalStatus::QuorumNotMet => "quorum_not_met",
    }
}

/// What a proposal does, in a few words.
pub fn describe(kind: &ProposalKind) -> String {
    match kind {
        ProposalKind::Text { title, .. } => format!("text: {title}"),
        ProposalKind::ParameterChange { changes } => {
            let changes: Vec<String> = changes
                .iter()
                .map(|c| {
                    let value = serde_json::to_value(c).expect("serializes");
                    value
                        .as_object()
                        .and_then(|o| o.iter().next())
                        .map(|(name, v)| format!("{name} = {v}"))
                        .unwrap_or_default()
                })
                .collect();
            format!("parameters: {}", changes.join(", "))
        }
        ProposalKind::TreasurySpend { to, amount } => format!("spend {} to {to}", tokens(*amount)),
        ProposalKind::AddValidator { public_key, .. } => {
            format!("add validator {}", AccountId::from_public_key(public_key))
        }
        ProposalKind::RemoveValidator { validator } => format!("remove validator {validator}"),
        ProposalKind::SetReputation {
            validator,
            base_reputation,
        } => format!("set reputation of {validator} to {base_reputation}"),
        ProposalKind::AddWitness {
            public_key, weight, ..
        } => format!(
            "add witness {} of weight {weight}",
            AccountId::from_public_key(public_key)
        ),
        ProposalKind::RemoveWitness { witness } => format!("remove witness {witness}"),
    }
}

/// `proposals list`: the node's proposals, newest first, optionally of one status.
pub fn list(answer: &ProposalsResponse, status: Option<&str>) -> (ProposalsResponse, String) {
    let height = answer.at.height;
    let selected: Vec<&Proposal> = answer
        .proposals
        .iter()
        .filter(|p| status.is_none_or(|s| status_name(&p.status) == s))
        .collect();
    let mut text = format!(
        "{:>4}  {:<16} {:>11}  {}\n",
        "id", "status", "blocks left", "proposal"
    );
    for p in &selected {
        let left = match p.status {
            ProposalStatus::Voting => p.voting_end_height.saturating_sub(height).to_string(),
            _ => "-".into(),
        };
        text.push_str(&format!(
            "{:>4}  {:<16} {:>11}  {}\n",
            p.id,
            status_name(&p.status),
            left,
            describe(&p.kind)
        ));
    }
    if selected.is_empty() {
        text = "no proposals".into();
    }
    let shown = ProposalsResponse {
        proposals: selected.into_iter().cloned().collect(),
        at: answer.at,
    };
    (shown, text.trim_end().to_string())
}

fn amount(value: &agora_core::Amount) -> String {
    tokens(*value)
}

/// `proposals show`: the proposal, its votes, and its tally against the thresholds.
pub fn show(answer: &ProposalResponse) -> Result<String> {
    let proposal = &answer.proposal;
    let mut text = format!(
        "proposal {}: {}\nproposer {}  deposit {}\n",
        proposal.id,
        describe(&proposal.kind),
        proposal.proposer,
        amount(&proposal.deposit)
    );
    if let ProposalKind::Text { body, .. } = &proposal.kind {
        text.push_str(&format!("body     {body}\n"));
    }
    let (tally, decision): (Tally, Option<Decision>) = match (&proposal.tally, &answer.running) {
        (Some(tally), _) => (tally.clone(), None),
        (None, Some(running)) => (running.tally.clone(), Some(running.decision)),
        (None, None) => anyhow::bail!("the node sent no running tally for an open proposal"),
    };
    match &proposal.status {
        ProposalStatus::Voting => text.push_str(&format!(
            "status   voting, {} blocks left (closes at height {})\n",
            answer.blocks_left, proposal.voting_end_height
        )),
        ProposalStatus::ExecutionFailed(reason) => text.push_str(&format!(
            "status   passed but failed to execute: {reason}\n"
        )),
        other => text.push_str(&format!(
            "status   {} (tallied at height {})\n",
            status_name(other),
            proposal.voting_end_height
        )),
    }
    let voted = tally.yes.0 + tally.no.0 + tally.abstain.0 + tally.veto.0;
    let params = &answer.params;
    text.push_str(&format!(
        "tally    yes {}  no {}  abstain {}  veto {}\n",
        amount(&tally.yes),
        amount(&tally.no),
        amount(&tally.abstain),
        amount(&tally.veto)
    ));
    text.push_str(&format!(
        "quorum   {} of {} staked voted; needs more than {}\n",
        amount(&agora_core::Amount(voted)),
        amount(&tally.total_staked),
        ratio(&params.quorum)
    ));
    text.push_str(&format!(
        "passes   when yes exceeds {} of yes+no+veto, unless veto exceeds {} of all votes\n",
        ratio(&params.threshold),
        ratio(&params.veto_threshold)
    ));
    if let Some(decision) = decision {
        let word = match decision {
            Decision::Passes => "passes",
            Decision::Rejected => "is rejected",
            Decision::Vetoed => "is vetoed",
            Decision::QuorumNotMet => "misses the quorum",
        };
        text.push_str(&format!(
            "if tallied now, it {word} (weights are the voters' stake at the tally)\n"
        ));
    }
    text.push_str(&format!("votes    {}\n", answer.votes.len()));
    for vote in &answer.votes {
        let choice = serde_json::to_value(vote.choice).expect("serializes");
        text.push_str(&format!(
            "  {} {:<8} {}\n",
            vote.voter,
            choice.as_str().unwrap_or_default(),
            tokens(vote.weight.unwrap_or(vote.current_stake))
        ));
    }
    Ok(text.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::Ratio;

    #[test]
    fn every_parameter_parses_and_unknown_ones_do_not() {
        assert_eq!(
            parse_param("fee=0.00002").unwrap(),
            ParamChange::Fee(agora_core::Amount(20))
        );
        assert_eq!(
            parse_param("quorum=2/5").unwrap(),
            ParamChange::Quorum(Ratio {
                numerator: 2,
                denominator: 5
            })
        );
        assert_eq!(
            parse_param("voting_period_blocks=30").unwrap(),
            ParamChange::VotingPeriodBlocks(30)
        );
        for name in [
            "proposer_reward=1",
            "min_deposit=1",
            "unbonding_blocks=1",
            "epoch_blocks=1",
            "reputation_per_block=1",
            "max_block_txs=1",
            "threshold=1/2",
            "veto_threshold=1/3",
            "reputation_decay=9/10",
        ] {
            parse_param(name).unwrap();
        }
        assert!(parse_param("fees=1").is_err());
        assert!(parse_param("fee").is_err());
        assert!(parse_param("epoch_blocks=-1").is_err());
        assert!(parse_param("max_block_txs=5000000000").is_err());
    }
}
