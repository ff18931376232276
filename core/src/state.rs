//! The ledger's state: typed maps, each entry of which is one leaf of the state tree.

use crate::certificate::Committee;
use crate::crypto::PublicKey;
use crate::encoding::{Canonical, DecodeError};
use crate::hash::Hash32;
use crate::params::Params;
use crate::tx::{ProposalKind, VoteChoice};
use crate::types::{AccountId, Amount, ValidatorId};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Chain-wide counters (one leaf).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Globals {
    /// The height of the last applied entry.
    pub height: u64,
    /// Hash of the last block's header (the chain id before the first block).
    pub last_block_hash: Hash32,
    /// Every token in existence: balances, stake, unbonding, deposits, treasury.
    pub total_supply: Amount,
    /// Sum of all accounts' stake: the denominator of quorum.
    pub total_staked: Amount,
    /// Fees and forfeited deposits; spent only by governance.
    pub treasury: Amount,
    /// The id the next proposal gets.
    pub next_proposal_id: u64,
    /// The newest height a certificate on chain certifies (0: none yet).
    pub certified_height: u64,
}

/// An account. Its key sits in a leaf of its own ([`StateKey::AccountKey`]), written once,
/// so that the leaf that changes on every transfer stays small and cheap to hash.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    /// Spendable tokens.
    pub balance: Amount,
    /// Staked tokens (governance weight).
    pub staked: Amount,
    /// Tokens unstaked and waiting out the unbonding period.
    pub unbonding: Amount,
    /// The nonce the next transaction must carry.
    pub nonce: u64,
}

/// A validator.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Validator {
    /// The ML-DSA key that signs its blocks and votes.
    pub public_key: PublicKey,
    /// Its network identity (libp2p peer id bytes).
    #[serde(with = "crate::block::hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub peer: Vec<u8>,
    /// Reputation set by governance.
    pub base_reputation: u64,
    /// Earned reputation, a `fixed::types::U64F64` stored as its raw bits.
    pub points_bits: u128,
    /// Committed blocks it proposed.
    pub blocks_proposed: u64,
    /// Its consensus weight, derived from reputation at epoch boundaries and on changes.
    pub weight: u64,
    /// Certificates landed in a row without its signature while it held weight.
    pub missed_certificates: u64,
}

/// A witness: a consensus member that votes and keeps the Raft log but does not execute
/// the ledger, never leads and signs no certificate. Its weight is fixed (by the genesis),
/// not earned: it proposes nothing, so it has no reputation to earn.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Witness {
    /// The ML-DSA key that signs its votes.
    pub public_key: PublicKey,
    /// Its network identity (libp2p peer id bytes).
    #[serde(with = "crate::block::hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub peer: Vec<u8>,
    /// Its consensus weight (1 to `MAX_VALIDATOR_WEIGHT`).
    pub weight: u64,
}

/// Where a proposal stands.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Open for votes.
    Voting,
    /// Passed and executed.
    Passed,
    /// Passed, but executing it failed (the code says why); the deposit is refunded.
    ExecutionFailed(crate::outcome::ProposalError),
    /// Not enough Yes.
    Rejected,
    /// Enough Veto: the deposit went to the treasury.
    Vetoed,
    /// Too little stake voted.
    QuorumNotMet,
}

/// The counted result of a vote.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tally {
    /// Stake voting Yes.
    pub yes: Amount,
    /// Stake voting No.
    pub no: Amount,
    /// Stake voting Abstain.
    pub abstain: Amount,
    /// Stake voting Veto.
    pub veto: Amount,
    /// All stake at the tally (the quorum denominator).
    pub total_staked: Amount,
}

/// A proposal.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Proposal {
    /// Its id.
    pub id: u64,
    /// Who proposed it (and gets the deposit back unless vetoed).
    pub proposer: AccountId,
    /// What it does if passed.
    pub kind: ProposalKind,
    /// Escrowed deposit.
    pub deposit: Amount,
    /// Height of submission.
    pub submit_height: u64,
    /// Last height at which votes count; tallied at the end of this height.
    pub voting_end_height: u64,
    /// Where it stands.
    pub status: ProposalStatus,
    /// The tally, once counted.
    pub tally: Option<Tally>,
}

/// One account's vote on one proposal.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VoteRecord {
    /// The latest choice.
    pub choice: VoteChoice,
    /// The stake it carried, recorded at the tally.
    pub weight: Option<Amount>,
}

