//! # agora-api
//!
//! The HTTP/JSON API of an Agora node, as types. The node serializes these, the `agora`
//! CLI and the tests deserialize them: one definition, so a field renamed on one side is a
//! compile error on the other, not a silent `null`.
//!
//! Every error body is [`ErrorBody`] (`{"code", "message"}`) with a stable code; a 503
//! carries `Retry-After`.

#![forbid(unsafe_code)]

use agora_core::block::{Block, BlockHeader};
use agora_core::certificate::Certificate;
use agora_core::outcome::{Event, Receipt, TxTrace};
use agora_core::state::{Decision, Globals, Proposal, Tally};
use agora_core::state_tree::StateProof;
use agora_core::tx::VoteChoice;
use agora_core::{AccountId, Amount, Hash32, Params, PublicKey, Ratio, StateKey};
use serde::{Deserialize, Serialize};

pub mod stream;

/// A failure, as the node reports it: an HTTP status, a stable code and a message that
/// says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// 503: try again shortly (the API adds `Retry-After`).
    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "unavailable", message)
    }

    /// 404 with the code `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.clone(),
            message: self.message.clone(),
        }
    }
}

/// The body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

/// The height and state root an answer was read at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct At {
    /// The ledger height.
    pub height: u64,
    /// The state root at that height.
    pub state_root: Hash32,
}

/// Where a submitted transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmitStatus {
    /// Checked and queued (or forwarded to the leader); not yet committed.
    Accepted,
    /// Committed, with its receipt.
    Committed,
}

/// `POST /v1/tx`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct SubmitResponse {
    /// The transaction's hash.
    pub tx_hash: Hash32,
    /// Accepted, or (with `?wait=commit`) committed.
    pub status: SubmitStatus,
    /// The height it committed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Its receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// The most transactions one `POST /v1/txs` may carry.
pub const MAX_BATCH_TXS: usize = 128;

/// `POST /v1/txs`: several signed transactions, each the hex of its canonical bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct SubmitBatchRequest {
    /// At most [`MAX_BATCH_TXS`].
    pub txs: Vec<String>,
}

/// One transaction's answer in a batch: what `POST /v1/tx` would have answered for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchItem {
    /// Accepted (or, with `?wait=commit`, committed).
    Submitted(SubmitResponse),
    /// Refused, with the status, code and message a single submission would get.
    Failed {
        /// HTTP status a single submission would have had.
        status: u16,
        /// Stable code.
        code: String,
        /// What happened and what to do.
        message: String,
    },
}

impl From<Result<SubmitResponse, ApiError>> for BatchItem {
    fn from(result: Result<SubmitResponse, ApiError>) -> BatchItem {
        match result {
            Ok(response) => BatchItem::Submitted(response),
            Err(error) => BatchItem::Failed {
                status: error.status,
                code: error.code,
                message: error.message,
            },
        }
    }
}

/// The answer to `POST /v1/txs`: one item per transaction, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct SubmitBatchResponse {
    /// In the order of the request.
    pub results: Vec<BatchItem>,
}

/// `GET /v1/accounts/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct AccountResponse {
    /// The account.
    pub account: AccountId,
    /// Spendable tokens.
    pub balance: Amount,
    /// Staked tokens.
    pub staked: Amount,
    /// Tokens unbonding.
    pub unbonding: Amount,
    /// The nonce its next transaction must carry.
    pub nonce: u64,
    /// Whether its key is registered (later transactions name the account, not the key).
    pub key_registered: bool,
    /// Read at.
    pub at: At,
}

/// One validator in `GET /v1/validators`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ValidatorInfo {
    /// Its id (the account id of its key).
    pub validator: AccountId,
    /// Its reputation weight as the ledger stores it.
    pub weight: u64,
    /// Its weight in the Raft configuration (capped); none while it has no vote.
    pub consensus_weight: Option<u64>,
    /// Governance-set base reputation.
    pub base_reputation: u64,
    /// Blocks it proposed that committed.
    pub blocks_proposed: u64,
    /// Its libp2p peer id, hex.
    pub peer: String,
    /// Its ML-DSA public key.
    pub public_key: PublicKey,
}

/// `GET /v1/validators`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ValidatorsResponse {
    /// Every validator, by id.
    pub validators: Vec<ValidatorInfo>,
    /// Read at.
    pub at: At,
}

/// One validator's weights at a [`WeightPoint`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ValidatorWeight {
    /// The validator.
    pub validator: AccountId,
    /// Its reputation weight as the ledger stores it.
    pub weight: u64,
    /// Its weight in the Raft configuration (capped); none while it has no vote.
    pub consensus_weight: Option<u64>,
}

/// Every validator's weights when an epoch ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct WeightPoint {
    /// The height whose application ended the epoch.
    pub height: u64,
    /// The epoch that ended.
    pub epoch: u64,
    /// By validator id.
    pub weights: Vec<ValidatorWeight>,
}

