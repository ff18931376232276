//! `GET /v1/events`: the node's event stream (Server-Sent Events), as types.
//!
//! Each SSE message has an `event:` field naming its [`StreamKind`] and a JSON `data:`
//! line. Messages that come from a committed height carry `id: <height>`; a client resumes
//! with `?from=<height>` or the `Last-Event-ID` header (the stream restarts after that
//! height). The node ends a stream with one `closed` message ([`ClosedMessage`]) saying
//! why and where to resume.

use crate::{ApiError, RoleName};
use agora_core::outcome::{Event, Receipt, TxTrace};
use agora_core::{AccountId, Hash32};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What a stream message is about (its SSE `event:` name).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// A height was applied: [`CommitMessage`].
    Commit,
    /// The node's role or the leader it knows changed: [`LeaderMessage`].
    Leader,
    /// A proposal was submitted, voted on, tallied or paid out: [`ChangeMessage`].
    Proposal,
    /// The validator set, a reputation or the consensus configuration changed:
    /// [`ChangeMessage`].
    Validators,
    /// The node ended the stream: [`ClosedMessage`].
    Closed,
}

impl StreamKind {
    /// Every kind a client may ask for (`closed` always comes).
    pub const SUBSCRIBABLE: [StreamKind; 4] = [
        StreamKind::Commit,
        StreamKind::Leader,
        StreamKind::Proposal,
        StreamKind::Validators,
    ];

    /// The SSE event name.
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Commit => "commit",
            StreamKind::Leader => "leader",
            StreamKind::Proposal => "proposal",
            StreamKind::Validators => "validators",
            StreamKind::Closed => "closed",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<StreamKind> {
        StreamKind::SUBSCRIBABLE
            .into_iter()
            .chain([StreamKind::Closed])
            .find(|kind| kind.name() == name)
    }
}

/// `event: commit`: what applying a height did (`id` is the height).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct CommitMessage {
    /// The height.
    pub height: u64,
    /// The state root after it.
    pub state_root: Hash32,
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// Its events, in order.
    pub events: Vec<Event>,
    /// One per receipt: sender and event count.
    pub traces: Vec<TxTrace>,
}

/// `event: leader`: this node's role, term or known leader changed (no `id`: not part of
/// any height, not replayed on resume).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct LeaderMessage {
    /// The node that sends the stream.
    pub node: AccountId,
    /// Its role now.
    pub role: RoleName,
    /// Its term.
    pub term: u64,
    /// The leader it knows.
    pub leader: Option<AccountId>,
}

/// `event: proposal` or `event: validators`: one event of a committed height (`id` is
/// the height).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ChangeMessage {
    /// The height.
    pub height: u64,
    /// The event.
    pub event: Event,
}

/// `event: closed`: the node ended the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, Deserialize)]
pub struct ClosedMessage {
    /// Why.
    pub reason: String,
    /// The height to resume from (`?from=`): the first this client has not been sent.
    pub resume_from: u64,
}

/// One message, rendered once and sent to every subscriber it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamMessage {
    /// Its kind.
    pub kind: StreamKind,
    /// The height it belongs to, if any (the SSE `id`).
    pub height: Option<u64>,
    /// The JSON data.
    pub data: String,
    /// The accounts it concerns (senders and accounts its events name), for `?account=`.
    pub accounts: BTreeSet<AccountId>,
}

/// The accounts `event` names.
pub fn event_accounts(event: &Event) -> Vec<AccountId> {
    match event {
        Event::KeyRegistered { account }
        | Event::Staked { account, .. }
        | Event::UnstakeStarted { account, .. }
        | Event::Unbonded { account, .. } => vec![*account],
        Event::Transferred { from, to, .. } => vec![*from, *to],
        Event::ProposalSubmitted { proposer, .. } => vec![*proposer],
        Event::VoteCast { voter, .. } => vec![*voter],
        Event::DepositRefunded { to, .. } | Event::TreasurySpent { to, .. } => vec![*to],
        Event::ValidatorAdded { validator }
        | Event::ValidatorRemoved { validator }
        | Event::ReputationSet { validator, .. }
        | Event::ProposerRewarded { validator, .. }
        | Event::WitnessAdded { witness: validator }
        | Event::WitnessRemoved { witness: validator } => vec![*validator],
        Event::ProposalTallied { .. }
        | Event::DepositForfeited { .. }
        | Event::ParamsChanged
        | Event::EpochEnded { .. }
        | Event::Certified { .. }
        | Event::ConfigChanged => Vec::new(),
    }
}

/// The stream kind an event of a height also goes out as, beyond its commit.
pub fn event_kind(event: &Event) -> Option<StreamKind> {
    match event {
        Event::ProposalSubmitted { .. }
        | Event::VoteCast { .. }
        | Event::ProposalTallied { .. }
        | Event::DepositRefunded { .. }
        | Event::DepositForfeited { .. }
        | Event::TreasurySpent { .. }
        | Event::ParamsChanged => Some(StreamKind::Proposal),
        Event::ValidatorAdded { .. }
        | Event::ValidatorRemoved { .. }
        | Event::ReputationSet { .. }
        | Event::WitnessAdded { .. }
        | Event::WitnessRemoved { .. }
        | Event::ConfigChanged => Some(StreamKind::Validators),
        Event::KeyRegistered { .. }
        | Event::Transferred { .. }
        | Event::Staked { .. }
        | Event::UnstakeStarted { .. }
        | Event::Unbonded { .. }
        | Event::ProposerRewarded { .. }
        | Event::Certified { .. }
        | Event::EpochEnded { .. } => None,
    }
}

