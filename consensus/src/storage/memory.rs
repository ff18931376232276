//! In-memory storage: what survives a crash in the simulator. It keeps exactly what a
//! `save` made durable; anything a crash interrupts before that is lost.

use crate::raft::{HardState, LogEntry, Recovered, Snapshot};
use crate::storage::{LogStore, StorageError};
use std::collections::BTreeMap;

/// One node's durable storage, in memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<LogEntry>,
    meta: BTreeMap<String, Vec<u8>>,
}

impl MemoryStore {
    /// Storage holding only `genesis` as its snapshot, and no promise record: what a node
    /// that lost its storage finds (it rejoins before it votes).
    pub fn new(genesis: Snapshot) -> MemoryStore {
        MemoryStore {
            snapshot: Some(genesis),
            ..MemoryStore::default()
        }
    }

    /// A new node's storage, as `agora-node init` creates it: the genesis snapshot and the
    /// promise record of a node that has voted nowhere yet.
    pub fn initialized(genesis: Snapshot) -> MemoryStore {
        MemoryStore {
            hard_state: HardState {
                proven: true,
                ..HardState::default()
            },
            ..MemoryStore::new(genesis)
        }
    }

    /// This storage copied elsewhere and restored (an operator's older backup): the copy
    /// holds everything but the promise record, which is bound to the original.
    pub fn restored_copy(&self) -> MemoryStore {
        MemoryStore {
            hard_state: HardState {
                proven: false,
                ..self.hard_state
            },
            ..self.clone()
        }
    }

    fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.meta.index)
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
    pub fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let next_free = self.snapshot_index() + self.entries.len() as u64 + 1;
        if first.index <= self.snapshot_index() || first.index > next_free {
            return Err(StorageError::Misuse(format!(
                "entries from {} do not continue a log ending at {}",
                first.index,
                next_free - 1
            )));
        }
        self.entries
            .truncate((first.index - self.snapshot_index() - 1) as usize);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Persists a snapshot and drops the entries it covers (keeping a matching suffix).
    pub fn save_snapshot(&mut self, snapshot: Snapshot) {
        if snapshot.meta.index <= self.snapshot_index() && self.snapshot.is_some() {
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
        self.snapshot = Some(snapshot);
    }

    /// [`LogStore::save`], synchronously (the simulator's disk).
    pub fn save_now(
        &mut self,
        hard_state: Option<HardState>,
        snapshot: Option<&Snapshot>,
        entries: &[LogEntry],
    ) -> Result<(), StorageError> {
        // Validate first so a failed save changes nothing.
        if let Some(first) = entries.first() {
            let snapshot_index = snapshot.map_or(self.snapshot_index(), |s| {
                s.meta.index.max(self.snapshot_index())
            });
            let kept = if snapshot.is_some_and(|s| {
                !self
                    .entries
                    .iter()
                    .any(|e| e.index == s.meta.index && e.term == s.meta.term)
            }) {
                snapshot_index
            } else {
                self.snapshot_index() + self.entries.len() as u64
            };
            if first.index <= snapshot_index || first.index > kept.max(snapshot_index) + 1 {
                return Err(StorageError::Misuse(format!(
                    "entries from {} do not continue the stored log",
                    first.index
                )));
            }
        }
        if let Some(snapshot) = snapshot {
            self.save_snapshot(snapshot.clone());
        }
        if let Some(hard_state) = hard_state {
            self.save_hard_state(hard_state);
        }
        self.append(entries)
    }

    /// Whether the entry at `index` with `term` is durable here (or covered by the
    /// durable snapshot).
    pub fn holds(&self, index: u64, term: u64) -> bool {
        self.snapshot_index() >= index
            || self
                .entries
                .iter()
                .any(|e| e.index == index && e.term == term)
    }

    /// The durable snapshot's index and the last durable entry's (index, term), for
    /// failure reports.
    pub fn describe(&self) -> String {
        let last = self.entries.last().map(|e| (e.index, e.term));
        format!(
            "snapshot {} last {last:?} term {} vote {:?}",
            self.snapshot_index(),
            self.hard_state.term,
            self.hard_state.vote
        )
    }

    /// Everything needed to restart.
    pub fn recover(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }

    /// The stored snapshot.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The stored hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }
}

impl LogStore for MemoryStore {
    async fn load(&self) -> Result<Recovered, StorageError> {
        Ok(self.recover())
    }

    async fn save(
        &mut self,
        hard_state: Option<HardState>,
        snapshot: Option<&Snapshot>,
        entries: &[LogEntry],
    ) -> Result<(), StorageError> {
        self.save_now(hard_state, snapshot, entries)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.meta.get(key).cloned())
    }

    async fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.meta.insert(key.to_string(), value.to_vec());
        Ok(())
    }
}