/// `GET /v1/validators/history`: the weights at the last epochs this node applied (at
/// most [`WEIGHT_HISTORY_EPOCHS`], oldest first; kept in memory, so it starts again when
/// the node restarts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct WeightHistoryResponse {
    /// Oldest first.
    pub points: Vec<WeightPoint>,
    /// Read at.
    pub at: At,
}

/// Epochs of weights a node remembers for `GET /v1/validators/history`.
pub const WEIGHT_HISTORY_EPOCHS: usize = 64;

/// `GET /v1/proposals`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ProposalsResponse {
    /// Newest first.
    pub proposals: Vec<Proposal>,
    /// Read at.
    pub at: At,
}

/// One vote in `GET /v1/proposals/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct VoteInfo {
    /// The voter.
    pub voter: AccountId,
    /// Its latest choice.
    pub choice: VoteChoice,
    /// The stake it carried at the tally (none before the tally).
    pub weight: Option<Amount>,
    /// The voter's stake now.
    pub current_stake: Amount,
}

/// The tally if it were taken now, and what it would decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct RunningTally {
    /// The tally.
    pub tally: Tally,
    /// Its decision.
    pub decision: Decision,
}

/// The thresholds a tally is measured against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct TallyParams {
    /// Share of the stake that must vote.
    pub quorum: Ratio,
    /// Share of the decisive votes that must be yes.
    pub threshold: Ratio,
    /// Share of the decisive votes that vetoes.
    pub veto_threshold: Ratio,
}

/// `GET /v1/proposals/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ProposalResponse {
    /// The proposal.
    pub proposal: Proposal,
    /// Its votes, by stake.
    pub votes: Vec<VoteInfo>,
    /// While voting is open: the running tally.
    pub running: Option<RunningTally>,
    /// Blocks until voting closes.
    pub blocks_left: u64,
    /// The thresholds.
    pub params: TallyParams,
    /// All stake now.
    pub total_staked: Amount,
    /// Read at.
    pub at: At,
}

/// `GET /v1/chain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ChainResponse {
    /// The chain id (the genesis hash).
    pub chain_id: Hash32,
    /// The parameters in force.
    pub params: Params,
    /// Chain-wide counters.
    pub globals: Globals,
    /// Read at.
    pub at: At,
}

/// `GET /v1/proof?key=K[&height=H]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ProofResponse {
    /// The key's canonical bytes, hex.
    pub key: String,
    /// The value's canonical bytes, hex.
    pub value: String,
    /// The Merkle proof of the value under `at.state_root`.
    pub proof: StateProof,
    /// Proved at.
    pub at: At,
}

impl ProofResponse {
    /// The key's and the value's bytes.
    pub fn decode(&self) -> Result<(Vec<u8>, Vec<u8>), hex::FromHexError> {
        Ok((hex::decode(&self.key)?, hex::decode(&self.value)?))
    }
}

/// One certified height: the state root after it and the certificate a later block
/// carried for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct CertifiedHeight {
    /// The certified height.
    pub height: u64,
    /// The state root after it: what the certificate's signers signed.
    pub state_root: Hash32,
    /// The validators' signatures over `(chain_id, height, state_root)`.
    pub certificate: Certificate,
    /// The height of the block that carries the certificate.
    pub carried_in: u64,
    /// The header of the block at `height` (none for a no-op or configuration entry): the
    /// certified root's `Globals` leaf holds its hash as `last_block_hash`, so a client
    /// that accepted the root can check the header against it.
    #[serde(default)]
    pub header: Option<BlockHeader>,
}

/// Most certified heights one `GET /v1/certificates` answers.
pub const MAX_CERTIFIED_PER_ANSWER: u64 = 64;

/// `GET /v1/certificates?from=H&limit=N`: certified heights from `H` up, in order; without
/// `from`, the newest one. A light client checks them itself (`agora proof --trustless`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct CertificatesResponse {
    /// The chain the node serves.
    pub chain_id: Hash32,
    /// Certified heights in increasing order (at most [`MAX_CERTIFIED_PER_ANSWER`]).
    pub certified: Vec<CertifiedHeight>,
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    /// Follows a leader.
    Follower,
    /// Asking for pre-votes.
    Precandidate,
    /// Asking for votes.
    Candidate,
    /// Leads.
    Leader,
}

/// A Raft member's weight, in `GET /v1/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct MemberWeight {
    /// The member.
    pub node: AccountId,
    /// Its consensus weight (0: learner).
    pub weight: u64,
}

/// One zone of a node, in `GET /v1/zones`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ZoneEntry {
    /// Its name (its genesis's chain name): its routes are `/v1/zones/<name>/…`.
    pub name: String,
    /// Its chain id.
    pub chain_id: Hash32,
    /// Why it halted on this node, if it did (its other zones still serve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
}

