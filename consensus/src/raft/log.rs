//! The in-memory Raft log: a snapshot point, the entries after it, and the commit,
//! apply and persistence marks. Safety-relevant orderings are asserted in every build:
//! `snapshot.index <= applied <= committed <= last_index`, and nothing at or below the
//! commit index is ever truncated.

use crate::raft::types::{EntryData, Index, LogEntry, SnapshotMeta, Term};
use std::collections::VecDeque;

/// The log.
#[derive(Clone, Debug)]
pub struct RaftLog {
    /// The point everything up to which is compacted into a snapshot.
    snapshot: SnapshotMeta,
    /// Entries `snapshot.index + 1 ..= last_index`.
    entries: VecDeque<LogEntry>,
    committed: Index,
    applied: Index,
    /// Entries up to here are durable; later ones go out in the next `Ready`.
    persisted: Index,
}

impl RaftLog {
    /// A log that starts after `snapshot`, with `entries` (durable) following it.
    pub fn new(snapshot: SnapshotMeta, entries: Vec<LogEntry>, committed: Index) -> RaftLog {
        let mut log = RaftLog {
            committed: snapshot.index,
            applied: snapshot.index,
            persisted: snapshot.index,
            snapshot,
            entries: VecDeque::new(),
        };
        for entry in entries {
            if entry.index <= log.snapshot.index {
                continue;
            }
            assert_eq!(
                entry.index,
                log.last_index() + 1,
                "recovered entries must be contiguous"
            );
            log.entries.push_back(entry);
        }
        log.persisted = log.last_index();
        log.committed = committed.clamp(log.snapshot.index, log.last_index());
        log
    }

    /// The snapshot point.
    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// The first index still held as an entry.
    pub fn first_index(&self) -> Index {
        self.snapshot.index + 1
    }