/// The key of a state leaf. Its canonical bytes are the key hashed into the tree path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub enum StateKey {
    /// [`Globals`].
    Globals,
    /// [`Params`].
    Params,
    /// An [`Account`].
    Account(AccountId),
    /// The [`PublicKey`] registered for an account.
    AccountKey(AccountId),
    /// A [`Validator`].
    Validator(ValidatorId),
    /// A [`Proposal`].
    Proposal(u64),
    /// A [`VoteRecord`]: (proposal, voter).
    Vote(u64, AccountId),
    /// An [`Amount`] unbonding: (release height, account).
    Unbonding(u64, AccountId),
    /// The [`Committee`]: the consensus configurations that certify heights.
    Committee,
    /// A [`Witness`]. Only a chain with witnesses has such leaves.
    Witness(ValidatorId),
}

impl StateKey {
    /// The canonical key bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_bytes(&mut out);
        out
    }

    /// Appends the canonical key bytes to `out`.
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        borsh::to_writer(out, self).expect("in memory");
    }
}

/// All ledger state. Its canonical bytes are the snapshot body.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct State {
    /// Counters.
    pub globals: Globals,
    /// Parameters.
    pub params: Params,
    /// Accounts.
    pub accounts: BTreeMap<AccountId, Account>,
    /// Registered keys.
    pub account_keys: BTreeMap<AccountId, PublicKey>,
    /// Validators.
    pub validators: BTreeMap<ValidatorId, Validator>,
    /// Proposals, open and closed.
    pub proposals: BTreeMap<u64, Proposal>,
    /// Votes, kept after the tally.
    pub votes: BTreeMap<(u64, AccountId), VoteRecord>,
    /// Pending unbonding by (release height, account).
    pub unbonding: BTreeMap<(u64, AccountId), Amount>,
    /// The committees that certify heights.
    pub committee: Committee,
    /// Witnesses. Not in the derived encoding: a snapshot carries them after everything
    /// else, and only when there are some, so a chain without witnesses keeps its bytes.
    #[borsh(skip)]
    pub witnesses: BTreeMap<ValidatorId, Witness>,
}

/// What a tally decides, before a passed proposal is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Too little stake voted.
    QuorumNotMet,
    /// Veto stake exceeds the veto threshold of the stake that voted.
    Vetoed,
    /// Yes exceeds the threshold of Yes + No + Veto.
    Passes,
    /// Otherwise.
    Rejected,
}

impl Tally {
    /// The decision these counts give under `params`, checked in order: quorum (all
    /// votes, abstentions included, against `total_staked`), veto (against the stake
    /// that voted), threshold (Yes against Yes + No + Veto).
    pub fn decide(&self, params: &Params) -> Decision {
        let voted = self.yes.0 + self.no.0 + self.abstain.0 + self.veto.0;
        let decisive = self.yes.0 + self.no.0 + self.veto.0;
        if !params.quorum.is_reached_by(voted, self.total_staked.0) {
            Decision::QuorumNotMet
        } else if params.veto_threshold.is_exceeded_by(self.veto.0, voted) {
            Decision::Vetoed
        } else if params.threshold.is_exceeded_by(self.yes.0, decisive) {
            Decision::Passes
        } else {
            Decision::Rejected
        }
    }
}

impl State {
    /// Proposal `id`'s votes, each with its voter's current stake (the weight it would
    /// carry if the tally were now).
    pub fn votes_by_stake(&self, id: u64) -> Vec<(AccountId, VoteChoice, Amount)> {
        let lower = (id, AccountId(Hash32::ZERO));
        let upper = (id, AccountId(Hash32([0xff; 32])));
        self.votes
            .range(lower..=upper)
            .map(|((_, voter), record)| {
                let stake = self
                    .accounts
                    .get(voter)
                    .map(|a| a.staked)
                    .unwrap_or_default();
                (*voter, record.choice, stake)
            })
            .collect()
    }

    /// The tally of proposal `id` if it were taken now.
    pub fn running_tally(&self, id: u64) -> Tally {
        let mut tally = Tally {
            total_staked: self.globals.total_staked,
            ..Tally::default()
        };
        for (_, choice, stake) in self.votes_by_stake(id) {
            let bucket = match choice {
                VoteChoice::Yes => &mut tally.yes,
                VoteChoice::No => &mut tally.no,
                VoteChoice::Abstain => &mut tally.abstain,
                VoteChoice::Veto => &mut tally.veto,
            };
            *bucket = bucket
                .checked_add(stake)
                .expect("votes are bounded by total stake");
        }
        tally
    }

