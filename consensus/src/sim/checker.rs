//! One checker per safety property, each named for the section of the Raft paper
//! (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014) it
//! protects. A violation is a bug in the core, never in the seed.

use crate::raft::{EntryData, Index, LogEntry, NodeId, RaftLog, Term};
use agora_core::hash::tagged_hash;
use agora_core::Hash32;
use std::collections::BTreeMap;

/// A broken property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which property.
    pub property: &'static str,
    /// What happened.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.property, self.detail)
    }
}

fn violation(property: &'static str, detail: String) -> Violation {
    Violation { property, detail }
}

/// The digest the checkers compare entries by.
pub fn entry_digest(entry: &LogEntry) -> Hash32 {
    tagged_hash(
        b"agora/sim-entry/v1",
        &[&borsh::to_vec(entry).expect("in memory")],
    )
}

/// Everything the checkers remember across the run.
#[derive(Default)]
pub struct Checker {
    /// Election safety: term -> leader.
    leaders: BTreeMap<Term, NodeId>,
    /// Log matching: (index, term) -> digest of any entry ever appended there.
    appended: BTreeMap<(Index, Term), Hash32>,
    /// Committed entries: index -> (term, digest).
    committed: BTreeMap<Index, (Term, Hash32)>,
    /// State machine safety: index -> (digest, state root after applying).
    applied: BTreeMap<Index, (Hash32, Hash32)>,
    /// No acknowledged proposal lost: index -> digest acknowledged to a client.
    acknowledged: BTreeMap<Index, Hash32>,
    /// Highest acknowledged index at each tick an acknowledgement happened.
    highest_acknowledged: Index,
}

impl Checker {
    /// §5.2 Election Safety: at most one leader per term.
    pub fn on_leader(&mut self, term: Term, node: NodeId) -> Result<(), Violation> {
        match self.leaders.insert(term, node) {
            Some(other) if other != node => Err(violation(
                "election safety (§5.2)",
                format!("{other:?} and {node:?} both led term {term}"),
            )),
            _ => Ok(()),
        }
    }

