//! Messages between Raft nodes. Votes and vote requests are signed (see [`crate::raft::crypto`]).

use crate::raft::types::{Index, LogEntry, NodeId, SnapshotMeta, Term};
use borsh::{BorshDeserialize, BorshSerialize};

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum MessageBody {
    /// "Would you vote for me in `term`?" (the message term is the candidate's next term;
    /// nobody changes term for it).
    PreVote {
        /// The candidate's last log index.
        last_index: Index,
        /// The candidate's last log term.
        last_term: Term,
    },
    /// Answer to a pre-vote.
    PreVoteResponse {
        /// Whether it would vote.
        granted: bool,
    },
    /// RequestVote RPC (§5.2).
    RequestVote {
        /// The candidate's last log index.
        last_index: Index,
        /// The candidate's last log term.
        last_term: Term,
        /// Sent because the leader handed over; voters ignore their leader lease.
        transfer: bool,
    },
    /// Answer to a vote request.
    RequestVoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// AppendEntries RPC (§5.3).
    AppendEntries {
        /// Index of the entry before `entries`.
        prev_index: Index,
        /// Its term.
        prev_term: Term,
        /// Entries to append (may be empty).
        entries: Vec<LogEntry>,
        /// The leader's commit index.
        commit: Index,
    },
    /// Answer to AppendEntries.
    AppendEntriesResponse {
        /// Whether the entries were accepted.
        success: bool,
        /// On success, the last index now known to match the leader; on rejection, the
        /// `prev_index` that did not match.
        match_index: Index,
        /// On rejection, where the follower's log could match: the first index of the
        /// conflicting term, or one past its last entry.
        conflict_index: Index,
        /// On rejection, the term of the follower's entry at `prev_index`, if it has one.
        conflict_term: Option<Term>,
        /// The answering process's boot id (drawn at start): tells the leader that a
        /// rejection comes from a process other than the one that acknowledged its match,
        /// so it is news, not a reordered old answer.
        boot: u64,
    },
    /// Leader heartbeat; `read_seq` confirms leadership for pending ReadIndex requests.
    Heartbeat {
        /// The commit index, capped at what the follower is known to match.
        commit: Index,
        /// The newest read-confirmation round.
        read_seq: u64,
    },
    /// Answer to a heartbeat.
    HeartbeatResponse {
        /// The round answered.
        read_seq: u64,
    },
    /// One chunk of a snapshot.
    InstallSnapshot {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// Byte offset of `chunk`.
        offset: u64,
        /// Total snapshot size.
        total_bytes: u64,
        /// The bytes.
        chunk: Vec<u8>,
    },
    /// Answer to a snapshot chunk.
    InstallSnapshotResponse {
        /// The snapshot's index.
        index: Index,
        /// The offset the follower expects next (equal to the total when done).
        next_offset: u64,
        /// Whether the snapshot is installed.
        done: bool,
    },
    /// "Start an election now": leadership transfer.
    TimeoutNow,
    /// A follower asks the leader for a read index.
    ReadIndex {
        /// The caller's context.
        context: Vec<u8>,
    },
    /// The leader's answer to [`MessageBody::ReadIndex`].
    ReadIndexResponse {
        /// The caller's context.
        context: Vec<u8>,
        /// The read index.
        index: Index,
    },
    /// A member that refused a pre-vote because it follows a leader names that leader
    /// (of the message's term) and how the transport authenticates it. A node whose log
    /// ends before the change that added the leader cannot know it otherwise, and would
    /// drop its messages forever; the voucher is a member of the receiver's configuration.
    LeaderIs {
        /// The leader.
        leader: NodeId,
        /// Its transport identity (for agora-node, its libp2p peer id), opaque to Raft.
        contact: Vec<u8>,
    },
    /// A node rejoining after lost state asks for the sender's term and log end (see the
    /// `rejoin` module). Answered whatever the terms; changes nothing at the answerer, which
    /// also names its leader if the prober's log ends before that leader was added, and,
    /// a witness or a member standing aside, relays its log if the prober's is behind.
    RecoveryProbe {
        /// The term of the prober's last entry.
        last_term: Term,
        /// The prober's last index.
        last_index: Index,
    },
    /// The answer: the message's term is the answerer's, and its log ends here.
    RecoveryReport {
        /// The term of its last entry.
        last_term: Term,
        /// Its last index.
        last_index: Index,
        /// The members of its configuration (both halves, if joint).
        members: Vec<NodeId>,
        /// The index of the entry (or snapshot) that configuration comes from: the prober
        /// must hear from every member of the newest configuration it learns of.
        config_index: Index,
    },
    /// A validator's commit signatures for heights it applied, sent to the leader, which
    /// gathers them into certificates (the replica's traffic: Raft does not act on it).
    CommitSignatures {
        /// (height, canonical signature bytes), at most [`MAX_COMMIT_SIGNATURES`].
        signatures: Vec<(Index, Vec<u8>)>,
    },
    /// A witness to a full member that asked for its vote with a log less up to date than
    /// the witness's: the entries it lacks, from the witness's log (see the `witness`
    /// module). A witness never leads, so without this a full member that missed entries
    /// a dead leader committed with the witness could never be elected.
    WitnessEntries {
        /// Index of the entry before `entries`.
        prev_index: Index,
        /// Its term.
        prev_term: Term,
        /// Entries from the witness's log (at least one).
        entries: Vec<LogEntry>,
        /// The witness's commit index.
        commit: Index,
    },
    /// The member's answer to [`MessageBody::WitnessEntries`].
    WitnessEntriesResponse {
        /// Whether `prev_index` matched.
        success: bool,
        /// On success, the last index now known to match the witness's log; on
        /// rejection, the `prev_index` that did not match.
        match_index: Index,
        /// On rejection, the first index of the conflicting term, or one past the log.
        conflict_index: Index,
        /// On rejection, the term of the member's entry at `prev_index`, if any.
        conflict_term: Option<Term>,
    },
    /// The leader to a witness: a quorum of the full members' weight holds every entry up
    /// to `index`, so the witness may drop them from its log.
    Forgettable {
        /// The index.
        index: Index,
    },
}