    /// The canonical value bytes of `key`, or `None` if it holds nothing.
    pub fn value_bytes(&self, key: &StateKey) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.write_value(key, &mut out).then_some(out)
    }

    /// Appends the canonical value bytes of `key` to `out`; `false`, with nothing
    /// appended, if it holds nothing.
    pub fn write_value(&self, key: &StateKey, out: &mut Vec<u8>) -> bool {
        fn enc<T: BorshSerialize>(value: Option<&T>, out: &mut Vec<u8>) -> bool {
            value.is_some_and(|value| {
                borsh::to_writer(out, value).expect("in memory");
                true
            })
        }
        match key {
            StateKey::Globals => enc(Some(&self.globals), out),
            StateKey::Params => enc(Some(&self.params), out),
            StateKey::Account(id) => enc(self.accounts.get(id), out),
            StateKey::AccountKey(id) => enc(self.account_keys.get(id), out),
            StateKey::Validator(id) => enc(self.validators.get(id), out),
            StateKey::Proposal(id) => enc(self.proposals.get(id), out),
            StateKey::Vote(proposal, voter) => enc(self.votes.get(&(*proposal, *voter)), out),
            StateKey::Unbonding(height, id) => enc(self.unbonding.get(&(*height, *id)), out),
            StateKey::Committee => enc(Some(&self.committee), out),
            StateKey::Witness(id) => enc(self.witnesses.get(id), out),
        }
    }

    /// Every key that holds a value, in key order.
    pub fn keys(&self) -> Vec<StateKey> {
        let mut keys = vec![StateKey::Globals, StateKey::Params];
        keys.extend(self.accounts.keys().map(|id| StateKey::Account(*id)));
        keys.extend(self.account_keys.keys().map(|id| StateKey::AccountKey(*id)));
        keys.extend(self.validators.keys().map(|id| StateKey::Validator(*id)));
        keys.extend(self.proposals.keys().map(|id| StateKey::Proposal(*id)));
        keys.extend(self.votes.keys().map(|(p, v)| StateKey::Vote(*p, *v)));
        keys.extend(
            self.unbonding
                .keys()
                .map(|(h, a)| StateKey::Unbonding(*h, *a)),
        );
        keys.push(StateKey::Committee);
        keys.extend(self.witnesses.keys().map(|id| StateKey::Witness(*id)));
        keys
    }

    /// Sums every holding and compares with `total_supply`; also checks `total_staked`
    /// and each account's `unbonding` against the queue. O(state): for tests and audits.
    pub fn check_invariants(&self) -> Result<(), String> {
        // Checked sums: a snapshot from a peer may carry any numbers, and an overflow must
        // be an error, not a panic.
        let overflow = |what: &str| format!("{what} overflows u128");
        let add = |sum: u128, amount: u128, what: &str| {
            sum.checked_add(amount).ok_or_else(|| overflow(what))
        };
        let mut sum = self.globals.treasury.0;
        let mut staked = 0u128;
        let mut unbonding_by_account: BTreeMap<AccountId, u128> = BTreeMap::new();
        for ((_, id), amount) in &self.unbonding {
            let queued = unbonding_by_account.entry(*id).or_default();
            *queued = add(*queued, amount.0, "an account's unbonding queue")?;
        }
        for (id, account) in &self.accounts {
            for amount in [account.balance, account.staked, account.unbonding] {
                sum = add(sum, amount.0, "the holdings")?;
            }
            staked = add(staked, account.staked.0, "the stake")?;
            let queued = unbonding_by_account.get(id).copied().unwrap_or(0);
            if queued != account.unbonding.0 {
                return Err(format!(
                    "account {id} shows {} unbonding but the queue holds {queued}",
                    account.unbonding
                ));
            }
        }
        for proposal in self.proposals.values() {
            if proposal.status == ProposalStatus::Voting {
                sum = add(sum, proposal.deposit.0, "the holdings")?;
            }
        }
        if sum != self.globals.total_supply.0 {
            return Err(format!(
                "holdings sum to {sum} but total supply is {}",
                self.globals.total_supply
            ));
        }
        if staked != self.globals.total_staked.0 {
            return Err(format!(
                "stake sums to {staked} but total_staked is {}",
                self.globals.total_staked
            ));
        }
        for (id, validator) in &self.validators {
            if validator.weight > crate::ledger::MAX_VALIDATOR_WEIGHT {
                return Err(format!(
                    "validator {id} has weight {} above the limit {}",
                    validator.weight,
                    crate::ledger::MAX_VALIDATOR_WEIGHT
                ));
            }
            if validator.base_reputation > crate::params::MAX_BASE_REPUTATION {
                return Err(format!(
                    "validator {id} has base reputation {} above the limit {}",
                    validator.base_reputation,
                    crate::params::MAX_BASE_REPUTATION
                ));
            }
        }
        for (id, witness) in &self.witnesses {
            if self.validators.contains_key(id) {
                return Err(format!("{id} is both a validator and a witness"));
            }
            if witness.weight == 0 || witness.weight > crate::ledger::MAX_VALIDATOR_WEIGHT {
                return Err(format!(
                    "witness {id} has weight {} outside 1 to {}",
                    witness.weight,
                    crate::ledger::MAX_VALIDATOR_WEIGHT
                ));
            }
        }
        if crate::ledger::derive_config(&self.validators, &self.witnesses).0
            != self.committee.members
        {
            return Err("the committee is not the configuration the validators derive".into());
        }
        if self.committee.previous_since > self.committee.since
            || self.committee.since > self.globals.height
            || self.globals.certified_height >= self.globals.height.max(1)
        {
            return Err("committee or certified heights out of order".into());
        }
        Ok(())
    }
}

