//! Durable storage for the Raft log, hard state, snapshots and node metadata.
//!
//! # Contract
//!
//! Every implementation of [`LogStore`] promises:
//!
//! 1. **Durability.** When [`LogStore::save`] returns `Ok`, everything it was given
//!    survives a process kill and a power loss, and [`LogStore::load`] returns it.
//! 2. **Atomicity.** A `save` takes effect entirely or not at all.
//! 3. **Log shape.** `save` applies, in order: the snapshot (replacing the stored one if
//!    newer, dropping the entries it covers, keeping a stored suffix only if the entry at
//!    the snapshot's index has the snapshot's term); the hard state; then the entries,
//!    which replace every stored entry from the first one's index on. The stored log is
//!    always contiguous after the snapshot.
//! 4. **Honest failure.** Corrupt or truncated data is an error naming what is wrong and
//!    what to do, never a panic and never a silent reset; a failed call changes nothing.
//!
//! The SQLite store ([`sqlite::SqliteStore`]) serves the node; the in-memory store
//! ([`memory::MemoryStore`]) serves the simulator. Both pass [`conformance`].

pub mod conformance;
pub mod memory;

use crate::raft::{HardState, LogEntry, Recovered, Snapshot};
use std::future::Future;

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database could not be opened or written.
    #[error("storage at {path}: {detail}")]
    Io {
        /// The database file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// Stored data fails its checks.
    #[error("storage at {path} is corrupt: {detail}. Stop this node, move {path} and its -wal and -shm files aside (keep the key files next to them), and start the node again: it re-joins the cluster, catches up from its peers, and votes again once it has heard from every member (a backup copy of the file may be restored instead; it re-joins the same way)")]
    Corrupt {
        /// The database file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A caller broke the contract (entries not continuing the log).
    #[error("storage misuse: {0}")]
    Misuse(String),
}

/// Durable storage for one node. See the module documentation for the contract.
pub trait LogStore: Send {
    /// Everything durable: hard state, newest snapshot, entries after it.
    fn load(&self) -> impl Future<Output = Result<Recovered, StorageError>> + Send;

    /// Makes a `Ready`'s durable parts durable, atomically (group commit).
    fn save(
        &mut self,
        hard_state: Option<HardState>,
        snapshot: Option<&Snapshot>,
        entries: &[LogEntry],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Reads a metadata value.
    fn get_meta(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send;

    /// Writes a metadata value durably.
    fn set_meta(
        &mut self,
        key: &str,
        value: &[u8],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}
