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
        data: EntryData::Normal(format!("entry {index} of term {term}").into_bytes()),
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
                    commit: 0
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
    use crate::storage::sqlite::SqliteStore;
    use crate::storage::StorageError;
    use std::path::PathBuf;

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

    struct Sqlite {
        dir: PathBuf,
        count: u32,
    }
    impl StoreFactory for Sqlite {
        type Store = (SqliteStore, PathBuf);
        async fn fresh(&mut self) -> (SqliteStore, PathBuf) {
            self.count += 1;
            let path = self.dir.join(format!("store-{}.db", self.count));
            (SqliteStore::open(&path).await.unwrap(), path)
        }
        async fn reopen(
            &mut self,
            (store, path): (SqliteStore, PathBuf),
        ) -> (SqliteStore, PathBuf) {
            store.close().await;
            (SqliteStore::open(&path).await.unwrap(), path)
        }
    }

    impl LogStore for (SqliteStore, PathBuf) {
        async fn load(&self) -> Result<crate::raft::Recovered, StorageError> {
            self.0.load().await
        }
        async fn save(
            &mut self,
            h: Option<HardState>,
            s: Option<&Snapshot>,
            e: &[LogEntry],
        ) -> Result<(), StorageError> {
            self.0.save(h, s, e).await
        }
        async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
            self.0.get_meta(key).await
        }
        async fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StorageError> {
            self.0.set_meta(key, value).await
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("agora-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn memory_store_conforms() {
        run(&mut Memory).await;
    }

    #[tokio::test]
    async fn sqlite_store_conforms() {
        let dir = temp_dir("conformance");
        run(&mut Sqlite {
            dir: dir.clone(),
            count: 0,
        })
        .await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A flipped bit inside a stored value is reported as corruption, naming the file.
    #[tokio::test]
    async fn a_flipped_bit_is_reported_not_replayed() {
        let dir = temp_dir("bitflip");
        let path = dir.join("node.db");
        let mut store = SqliteStore::open(&path).await.unwrap();
        store.save(None, None, &entries(1..=3, 1)).await.unwrap();
        sqlx::query("UPDATE entries SET data = X'00' || substr(data, 2) WHERE idx = 2")
            .execute(&store.pool_for_tests())
            .await
            .unwrap();
        let error = store.load().await.unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { path: p, detail } if p.contains("node.db") && detail.contains("entry 2")),
            "{error}"
        );
        assert!(
            error.to_string().contains("re-join the cluster"),
            "the message says what to do"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A file that is not a database (or was truncated to garbage) is a clear error.
    #[tokio::test]
    async fn a_garbage_file_is_a_clear_error() {
        let dir = temp_dir("garbage");
        let path = dir.join("node.db");
        std::fs::write(&path, vec![0x42; 8192]).unwrap();
        let error = SqliteStore::open(&path).await.err().expect("refused");
        assert!(
            matches!(&error, StorageError::Corrupt { path: p, .. } if p.contains("node.db")),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