/// How many recent state roots a ledger keeps to check blocks' `checked_state_root`.
pub const ROOT_HISTORY_LEN: u64 = 1024;

/// A snapshot: the whole state plus the recent roots needed to keep checking blocks.
/// Encoded as its fields in order, then the state's witnesses when there are any (a
/// non-empty map; an empty one is not written, so a snapshot of a chain without witnesses
/// has the bytes it had before witnesses existed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The chain.
    pub chain_id: Hash32,
    /// The state.
    pub state: State,
    /// Roots of the last [`ROOT_HISTORY_LEN`] heights, oldest first.
    pub recent_roots: Vec<(u64, Hash32)>,
}

impl BorshSerialize for Snapshot {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.chain_id, writer)?;
        BorshSerialize::serialize(&self.state, writer)?;
        BorshSerialize::serialize(&self.recent_roots, writer)?;
        if !self.state.witnesses.is_empty() {
            BorshSerialize::serialize(&self.state.witnesses, writer)?;
        }
        Ok(())
    }
}

impl BorshDeserialize for Snapshot {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let chain_id = Hash32::deserialize_reader(reader)?;
        let mut state = State::deserialize_reader(reader)?;
        let recent_roots = Vec::deserialize_reader(reader)?;
        let mut first = [0u8; 1];
        if reader.read(&mut first)? == 1 {
            let mut rest = std::io::Read::chain(&first[..], reader);
            state.witnesses = BTreeMap::deserialize_reader(&mut rest)?;
            if state.witnesses.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "an empty witness map is not written",
                ));
            }
        }
        Ok(Snapshot {
            chain_id,
            state,
            recent_roots,
        })
    }
}

impl Canonical for Snapshot {
    const MAX_BYTES: usize = 1 << 34;

    fn validate(&self) -> Result<(), DecodeError> {
        crate::encoding::check_len(
            "snapshot recent roots",
            self.recent_roots.len(),
            ROOT_HISTORY_LEN as usize,
        )?;
        // A ledger records one root per height and keeps the last ROOT_HISTORY_LEN: its
        // snapshot holds exactly the consecutive heights that end at the state's height.
        // Anything else would be a second byte form of the same ledger (or roots it never
        // had).
        let height = self.state.globals.height;
        let count = height.saturating_add(1).min(ROOT_HISTORY_LEN);
        // `count` is at least 1 and at most `height + 1`: no overflow, even at u64::MAX
        // (a height the fuzzer tried).
        let first = height - (count - 1);
        let consecutive = self.recent_roots.len() as u64 == count
            && self
                .recent_roots
                .iter()
                .zip(first..=height)
                .all(|((h, _), expected)| *h == expected);
        if !consecutive {
            return Err(DecodeError::Invalid(format!(
                "snapshot recent roots must be heights {first} to {height}, one each"
            )));
        }
        Ok(())
    }
}