/// `GET /v1/zones`: the zones a node serves; the first is the one its unprefixed routes
/// serve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ZonesResponse {
    /// The zones, the node's first zone first, then by name.
    pub zones: Vec<ZoneEntry>,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct StatusResponse {
    /// This node.
    pub node: AccountId,
    /// Its role.
    pub role: RoleName,
    /// Its term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<AccountId>,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Highest index applied.
    pub applied_index: u64,
    /// How far the cluster has committed as far as this node knows (its own commit index
    /// when it leads; else what its leader has told it).
    #[serde(default)]
    pub leader_commit_index: u64,
    /// Last index in its log.
    pub last_index: u64,
    /// Ledger height.
    pub height: u64,
    /// State root at that height.
    pub state_root: Hash32,
    /// The chain.
    pub chain_id: Hash32,
    /// Transactions waiting for a block.
    pub mempool: u64,
    /// The incoming Raft configuration.
    pub membership: Vec<MemberWeight>,
    /// Whether a joint configuration is in force.
    pub joint: bool,
    /// Replay mode (vectors through a live cluster).
    pub replay: bool,
    /// Rejoining after lost state: it follows the leader but votes only under the rejoin
    /// rule until every member has answered and its log holds everything committed.
    #[serde(default)]
    pub rejoining: bool,
    /// The newest height a commit certificate on chain certifies (validators holding a
    /// weighted majority signed its state root).
    #[serde(default)]
    pub certified_height: u64,
    /// A witness: it keeps the log and votes, never leads, does not execute the ledger
    /// (its `height` and `state_root` stay at the genesis) and serves no reads.
    #[serde(default)]
    pub witness: bool,
}

/// A node more than this many entries behind its leader's commit is catching up, not
/// ready.
pub const CATCH_UP_BOUND: u64 = 32;

impl StatusResponse {
    /// Ready: a leader is known, everything known committed is applied, and that is
    /// within [`CATCH_UP_BOUND`] entries of the leader's commit.
    pub fn is_ready(&self) -> bool {
        self.not_ready().is_none()
    }

    /// Why the node is not ready, if it is not.
    pub fn not_ready(&self) -> Option<String> {
        if self.rejoining {
            return Some(
                "rejoining after lost state: waiting to hear from every member and to hold everything committed"
                    .into(),
            );
        }
        if self.leader.is_none() {
            return Some("no leader known yet".into());
        }
        if self.applied_index < self.commit_index {
            return Some(format!(
                "applying the log: {} of {} committed entries applied",
                self.applied_index, self.commit_index
            ));
        }
        let behind = self.leader_commit_index.saturating_sub(self.applied_index);
        (behind > CATCH_UP_BOUND).then(|| {
            format!(
                "catching up: applied {} of the leader's {} committed entries ({behind} behind, ready within {CATCH_UP_BOUND})",
                self.applied_index, self.leader_commit_index
            )
        })
    }
}

/// `GET /v1/blocks/{height}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct BlockResponse {
    /// The height.
    pub height: u64,
    /// The block; none for a no-op or configuration entry.
    pub block: Option<Block>,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// Its events, in order: each transaction's, then the height's own. Empty for heights
    /// a node archived before it recorded events (schema 5).
    #[serde(default)]
    pub events: Vec<Event>,
    /// One per receipt: the sender and how many of `events` the transaction emitted.
    #[serde(default)]
    pub traces: Vec<TxTrace>,
    /// The state root after it.
    pub state_root: Hash32,
}

/// `GET /v1/txs/{hash}`: where a transaction stands on the node asked. A hash the node
/// does not know answers 404 `unknown_tx`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxResponse {
    /// Accepted and not yet applied: queued, in a block in flight, or forwarded.
    Pending {
        /// The transaction id.
        hash: Hash32,
    },
    /// In a committed block.
    Committed(Box<CommittedTx>),
}

/// A committed transaction, from the block archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct CommittedTx {
    /// The transaction id.
    pub hash: Hash32,
    /// The height of its block.
    pub height: u64,
    /// Its place in the block.
    pub position: u32,
    /// Its sender; none when it does not decode.
    pub sender: Option<AccountId>,
    /// Its receipt (applied or failed, and the fee).
    pub receipt: Receipt,
    /// The events it emitted. Empty for heights archived before schema 5.
    pub events: Vec<Event>,
    /// The state root after its block.
    pub state_root: Hash32,
}

/// `POST /v1/replay` (replay nodes only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ReplayResponse {
    /// The entry's index.
    pub index: u64,
    /// The state root after it.
    pub state_root: Hash32,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// Its events.
    pub events: Vec<Event>,
}

/// How a read is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Confirmed with the leader (ReadIndex): reflects every write acknowledged before it.
    Linearizable,
    /// This replica's state, unconfirmed (may be stale).
    Local,
}