    /// The last index in the log.
    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as u64
    }

    /// The term of the last entry (or of the snapshot point).
    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot.term, |e| e.term)
    }

    /// The commit index.
    pub fn committed(&self) -> Index {
        self.committed
    }

    /// The apply index.
    pub fn applied(&self) -> Index {
        self.applied
    }

    /// The highest durable index.
    pub fn persisted(&self) -> Index {
        self.persisted
    }

    /// The term at `index`, if it is the snapshot point or a held entry.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: Index) -> Option<&LogEntry> {
        if index <= self.snapshot.index {
            return None;
        }
        self.entries.get((index - self.first_index()) as usize)
    }

    /// Entries from `from` on, at least one if any exists, then up to `max_bytes` in all.
    pub fn entries_from(&self, from: Index, max_bytes: u64) -> Vec<LogEntry> {
        let mut out = Vec::new();
        let mut bytes = 0u64;
        let mut index = from.max(self.first_index());
        while let Some(entry) = self.entry(index) {
            let size = entry.size_bytes();
            if !out.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            out.push(entry.clone());
            index += 1;
        }
        out
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up to date as
    /// this one (§5.4.1).
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Appends entries that continue the log (leader side).
    pub fn append(&mut self, entries: Vec<LogEntry>) {
        for entry in entries {
            assert_eq!(entry.index, self.last_index() + 1, "appends are contiguous");
            self.entries.push_back(entry);
        }
    }

    /// Removes every entry from `index` on. Never touches committed entries.
    pub fn truncate_from(&mut self, index: Index) {
        assert!(
            index > self.committed,
            "truncating committed entry {index} (commit {})",
            self.committed
        );
        assert!(index > self.snapshot.index);
        self.entries.truncate((index - self.first_index()) as usize);
        self.persisted = self.persisted.min(index - 1);
    }

    /// The first entry of `entries` that this log lacks or holds with another term.
    pub fn find_conflict(&self, entries: &[LogEntry]) -> Option<usize> {
        entries
            .iter()
            .position(|e| self.term_at(e.index) != Some(e.term))
    }

    /// The first index of the run of entries with term `term` that contains `index`.
    pub fn first_index_of_term(&self, index: Index, term: Term) -> Index {
        let mut first = index;
        while first > self.first_index() && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// The last index holding an entry of `term` at or below `index`, if any.
    pub fn last_index_of_term(&self, term: Term, at_most: Index) -> Option<Index> {
        let mut index = at_most.min(self.last_index());
        loop {
            match self.term_at(index) {
                Some(t) if t == term => return Some(index),
                Some(t) if t < term => return None,
                Some(_) if index > self.snapshot.index => index -= 1,
                _ => return None,
            }
        }
    }

    /// Raises the commit index (never lowers it).
    pub fn commit_to(&mut self, index: Index) {
        if index <= self.committed {
            return;
        }
        assert!(
            index <= self.last_index(),
            "commit {index} beyond last index {}",
            self.last_index()
        );
        self.committed = index;
    }

    /// Entries committed but not yet handed out for applying, up to `max_bytes` and up to
    /// index `through` (no further than the commit index).
    pub fn next_committed(&self, through: Index, max_bytes: u64) -> Vec<LogEntry> {
        let through = through.min(self.committed);
        if self.applied >= through {
            return Vec::new();
        }
        let mut out = self.entries_from(self.applied + 1, max_bytes);
        out.retain(|e| e.index <= through);
        out
    }

    /// Records that entries up to `index` were applied.
    pub fn apply_to(&mut self, index: Index) {
        assert!(
            index <= self.committed,
            "applying {index} beyond commit {}",
            self.committed
        );
        assert!(index >= self.applied, "apply index moves forward");
        self.applied = index;
    }

    /// Entries not yet durable.
    pub fn unstable(&self) -> Vec<LogEntry> {
        self.entries_from(self.persisted + 1, u64::MAX)
    }

    /// Records that entries up to (`index`, `term`) are durable, if the log still holds
    /// that entry (a truncation in between makes the acknowledgement stale).
    pub fn persist_to(&mut self, index: Index, term: Term) {
        if index > self.persisted && self.term_at(index) == Some(term) {
            self.persisted = index;
        }
    }

    /// Drops entries up to `meta.index`, which the caller has captured in a snapshot.
    pub fn compact(&mut self, meta: SnapshotMeta) {
        assert!(
            meta.index <= self.applied,
            "snapshot {} beyond applied {}",
            meta.index,
            self.applied
        );
        if meta.index <= self.snapshot.index {
            return;
        }
        let drop = (meta.index - self.snapshot.index) as usize;
        self.entries.drain(..drop);
        self.snapshot = meta;
    }

    /// Replaces the log with a snapshot received from the leader. Keeps the entries after
    /// it if the log already holds the snapshot's last entry (§7).
    pub fn restore(&mut self, meta: SnapshotMeta) {
        assert!(meta.index > self.committed, "restoring an older snapshot");
        if self.term_at(meta.index) == Some(meta.term) {
            let drop = (meta.index - self.snapshot.index) as usize;
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.persisted = self
            .persisted
            .max(meta.index)
            .min(self.last_index_after(&meta));
        self.committed = meta.index;
        self.applied = meta.index;
        self.snapshot = meta;
    }

    fn last_index_after(&self, meta: &SnapshotMeta) -> Index {
        meta.index + self.entries.len() as u64
    }

    /// Config entries after the snapshot point, in order.
    pub fn config_entries(&self) -> impl Iterator<Item = &LogEntry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.data, EntryData::Config(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::config::Membership;

    fn meta(index: Index, term: Term) -> SnapshotMeta {
        SnapshotMeta {
            index,
            term,
            membership: Membership::default(),
            state_root: [0; 32],
        }
    }

    fn entries(terms: &[(Index, Term)]) -> Vec<LogEntry> {
        terms
            .iter()
            .map(|&(index, term)| LogEntry {
                index,
                term,
                data: EntryData::Noop,
            })
            .collect()
    }

    #[test]
    fn terms_and_bounds() {
        let log = RaftLog::new(meta(3, 1), entries(&[(4, 1), (5, 2), (6, 2), (7, 3)]), 5);
        assert_eq!(
            (log.first_index(), log.last_index(), log.last_term()),
            (4, 7, 3)
        );
        assert_eq!(log.term_at(3), Some(1));
        assert_eq!(log.term_at(2), None, "compacted");
        assert_eq!(log.term_at(8), None);
        assert_eq!(log.committed(), 5);
        assert_eq!(log.first_index_of_term(6, 2), 5);
        assert_eq!(log.last_index_of_term(2, 7), Some(6));
        assert_eq!(log.last_index_of_term(4, 7), None);
    }

    #[test]
    #[should_panic(expected = "truncating committed entry")]
    fn committed_entries_are_never_truncated() {
        let mut log = RaftLog::new(meta(0, 0), entries(&[(1, 1), (2, 1)]), 2);
        log.truncate_from(2);
    }

    #[test]
    fn persistence_follows_truncation() {
        let mut log = RaftLog::new(meta(0, 0), entries(&[(1, 1), (2, 1), (3, 1)]), 1);
        assert_eq!(log.persisted(), 3);
        log.truncate_from(3);
        log.append(entries(&[(3, 2)]));
        assert_eq!(log.persisted(), 2);
        assert_eq!(log.unstable(), entries(&[(3, 2)]));
        log.persist_to(3, 1);
        assert_eq!(
            log.persisted(),
            2,
            "a stale acknowledgement for the old term is ignored"
        );
        log.persist_to(3, 2);
        assert_eq!(log.persisted(), 3);
    }

    #[test]
    fn restore_keeps_a_matching_suffix() {
        let mut log = RaftLog::new(meta(0, 0), entries(&[(1, 1), (2, 1), (3, 2)]), 0);
        log.restore(meta(2, 1));
        assert_eq!(
            (
                log.first_index(),
                log.last_index(),
                log.committed(),
                log.applied()
            ),
            (3, 3, 2, 2)
        );
        let mut other = RaftLog::new(meta(0, 0), entries(&[(1, 1), (2, 1)]), 0);
        other.restore(meta(5, 3));
        assert_eq!(
            (other.first_index(), other.last_index(), other.committed()),
            (6, 5, 5)
        );
    }
}
