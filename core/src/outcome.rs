//! What applying an entry produces: receipts, events, and the reasons to halt.

use crate::crypto::PublicKey;
use crate::hash::Hash32;
use crate::state::{ProposalStatus, Tally};
use crate::tx::VoteChoice;
use crate::types::{AccountId, Amount, ValidatorId};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Why a transaction failed. Identical on every node; never a reason to halt.
///
/// [`TxErrorKind`] names each variant (snake_case, as in the vectors) and can list them all.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    thiserror::Error,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
    strum::EnumDiscriminants,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[strum_discriminants(
    name(TxErrorKind),
    derive(strum::EnumIter, strum::IntoStaticStr),
    strum(serialize_all = "snake_case")
)]
pub enum TxError {
    /// The bytes are not a canonical signed transaction.
    #[error("transaction bytes are malformed or not canonical")]
    Malformed,
    /// Signed for another chain.
    #[error("transaction is for another chain")]
    WrongChainId,
    /// The sender names an account with no registered key.
    #[error("unknown account: register its key with a first transaction")]
    UnknownAccount,
    /// A `Register` sender whose account has a key already.
    #[error("the account's key is registered already; send with the account id")]
    KeyAlreadyRegistered,
    /// The signature does not verify under the sender's key.
    #[error("bad signature")]
    BadSignature,
    /// The nonce was used already.
    #[error("nonce {got} was used already; the account expects {expected}")]
    ReplayedNonce {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The nonce skips ahead.
    #[error("nonce {got} skips ahead; the account expects {expected}")]
    SkippedNonce {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The balance cannot pay the fee; nothing was charged.
    #[error("balance cannot pay the fee")]
    InsufficientFundsForFee,
    /// The balance cannot cover the action.
    #[error("insufficient funds")]
    InsufficientFunds,
    /// Less stake than the unstake asks for.
    #[error("insufficient stake")]
    InsufficientStake,
    /// Amounts must be positive.
    #[error("amount must be positive")]
    ZeroAmount,
    /// Deposit below the minimum.
    #[error("deposit below the minimum of {minimum}")]
    DepositTooLow {
        /// The minimum deposit.
        minimum: Amount,
    },
    /// No such proposal.
    #[error("no such proposal")]
    UnknownProposal,
    /// The proposal is closed.
    #[error("voting on this proposal has ended")]
    VotingClosed,
    /// The proposal could never execute.
    #[error("invalid proposal: {0}")]
    InvalidProposal(ProposalError),
    /// An amount would overflow.
    #[error("amount overflow")]
    Overflow,
}

/// Why a proposal is refused at submission (receipt error `invalid_proposal`) or why a
/// passed proposal did not execute (status `execution_failed`). A code, not a text: it is
/// stored in the state, so every implementation must reach the same bytes.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    thiserror::Error,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ProposalError {
    /// A parameter change with no changes.
    #[error("a parameter change must change something")]
    EmptyChange,
    /// The parameters after the change would break a parameter rule (ratios, periods,
    /// unbonding longer than voting, block size).
    #[error("the parameters after the change would be invalid (ratios must be fractions, periods at least 1 block, unbonding longer than voting, 1 <= max_block_txs <= 10000)")]
    InvalidParameters,
    /// A treasury spend of zero.
    #[error("a treasury spend must be positive")]
    ZeroSpend,
    /// The key to add is a validator already.
    #[error("that key is a validator already")]
    AlreadyValidator,
    /// A base reputation above the maximum.
    #[error("base reputation above 1000000")]
    BaseReputationTooHigh,
    /// The validator to remove or re-rate does not exist.
    #[error("no such validator")]
    UnknownValidator,
    /// The treasury holds less than the spend.
    #[error("the treasury holds less than the spend")]
    TreasuryTooSmall,
    /// Executing it would leave no validator with weight above 0.
    #[error("it would leave no validator with weight")]
    NoValidatorWithWeight,
    /// The key to add is a witness already.
    #[error("that key is a witness already")]
    AlreadyWitness,
    /// The witness to remove does not exist.
    #[error("no such witness")]
    UnknownWitness,
    /// A witness weight of 0 or above 2^32.
    #[error("a witness's weight must be 1 to 4294967296")]
    WitnessWeightOutOfRange,
}

/// Whether a transaction took effect.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// The action took effect.
    Applied,
    /// It did not; see the error (the fee was charged if `fee` is non-zero).
    Failed(TxError),
}

