//! One conformance suite that every [`LogStore`] passes. Each case opens a fresh store,
//! and cases that test durability "reopen" it (a new process, for SQLite).

use crate::raft::{Config, EntryData, HardState, LogEntry, Membership, Snapshot, SnapshotMeta};
use crate::storage::LogStore;
use agora_core::{AccountId, Hash32};
use std::future::Future;
use std::sync::Arc;

/// Makes stores for the suite.
pub trait StoreFactory {
    /// The store type.
    type Store: LogStore;
    /// A new, empty store.
    fn fresh(&mut self) -> impl Future<Output = Self::Store>;
    /// The same storage as a new process would see it.
    fn reopen(&mut self, store: Self::Store) -> impl Future<Output = Self::Store>;
}

fn entry(index: u64, term: u64) -> LogEntry {
    LogEntry {
        index,
        term,
        data: EntryData::Normal(format!("entry {index} of term {term}").into_bytes().into()),
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<LogEntry> {
    range.map(|i| entry(i, term)).collect()
}

fn snapshot(index: u64, term: u64, bytes: usize) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            membership: Membership::single(Config::default()),
            state_root: [index as u8; 32],
        },
        data: Arc::new((0..bytes).map(|i| (i % 251) as u8).collect()),
    }
}

/// Runs every case; panics with the case name on the first failure.
pub async fn run<F: StoreFactory>(factory: &mut F) {
    // An empty store loads as nothing at all.
    let store = factory.fresh().await;
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.hard_state, HardState::default(), "empty: hard state");
    assert!(
        loaded.snapshot.is_none() && loaded.entries.is_empty(),
        "empty: log"
    );

    // Saved state survives a reopen exactly.
    let mut store = factory.fresh().await;
    let hard = HardState {
        term: 3,
        vote: Some(AccountId(Hash32([9; 32]))),
        commit: 4,
        proven: true,
    };
    store
        .save(Some(hard), None, &entries(1..=5, 3))
        .await
        .unwrap();
    let store = factory.reopen(store).await;
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.hard_state, hard, "durable: hard state");
    assert_eq!(loaded.entries, entries(1..=5, 3), "durable: entries");

    // New entries replace the stored suffix from their first index.
    let mut store = factory.fresh().await;
    store.save(None, None, &entries(1..=5, 1)).await.unwrap();
    store.save(None, None, &entries(3..=4, 2)).await.unwrap();
    let mut expected = entries(1..=2, 1);
    expected.extend(entries(3..=4, 2));
    assert_eq!(
        store.load().await.unwrap().entries,
        expected,
        "truncate and append"
    );

    // Entries that leave a gap are refused and change nothing.
    assert!(
        store
            .save(
                Some(HardState {
                    term: 9,
                    vote: None,
                    commit: 0,
                    proven: false,
                }),
                None,
                &entries(9..=9, 2)
            )
            .await
            .is_err(),
        "gap refused"
    );
    let after = store.load().await.unwrap();
    assert_eq!(
        after.entries, expected,
        "a refused save changes nothing (entries)"
    );
    assert_eq!(
        after.hard_state,
        HardState::default(),
        "a refused save changes nothing (hard state)"
    );

    // A snapshot drops what it covers and keeps a matching suffix.
    let mut store = factory.fresh().await;
    store.save(None, None, &entries(1..=10, 1)).await.unwrap();
    store
        .save(None, Some(&snapshot(6, 1, 3_000_000)), &[])
        .await
        .unwrap();
    let store = factory.reopen(store).await;
    let loaded = store.load().await.unwrap();
    assert_eq!(
        loaded.snapshot,
        Some(snapshot(6, 1, 3_000_000)),
        "snapshot round trip (several chunks)"
    );
    assert_eq!(loaded.entries, entries(7..=10, 1), "matching suffix kept");

    // A snapshot whose last entry conflicts with the log replaces the whole log.
    let mut store = factory.fresh().await;
    store.save(None, None, &entries(1..=10, 1)).await.unwrap();
    store
        .save(None, Some(&snapshot(6, 5, 10)), &entries(7..=7, 5))
        .await
        .unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(
        loaded.entries,
        entries(7..=7, 5),
        "conflicting log replaced"
    );
    // An older snapshot never replaces a newer one.
    let mut store = store;
    store
        .save(None, Some(&snapshot(3, 1, 10)), &[])
        .await
        .unwrap();
    assert_eq!(
        store.load().await.unwrap().snapshot.unwrap().meta.index,
        6,
        "older snapshot ignored"
    );

    // Group commit: a large batch in one save.
    let mut store = factory.fresh().await;
    store
        .save(
            Some(HardState {
                term: 1,
                vote: None,
                commit: 0,
                proven: false,
            }),
            None,
            &entries(1..=2_000, 1),
        )
        .await
        .unwrap();
    let store = factory.reopen(store).await;
    assert_eq!(
        store.load().await.unwrap().entries.len(),
        2_000,
        "group commit"
    );

    // Metadata.
    let mut store = factory.fresh().await;
    assert_eq!(store.get_meta("identity").await.unwrap(), None);
    store.set_meta("identity", b"abc").await.unwrap();
    store.set_meta("identity", b"abcd").await.unwrap();
    let store = factory.reopen(store).await;
    assert_eq!(
        store.get_meta("identity").await.unwrap(),
        Some(b"abcd".to_vec()),
        "metadata"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStore;

    struct Memory;
    impl StoreFactory for Memory {
        type Store = MemoryStore;
        async fn fresh(&mut self) -> MemoryStore {
            MemoryStore::default()
        }
        async fn reopen(&mut self, store: MemoryStore) -> MemoryStore {
            store.clone()
        }
    }

    #[test]
    fn memory_store_conforms() {
        futures::executor::block_on(run(&mut Memory));
    }
}