    /// §5.3 Log Matching, first half: entries with the same index and term are identical.
    pub fn on_append(&mut self, node: NodeId, entries: &[LogEntry]) -> Result<(), Violation> {
        for entry in entries {
            let digest = entry_digest(entry);
            if let Some(existing) = self.appended.insert((entry.index, entry.term), digest) {
                if existing != digest {
                    return Err(violation(
                        "log matching (§5.3)",
                        format!(
                            "{node:?} appended a different entry at index {} term {}",
                            entry.index, entry.term
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// §5.3 Log Matching, second half: if two logs hold an entry with the same index and
    /// term, they are identical up to it. Because [`Checker::on_append`] already proves
    /// that equal (index, term) means an equal entry, comparing terms over the overlap of
    /// two logs below their highest agreement point is enough.
    pub fn check_log_prefixes(&self, logs: &[(NodeId, &RaftLog)]) -> Result<(), Violation> {
        for (i, (a_id, a)) in logs.iter().enumerate() {
            for (b_id, b) in &logs[i + 1..] {
                let low = a.first_index().max(b.first_index());
                let high = a.last_index().min(b.last_index());
                let Some(agree) = (low..=high)
                    .rev()
                    .find(|&k| a.term_at(k).is_some() && a.term_at(k) == b.term_at(k))
                else {
                    continue;
                };
                if let Some(k) = (low..agree).find(|&k| a.term_at(k) != b.term_at(k)) {
                    return Err(violation(
                        "log matching (§5.3)",
                        format!("{a_id:?} and {b_id:?} agree at index {agree} but differ at {k}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Records that `node` learned entries up to its commit index are committed.
    pub fn on_commit(
        &mut self,
        node: NodeId,
        log: &RaftLog,
        from: Index,
        to: Index,
    ) -> Result<(), Violation> {
        for index in from.max(log.first_index())..=to {
            let Some(entry) = log.entry(index) else {
                continue;
            };
            let record = (entry.term, entry_digest(entry));
            if let Some(existing) = self.committed.insert(index, record) {
                if existing != record {
                    return Err(violation(
                        "state machine safety (§5.4.3)",
                        format!(
                            "{node:?} committed a different entry at index {index} (term {} vs {})",
                            record.0, existing.0
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// §5.4 Leader Completeness: a new leader's log holds every committed entry.
    pub fn check_leader_completeness(
        &self,
        node: NodeId,
        term: Term,
        log: &RaftLog,
    ) -> Result<(), Violation> {
        for (&index, &(entry_term, digest)) in self.committed.range(log.first_index()..) {
            if entry_term >= term {
                continue;
            }
            let holds = log.entry(index).is_some_and(|e| entry_digest(e) == digest);
            if !holds {
                return Err(violation(
                    "leader completeness (§5.4)",
                    format!("{node:?} leads term {term} without committed entry {index} of term {entry_term}"),
                ));
            }
        }
        Ok(())
    }

    /// §5.4.3 State Machine Safety: every node applies the same entry at each index and
    /// reaches the same state root.
    pub fn on_apply(
        &mut self,
        node: NodeId,
        entry: &LogEntry,
        root: Hash32,
    ) -> Result<(), Violation> {
        let record = (entry_digest(entry), root);
        if let Some(existing) = self.applied.insert(entry.index, record) {
            if existing != record {
                let what = if existing.0 != record.0 {
                    "entry"
                } else {
                    "state root"
                };
                return Err(violation(
                    "state machine safety (§5.4.3)",
                    format!(
                        "{node:?} applied a different {what} at index {}",
                        entry.index
                    ),
                ));
            }
        }
        if let Some(acked) = self.acknowledged.get(&entry.index) {
            if *acked != record.0 {
                return Err(violation(
                    "no acknowledged proposal lost",
                    format!(
                        "{node:?} applied another entry at acknowledged index {}",
                        entry.index
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A client was told its proposal at `index` committed.
    pub fn on_acknowledge(&mut self, index: Index, digest: Hash32) -> Result<(), Violation> {
        if let Some((applied, _)) = self.applied.get(&index) {
            if *applied != digest {
                return Err(violation(
                    "no acknowledged proposal lost",
                    format!("index {index} acknowledged with an entry that was not applied there"),
                ));
            }
        }
        self.acknowledged.insert(index, digest);
        self.highest_acknowledged = self.highest_acknowledged.max(index);
        Ok(())
    }

    /// The newest index acknowledged to a client so far.
    pub fn highest_acknowledged(&self) -> Index {
        self.highest_acknowledged
    }

    /// Linearizable ReadIndex reads (§8): a read served at `index` must reflect every write
    /// acknowledged before the read began.
    pub fn on_read_served(
        &self,
        node: NodeId,
        read_index: Index,
        acknowledged_before_start: Index,
    ) -> Result<(), Violation> {
        if read_index < acknowledged_before_start {
            return Err(violation(
                "linearizable reads (§8)",
                format!("{node:?} served a read at index {read_index}, but index {acknowledged_before_start} was acknowledged before the read began"),
            ));
        }
        Ok(())
    }

    /// Figure 2 ("currentTerm increases monotonically") and commitIndex monotonicity.
    pub fn check_monotonic(
        node: NodeId,
        what: &'static str,
        before: u64,
        after: u64,
    ) -> Result<(), Violation> {
        if after < before {
            return Err(violation(
                "monotonic term and commit (Figure 2)",
                format!("{node:?} {what} went from {before} to {after}"),
            ));
        }
        Ok(())
    }

    /// §6: one configuration change at a time. In a leader's log at most one configuration
    /// entry is uncommitted, and a joint entry only follows a final one.
    pub fn check_single_config_change(node: NodeId, log: &RaftLog) -> Result<(), Violation> {
        let mut uncommitted = 0;
        let mut previous_joint = false;
        for index in log.first_index()..=log.last_index() {
            let Some(LogEntry {
                data: EntryData::Config(change),
                ..
            }) = log.entry(index)
            else {
                continue;
            };
            let joint = matches!(change, crate::raft::ConfigChange::Joint { .. });
            if joint && previous_joint {
                return Err(violation("one configuration change at a time (§6)", format!("{node:?} appended joint entry {index} before leaving the previous joint configuration")));
            }
            previous_joint = joint;
            if index > log.committed() {
                uncommitted += 1;
            }
        }
        if uncommitted > 1 {
            return Err(violation(
                "one configuration change at a time (§6)",
                format!("{node:?} has {uncommitted} uncommitted configuration entries"),
            ));
        }
        Ok(())
    }
}