/// The result of one transaction in a block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// The transaction id.
    pub tx_hash: Hash32,
    /// Outcome.
    pub status: TxStatus,
    /// Fee charged.
    pub fee: Amount,
}

/// Something that happened while applying an entry.
///
/// [`EventKind`] names each variant (snake_case, the `event` tag) and can list them all.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
    strum::EnumDiscriminants,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "event")]
#[strum_discriminants(
    name(EventKind),
    derive(strum::EnumIter, strum::IntoStaticStr),
    strum(serialize_all = "snake_case")
)]
pub enum Event {
    /// A first transaction registered an account's key.
    KeyRegistered {
        /// The account.
        account: AccountId,
    },
    /// Tokens moved.
    Transferred {
        /// From.
        from: AccountId,
        /// To.
        to: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Tokens staked.
    Staked {
        /// The account.
        account: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Unbonding started.
    UnstakeStarted {
        /// The account.
        account: AccountId,
        /// How much.
        amount: Amount,
        /// When it becomes spendable.
        release_height: u64,
    },
    /// Unbonded tokens became spendable.
    Unbonded {
        /// The account.
        account: AccountId,
        /// How much.
        amount: Amount,
    },
    /// A proposal was opened.
    ProposalSubmitted {
        /// Its id.
        proposal: u64,
        /// By whom.
        proposer: AccountId,
        /// Last height for votes.
        voting_end_height: u64,
    },
    /// A vote was cast or changed.
    VoteCast {
        /// The proposal.
        proposal: u64,
        /// The voter.
        voter: AccountId,
        /// The choice.
        choice: VoteChoice,
    },
    /// A proposal was tallied.
    ProposalTallied {
        /// The proposal.
        proposal: u64,
        /// Its new status.
        status: ProposalStatus,
        /// The counts.
        tally: Tally,
    },
    /// A deposit went back to its proposer.
    DepositRefunded {
        /// The proposal.
        proposal: u64,
        /// The proposer.
        to: AccountId,
        /// How much.
        amount: Amount,
    },
    /// A vetoed proposal's deposit went to the treasury.
    DepositForfeited {
        /// The proposal.
        proposal: u64,
        /// How much.
        amount: Amount,
    },
    /// The treasury paid out.
    TreasurySpent {
        /// The recipient.
        to: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Parameters changed.
    ParamsChanged,
    /// A validator joined.
    ValidatorAdded {
        /// The validator.
        validator: ValidatorId,
    },
    /// A validator left.
    ValidatorRemoved {
        /// The validator.
        validator: ValidatorId,
    },
    /// A validator's base reputation changed.
    ReputationSet {
        /// The validator.
        validator: ValidatorId,
        /// The new base.
        base_reputation: u64,
    },
    /// The block's proposer was rewarded.
    ProposerRewarded {
        /// The validator.
        validator: ValidatorId,
        /// Tokens minted to its account.
        amount: Amount,
    },
    /// An epoch ended: earned reputation decayed and weights were derived again.
    EpochEnded {
        /// The epoch number (height / epoch_blocks).
        epoch: u64,
    },
    /// A certificate in the block certified a height.
    Certified {
        /// The certified height.
        height: u64,
        /// How many validators signed.
        signers: u32,
    },
    /// The target consensus configuration changed.
    ConfigChanged,
    /// A witness joined.
    WitnessAdded {
        /// The witness.
        witness: ValidatorId,
    },
    /// A witness left.
    WitnessRemoved {
        /// The witness.
        witness: ValidatorId,
    },
}

/// One member of the consensus configuration the ledger wants.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigMember {
    /// The validator.
    pub validator: ValidatorId,
    /// Its consensus weight (0: learner).
    pub weight: u64,
    /// Its validator key.
    pub public_key: PublicKey,
    /// Its network identity.
    #[serde(with = "crate::block::hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub peer: Vec<u8>,
}

/// The consensus configuration the committed state asks for, in validator-id order.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetConfig {
    /// Members in validator-id order.
    pub members: Vec<ConfigMember>,
    /// Witnesses in id order: they vote and keep the log, never lead, do not execute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<ConfigMember>,
}

/// Who sent one transaction of a block and how many events it emitted.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TxTrace {
    /// The sender; none when the transaction does not decode.
    pub sender: Option<AccountId>,
    /// How many events it emitted (they follow the previous transaction's).
    pub events: u32,
}