/// `?consistency=` as the API takes it.
pub fn parse_consistency(text: Option<&str>) -> Result<Consistency, ApiError> {
    match text {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("local") => Ok(Consistency::Local),
        Some(other) => Err(ApiError::new(
            400,
            "bad_parameter",
            format!("consistency={other}: use 'linearizable' (default) or 'local'"),
        )),
    }
}

/// An account id as the API takes it (64 hex digits).
pub fn parse_account(text: &str) -> Result<AccountId, ApiError> {
    Hash32::from_hex(text)
        .map(AccountId)
        .map_err(|e| ApiError::new(400, "bad_account_id", format!("{text}: {e}")))
}

/// A transaction id as the API takes it: 64 hex digits.
pub fn parse_tx_hash(text: &str) -> Result<Hash32, ApiError> {
    Hash32::from_hex(text).map_err(|e| {
        ApiError::new(
            400,
            "bad_tx_hash",
            format!("{text}: {e}; a transaction id is 64 hex digits"),
        )
    })
}

/// A state key as the API takes it: `globals`, `params`, `account:<hex>`,
/// `account_key:<hex>`, `validator:<hex>`, `proposal:<id>`, `vote:<id>:<hex>`,
/// `committee` or `witness:<hex>`.
pub fn parse_state_key(text: &str) -> Result<StateKey, ApiError> {
    let bad = || {
        ApiError::new(400, "bad_key", format!("{text}: expected globals, params, account:<id>, account_key:<id>, validator:<id>, proposal:<n>, vote:<n>:<id>, committee or witness:<id>"))
    };
    let parts: Vec<&str> = text.split(':').collect();
    let number = |s: &str| s.parse::<u64>().map_err(|_| bad());
    match parts.as_slice() {
        ["globals"] => Ok(StateKey::Globals),
        ["params"] => Ok(StateKey::Params),
        ["account", id] => Ok(StateKey::Account(parse_account(id)?)),
        ["account_key", id] => Ok(StateKey::AccountKey(parse_account(id)?)),
        ["validator", id] => Ok(StateKey::Validator(parse_account(id)?)),
        ["proposal", n] => Ok(StateKey::Proposal(number(n)?)),
        ["vote", n, id] => Ok(StateKey::Vote(number(n)?, parse_account(id)?)),
        ["committee"] => Ok(StateKey::Committee),
        ["witness", id] => Ok(StateKey::Witness(parse_account(id)?)),
        _ => Err(bad()),
    }
}

/// The text form [`parse_state_key`] reads, for every key it reads; `None` for keys it has
/// no form for (unbonding entries).
pub fn state_key_text(key: &StateKey) -> Option<String> {
    Some(match key {
        StateKey::Globals => "globals".into(),
        StateKey::Params => "params".into(),
        StateKey::Account(id) => format!("account:{id}"),
        StateKey::AccountKey(id) => format!("account_key:{id}"),
        StateKey::Validator(id) => format!("validator:{id}"),
        StateKey::Proposal(n) => format!("proposal:{n}"),
        StateKey::Vote(n, id) => format!("vote:{n}:{id}"),
        StateKey::Committee => "committee".into(),
        StateKey::Witness(id) => format!("witness:{id}"),
        StateKey::Unbonding(..) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented key form parses, and nothing else does.
    #[test]
    fn state_keys_parse_strictly() {
        let id = "ab".repeat(32);
        for good in [
            "globals".to_string(),
            "params".into(),
            format!("account:{id}"),
            format!("account_key:{id}"),
            format!("validator:{id}"),
            "proposal:7".into(),
            format!("vote:7:{id}"),
            "committee".into(),
            format!("witness:{id}"),
        ] {
            let key = parse_state_key(&good).unwrap();
            assert_eq!(state_key_text(&key).as_deref(), Some(good.as_str()));
        }
        for bad in [
            "",
            "account",
            "proposal:-1",
            "vote:1",
            "globals:1",
            "committee:1",
        ] {
            assert_eq!(parse_state_key(bad).unwrap_err().code, "bad_key", "{bad}");
        }
        let error = parse_state_key("account:zz").unwrap_err();
        assert_eq!((error.status, error.code.as_str()), (400, "bad_account_id"));
    }

    /// A submit answer without a receipt omits the fields rather than writing nulls, and
    /// reads back equal.
    #[test]
    fn submit_response_round_trips() {
        let accepted = SubmitResponse {
            tx_hash: Hash32([3; 32]),
            status: SubmitStatus::Accepted,
            height: None,
            receipt: None,
        };
        let text = serde_json::to_string(&accepted).unwrap();
        assert!(!text.contains("receipt"), "{text}");
        assert_eq!(
            serde_json::from_str::<SubmitResponse>(&text).unwrap(),
            accepted
        );
    }
}
