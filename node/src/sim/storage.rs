//! What survives a crash in the simulator: the hard state, the newest snapshot and the
//! log entries after it — exactly what a `Ready` made durable. Anything a crash interrupts
//! before the sync is lost.

use crate::raft::{HardState, LogEntry, Recovered, Snapshot};

/// One node's durable storage.
#[derive(Clone, Debug)]
pub struct DurableStore {
    hard_state: HardState,
    snapshot: Snapshot,
    entries: Vec<LogEntry>,
}

impl DurableStore {
    /// Storage holding only the genesis snapshot.
    pub fn new(genesis: Snapshot) -> DurableStore {
        DurableStore {
            hard_state: HardState::default(),
            snapshot: genesis,
            entries: Vec::new(),
        }
    }

    /// Persists a hard state.
    pub fn save_hard_state(&mut self, hard_state: HardState) {
        assert!(
            hard_state.term >= self.hard_state.term,
            "persisted term never decreases"
        );
        self.hard_state = hard_state;
    }

    /// Persists entries, replacing any stored from the first one's index on.
    pub fn append(&mut self, entries: &[LogEntry]) {
        let Some(first) = entries.first() else { return };
        let keep = first.index.saturating_sub(self.snapshot.meta.index + 1) as usize;
        self.entries.truncate(keep);
        assert_eq!(
            self.first_free_index(),
            first.index,
            "stored log stays contiguous"
        );
        self.entries.extend_from_slice(entries);
    }

    fn first_free_index(&self) -> u64 {
        self.snapshot.meta.index + self.entries.len() as u64 + 1
    }

    /// Persists a snapshot and drops the entries it covers (keeping a matching suffix).
    pub fn save_snapshot(&mut self, snapshot: Snapshot) {
        if snapshot.meta.index <= self.snapshot.meta.index {
            return;
        }
        let index = snapshot.meta.index;
        let matching = self
            .entries
            .iter()
            .any(|e| e.index == index && e.term == snapshot.meta.term);
        if matching {
            self.entries.retain(|e| e.index > index);
        } else {
            self.entries.clear();
        }
        self.snapshot = snapshot;
    }

    /// Everything needed to restart.
    pub fn recover(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            snapshot: Some(self.snapshot.clone()),
            entries: self.entries.clone(),
        }
    }

    /// The stored snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The stored hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }
}