impl Outcome {
    /// The events transaction `position` emitted, or none if there is no such transaction.
    pub fn tx_events(&self, position: usize) -> Option<&[Event]> {
        tx_events(&self.traces, &self.events, position)
    }
}

/// The slice of `events` that transaction `position` emitted, given every transaction's
/// trace; none if `position` is out of range or the traces do not fit the events.
pub fn tx_events<'a>(
    traces: &[TxTrace],
    events: &'a [Event],
    position: usize,
) -> Option<&'a [Event]> {
    let start: usize = traces
        .get(..position)?
        .iter()
        .map(|t| t.events as usize)
        .sum();
    let count = traces.get(position)?.events as usize;
    events.get(start..start.checked_add(count)?)
}

/// What applying one entry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The height reached.
    pub height: u64,
    /// The state root at that height.
    pub state_root: Hash32,
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// Events in the order they happened: each transaction's, in block order, then the
    /// height's own (proposer reward, unbonding, tallies, epoch, configuration).
    pub events: Vec<Event>,
    /// One per receipt: who sent the transaction and how many of `events` it emitted.
    /// For lookups and streams; no root covers it.
    pub traces: Vec<TxTrace>,
    /// The new target configuration, if it changed.
    pub config_changed: Option<TargetConfig>,
}

/// Why this node must stop applying: continuing would mean trusting a state it cannot
/// vouch for. Never caused by a bad transaction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Halt {
    /// Entries must arrive in index order without gaps.
    #[error("entry index {got} does not follow height {height}; entries must be applied in order")]
    OutOfOrder {
        /// This ledger's height.
        height: u64,
        /// The entry's index.
        got: u64,
    },
    /// The entry's block does not decode.
    #[error("corrupt block at index {index}: {reason}")]
    CorruptBlock {
        /// The entry index.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The block does not fit its place in the chain.
    #[error("block at index {index} is invalid: {reason}")]
    InvalidBlock {
        /// The entry index.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The proposer's state root differs from ours: the replicas disagree.
    #[error("state divergence at height {height}: the proposer's root is {theirs}, ours is {ours}; stop this node and restore it from a snapshot of a healthy peer")]
    StateDivergence {
        /// The height compared.
        height: u64,
        /// Our root.
        ours: Hash32,
        /// The proposer's root.
        theirs: Hash32,
    },
    /// A certificate the block carries is not valid.
    #[error("block at index {index} carries an invalid certificate for height {height}: {fault}")]
    InvalidCertificate {
        /// The entry index.
        index: u64,
        /// The height the certificate claims to certify.
        height: u64,
        /// What is wrong.
        fault: crate::certificate::CertificateFault,
    },
    /// A prepared entry was applied to another ledger or position than it was made for.
    #[error("prepared entry for index {prepared} applied at height {height}")]
    PreparedMismatch {
        /// The entry's index.
        prepared: u64,
        /// This ledger's height.
        height: u64,
    },
}

impl Halt {
    /// A stable code for the halt's kind (vectors name refusals by it):
    /// `out_of_order`, `corrupt_block`, `invalid_block`, `state_divergence`,
    /// `prepared_mismatch`, or `invalid_certificate/<fault>`.
    pub fn code(&self) -> String {
        match self {
            Halt::OutOfOrder { .. } => "out_of_order".into(),
            Halt::CorruptBlock { .. } => "corrupt_block".into(),
            Halt::InvalidBlock { .. } => "invalid_block".into(),
            Halt::StateDivergence { .. } => "state_divergence".into(),
            Halt::InvalidCertificate { fault, .. } => {
                format!("invalid_certificate/{}", <&'static str>::from(fault))
            }
            Halt::PreparedMismatch { .. } => "prepared_mismatch".into(),
        }
    }
}