/// The messages one committed height produces, in the order they are sent: the commit,
/// then one per proposal or validator event, in event order.
pub fn height_messages(commit: &CommitMessage) -> Vec<StreamMessage> {
    let mut accounts: BTreeSet<AccountId> = commit.traces.iter().filter_map(|t| t.sender).collect();
    accounts.extend(commit.events.iter().flat_map(event_accounts));
    let mut out = vec![StreamMessage {
        kind: StreamKind::Commit,
        height: Some(commit.height),
        data: json(commit),
        accounts,
    }];
    for event in &commit.events {
        if let Some(kind) = event_kind(event) {
            let change = ChangeMessage {
                height: commit.height,
                event: event.clone(),
            };
            out.push(StreamMessage {
                kind,
                height: Some(commit.height),
                data: json(&change),
                accounts: event_accounts(event).into_iter().collect(),
            });
        }
    }
    out
}

/// The message for a role or leader change.
pub fn leader_message(message: &LeaderMessage) -> StreamMessage {
    StreamMessage {
        kind: StreamKind::Leader,
        height: None,
        data: json(message),
        accounts: message.leader.into_iter().collect(),
    }
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("stream messages serialize")
}

/// What a subscriber asked for: `?kind=commit,proposal` (default: every kind) and
/// `?account=<id>` (default: every account; leader messages always pass).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFilter {
    /// The kinds wanted.
    pub kinds: BTreeSet<StreamKind>,
    /// The account, if any.
    pub account: Option<AccountId>,
}

impl StreamFilter {
    /// Parses the query parameters.
    pub fn parse(kinds: Option<&str>, account: Option<&str>) -> Result<StreamFilter, ApiError> {
        let kinds = match kinds {
            None | Some("") => StreamKind::SUBSCRIBABLE.into_iter().collect(),
            Some(list) => list
                .split(',')
                .map(|name| {
                    StreamKind::parse(name.trim())
                        .filter(|kind| *kind != StreamKind::Closed)
                        .ok_or_else(|| {
                            ApiError::new(
                                400,
                                "bad_kind",
                                format!(
                                    "{name}: the stream's kinds are commit, leader, proposal and validators"
                                ),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let account = account.map(crate::parse_account).transpose()?;
        Ok(StreamFilter { kinds, account })
    }

    /// Whether `message` goes to this subscriber.
    pub fn admits(&self, message: &StreamMessage) -> bool {
        self.kinds.contains(&message.kind)
            && (message.kind == StreamKind::Leader
                || self
                    .account
                    .is_none_or(|account| message.accounts.contains(&account)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::outcome::TxStatus;
    use agora_core::Amount;

    fn account(tag: u8) -> AccountId {
        AccountId(Hash32([tag; 32]))
    }

    fn commit() -> CommitMessage {
        CommitMessage {
            height: 9,
            state_root: Hash32([1; 32]),
            receipts: vec![Receipt {
                tx_hash: Hash32([2; 32]),
                status: TxStatus::Applied,
                fee: Amount(1),
            }],
            events: vec![
                Event::VoteCast {
                    proposal: 4,
                    voter: account(5),
                    choice: agora_core::tx::VoteChoice::Yes,
                },
                Event::ConfigChanged,
                Event::ProposerRewarded {
                    validator: account(6),
                    amount: Amount(3),
                },
            ],
            traces: vec![TxTrace {
                sender: Some(account(5)),
                events: 1,
            }],
        }
    }

    #[test]
    fn a_height_becomes_its_commit_then_one_message_per_proposal_or_validator_event() {
        let messages = height_messages(&commit());
        let kinds: Vec<StreamKind> = messages.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                StreamKind::Commit,
                StreamKind::Proposal,
                StreamKind::Validators
            ]
        );
        assert!(messages.iter().all(|m| m.height == Some(9)));
        let parsed: CommitMessage = serde_json::from_str(&messages[0].data).unwrap();
        assert_eq!(parsed, commit());
        let vote: ChangeMessage = serde_json::from_str(&messages[1].data).unwrap();
        assert_eq!(vote.event, commit().events[0]);
        assert_eq!(
            messages[0].accounts,
            [account(5), account(6)].into_iter().collect()
        );
    }

    #[test]
    fn a_filter_passes_the_kinds_and_the_account_asked_for() {
        let messages = height_messages(&commit());
        let leader = leader_message(&LeaderMessage {
            node: account(7),
            role: RoleName::Follower,
            term: 3,
            leader: Some(account(8)),
        });
        let all = StreamFilter::parse(None, None).unwrap();
        assert!(messages.iter().chain([&leader]).all(|m| all.admits(m)));
        let proposals = StreamFilter::parse(Some("proposal"), None).unwrap();
        let passed: Vec<StreamKind> = messages
            .iter()
            .chain([&leader])
            .filter(|m| proposals.admits(m))
            .map(|m| m.kind)
            .collect();
        assert_eq!(passed, [StreamKind::Proposal]);
        let voter = StreamFilter::parse(
            Some("commit,leader,proposal"),
            Some(&account(5).to_string()),
        )
        .unwrap();
        assert!(voter.admits(&messages[0]) && voter.admits(&messages[1]) && voter.admits(&leader));
        let stranger = StreamFilter::parse(None, Some(&account(9).to_string())).unwrap();
        let passed: Vec<StreamKind> = messages
            .iter()
            .chain([&leader])
            .filter(|m| stranger.admits(m))
            .map(|m| m.kind)
            .collect();
        assert_eq!(
            passed,
            [StreamKind::Leader],
            "leader changes concern everyone"
        );
        for bad in ["closed", "blocks", "commit,"] {
            let error = StreamFilter::parse(Some(bad), None).unwrap_err();
            assert_eq!(error.code, "bad_kind", "{bad}");
        }
        assert_eq!(
            StreamFilter::parse(None, Some("xyz")).unwrap_err().code,
            "bad_account_id"
        );
    }
}