/// The most commit signatures one message carries.
pub const MAX_COMMIT_SIGNATURES: usize = 64;

impl MessageBody {
    /// Whether this is a vote or a vote request, which must be signed.
    pub fn is_vote(&self) -> bool {
        matches!(
            self,
            MessageBody::PreVote { .. }
                | MessageBody::PreVoteResponse { .. }
                | MessageBody::RequestVote { .. }
                | MessageBody::RequestVoteResponse { .. }
        )
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::PreVote { .. } => "pre_vote",
            MessageBody::PreVoteResponse { .. } => "pre_vote_response",
            MessageBody::RequestVote { .. } => "request_vote",
            MessageBody::RequestVoteResponse { .. } => "request_vote_response",
            MessageBody::AppendEntries { .. } => "append_entries",
            MessageBody::AppendEntriesResponse { .. } => "append_entries_response",
            MessageBody::Heartbeat { .. } => "heartbeat",
            MessageBody::HeartbeatResponse { .. } => "heartbeat_response",
            MessageBody::InstallSnapshot { .. } => "install_snapshot",
            MessageBody::InstallSnapshotResponse { .. } => "install_snapshot_response",
            MessageBody::TimeoutNow => "timeout_now",
            MessageBody::ReadIndex { .. } => "read_index",
            MessageBody::ReadIndexResponse { .. } => "read_index_response",
            MessageBody::LeaderIs { .. } => "leader_is",
            MessageBody::RecoveryProbe { .. } => "recovery_probe",
            MessageBody::RecoveryReport { .. } => "recovery_report",
            MessageBody::CommitSignatures { .. } => "commit_signatures",
            MessageBody::WitnessEntries { .. } => "witness_entries",
            MessageBody::WitnessEntriesResponse { .. } => "witness_entries_response",
            MessageBody::Forgettable { .. } => "forgettable",
        }
    }
}

/// A message from one node to another.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term (for a pre-vote: the term it would campaign in).
    pub term: Term,
    /// The contents.
    pub body: MessageBody,
    /// For votes: the sender's validator signature over [`Message::signing_bytes`].
    pub signature: Vec<u8>,
}

impl Message {
    /// The bytes a vote signature covers: everything but the signature.
    pub fn signing_bytes(&self) -> Vec<u8> {
        borsh::to_vec(&(&self.from, &self.to, self.term, &self.body)).expect("in memory")
    }
}
