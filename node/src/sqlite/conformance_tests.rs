//! The SQLite store passes the one conformance suite every store passes, and reports
//! corruption instead of replaying it.

use super::*;
use agora_consensus::raft::EntryData;
use agora_consensus::storage::conformance::{run, StoreFactory};
use agora_core::{AccountId, Amount, Hash32, Receipt, TxStatus};

/// A store and the file it lives in, so the suite can reopen it as a new process would.
struct Reopenable(SqliteStore, PathBuf);

impl LogStore for Reopenable {
    async fn load(&self) -> Result<Recovered, StorageError> {
        self.0.load().await
    }
    async fn save(
        &mut self,
        hard_state: Option<HardState>,
        snapshot: Option<&Snapshot>,
        entries: &[LogEntry],
    ) -> Result<(), StorageError> {
        self.0.save(hard_state, snapshot, entries).await
    }
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.0.get_meta(key).await
    }
    async fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.0.set_meta(key, value).await
    }
}

struct Factory {
    dir: PathBuf,
    count: u32,
}

impl StoreFactory for Factory {
    type Store = Reopenable;
    async fn fresh(&mut self) -> Reopenable {
        self.count += 1;
        let path = self.dir.join(format!("store-{}.db", self.count));
        Reopenable(SqliteStore::open(&path).await.unwrap(), path)
    }
    async fn reopen(&mut self, Reopenable(store, path): Reopenable) -> Reopenable {
        store.close().await;
        Reopenable(SqliteStore::open(&path).await.unwrap(), path)
    }
}

/// An archive row for height `index` (term 1, no receipts) with `state_root`.
fn archived(index: u64, data: EntryData, state_root: Hash32) -> Write {
    Write::Archive {
        entry: LogEntry {
            index,
            term: 1,
            data,
        },
        receipts: Vec::new(),
        events: Vec::new(),
        traces: Vec::new(),
        state_root,
    }
}

/// A snapshot through `index` (term 1) of a few bytes.
fn snapshot(index: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index,
            term: 1,
            membership: agora_consensus::raft::Membership::single(Default::default()),
            state_root: [index as u8; 32],
        },
        data: Arc::new(vec![index as u8; 10]),
    }
}

pub(super) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agora-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = temp_dir("conformance");
    run(&mut Factory {
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
    let entries: Vec<LogEntry> = (1..=3)
        .map(|index| LogEntry {
            index,
            term: 1,
            data: EntryData::Normal(format!("entry {index}").into_bytes().into()),
        })
        .collect();
    store.save(None, None, &entries).await.unwrap();
    sqlx::query("UPDATE entries SET data = X'00' || substr(data, 2) WHERE idx = 2")
        .execute(&store.pool_for_tests())
        .await
        .unwrap();
    let error = store.load().await.unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { path: p, detail } if p.contains("node.db") && detail.contains("entry 2")),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("re-joins the cluster") && message.contains("-wal and -shm"),
        "the message says what to do: {message}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every archived height is checked on read: a changed receipt, block or root is an
/// error naming the height, never an answer (issue #16, item 2). So is a node record.
#[tokio::test]
async fn a_changed_archive_row_is_refused_naming_its_height() {
    let dir = temp_dir("archive-flip");
    let path = dir.join("node.db");
    let mut store = SqliteStore::open(&path).await.unwrap();
    let archive = |index: u64, data: EntryData| archived(index, data, Hash32([index as u8; 32]));
    store
        .write(&[
            archive(1, EntryData::Noop),
            archive(2, EntryData::Noop),
            archive(3, EntryData::Noop),
        ])
        .await
        .unwrap();
    store.set_meta("identity", b"node-a").await.unwrap();
    let reader = store.reader();
    assert_eq!(
        reader.block(2).await.unwrap().unwrap().state_root,
        Hash32([2; 32])
    );
    let pool = store.pool_for_tests();
    for (height, tamper) in [
        (1, "UPDATE blocks SET receipts = '[ ]' WHERE height = 1"),
        (
            2,
            "UPDATE blocks SET state_root = zeroblob(32) WHERE height = 2",
        ),
        (3, "UPDATE blocks SET block = X'00' WHERE height = 3"),
    ] {
        sqlx::query(tamper).execute(&pool).await.unwrap();
        let error = reader.block(height).await.unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { detail, .. } if detail.contains(&format!("archived height {height} "))),
            "{error}"
        );
    }
    sqlx::query("UPDATE node_meta SET value = X'00'")
        .execute(&pool)
        .await
        .unwrap();
    let error = store.get_meta("identity").await.unwrap_err();
    assert!(error.to_string().contains("\"identity\""), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Rows of a store written before checksums existed get one when it first opens.
#[tokio::test]
async fn rows_from_before_checksums_are_summed_at_upgrade() {
    let dir = temp_dir("archive-upgrade");
    let path = dir.join("node.db");
    let mut store = SqliteStore::open(&path).await.unwrap();
    store
        .write(&[archived(1, EntryData::Noop, Hash32([7; 32]))])
        .await
        .unwrap();
    sqlx::query("UPDATE blocks SET checksum = NULL")
        .execute(&store.pool_for_tests())
        .await
        .unwrap();
    assert!(
        store.reader().block(1).await.is_err(),
        "no checksum: refused"
    );
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    let row = store.reader().block(1).await.expect("summed at open");
    assert_eq!(row.unwrap().state_root, Hash32([7; 32]));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Rows written before schema 5 carry SHA3 checksums: they still read (a database
/// upgraded in place keeps working), and a changed byte in one is still refused.
#[tokio::test]
async fn rows_summed_with_sha3_before_blake3_still_read() {
    // The legacy archive sum, as it was computed before: the block part concatenated.
    for block in [None, Some(&b"block bytes"[..])] {
        let block_part = block.map_or_else(
            || vec![0],
            |b| [&[1u8][..], &(b.len() as u64).to_le_bytes(), b].concat(),
        );
        let legacy = tagged_hash(
            b"agora/store-row/v1",
            &[
                b"archive",
                &5i64.to_le_bytes(),
                &block_part,
                &2u64.to_le_bytes(),
                b"[]",
                &[9; 32],
            ],
        )
        .0[..16]
            .to_vec();
        assert_eq!(
            archive_checksum(Sum::Sha3, 5, block, b"[]", &[9; 32], None),
            legacy
        );
        assert_ne!(
            archive_checksum(Sum::Blake3, 5, block, b"[]", &[9; 32], None),
            legacy
        );
    }
    let dir = temp_dir("legacy-sums");
    let path = dir.join("node.db");
    let mut store = SqliteStore::open(&path).await.unwrap();
    let entry = |index: u64| LogEntry {
        index,
        term: 1,
        data: EntryData::Normal(format!("entry {index}").into_bytes().into()),
    };
    store.save(None, None, &[entry(1), entry(2)]).await.unwrap();
    store
        .write(&[archived(1, EntryData::Noop, Hash32([7; 32]))])
        .await
        .unwrap();
    let pool = store.pool_for_tests();
    let rows = sqlx::query("SELECT idx, term, data FROM entries")
        .fetch_all(&pool)
        .await
        .unwrap();
    for row in rows {
        let (index, term, data): (i64, i64, Vec<u8>) =
            (row.get("idx"), row.get("term"), row.get("data"));
        sqlx::query("UPDATE entries SET checksum = ? WHERE idx = ?")
            .bind(entry_checksum(Sum::Sha3, index, term, &data))
            .bind(index)
            .execute(&pool)
            .await
            .unwrap();
    }
    let row = sqlx::query("SELECT block, receipts FROM blocks WHERE height = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (block, receipts): (Option<Vec<u8>>, Vec<u8>) = (row.get("block"), row.get("receipts"));
    // A legacy row: no events column, a SHA3 sum.
    sqlx::query("UPDATE blocks SET checksum = ?, events = NULL WHERE height = 1")
        .bind(archive_checksum(
            Sum::Sha3,
            1,
            block.as_deref(),
            &receipts,
            &[7; 32],
            None,
        ))
        .execute(&pool)
        .await
        .unwrap();
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.load().await.unwrap().entries.len(), 2);
    let archived = store.reader().block(1).await.unwrap().unwrap();
    assert_eq!(archived.state_root, Hash32([7; 32]));
    sqlx::query("UPDATE entries SET data = X'00' || substr(data, 2) WHERE idx = 2")
        .execute(&store.pool_for_tests())
        .await
        .unwrap();
    assert!(matches!(
        store.load().await,
        Err(StorageError::Corrupt { .. })
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A receipt of transaction `tag` that applied.
pub(super) fn receipt(tag: u8) -> Receipt {
    Receipt {
        tx_hash: Hash32([tag; 32]),
        status: TxStatus::Applied,
        fee: Amount(1),
    }
}

/// Height `height` with transactions `tags`, each sent by account `tag` and emitting one
/// `staked` event of `tag` units, then a height event.
pub(super) fn archived_txs(height: u64, tags: &[u8]) -> Write {
    let stake = |tag: u8| Event::Staked {
        account: AccountId(Hash32([tag; 32])),
        amount: Amount(u128::from(tag)),
    };
    let mut events: Vec<Event> = tags.iter().map(|&t| stake(t)).collect();
    events.push(Event::EpochEnded { epoch: height });
    Write::Archive {
        entry: LogEntry {
            index: height,
            term: 1,
            data: EntryData::Noop,
        },
        receipts: tags.iter().map(|&t| receipt(t)).collect(),
        events,
        traces: tags
            .iter()
            .map(|&t| TxTrace {
                sender: Some(AccountId(Hash32([t; 32]))),
                events: 1,
            })
            .collect(),
        state_root: Hash32([height as u8; 32]),
    }
}

#[tokio::test]
async fn a_transaction_is_found_by_hash_with_its_own_events_and_a_bad_index_is_refused() {
    let dir = temp_dir("tx-index");
    let mut store = SqliteStore::open(&dir.join("node.db")).await.unwrap();
    store
        .write(&[archived_txs(1, &[1, 2]), archived_txs(2, &[3])])
        .await
        .unwrap();
    let reader = store.reader();
    let found = reader.tx(&Hash32([2; 32])).await.unwrap().expect("indexed");
    assert_eq!((found.height, found.position), (1, 1));
    assert_eq!(found.sender, Some(AccountId(Hash32([2; 32]))));
    assert_eq!(found.receipt, receipt(2));
    assert_eq!(found.state_root, Hash32([1; 32]));
    assert_eq!(
        found.events,
        vec![Event::Staked {
            account: AccountId(Hash32([2; 32])),
            amount: Amount(2),
        }],
        "its own event, not its neighbour's nor the height's"
    );
    let third = reader.tx(&Hash32([3; 32])).await.unwrap().expect("indexed");
    assert_eq!((third.height, third.position), (2, 0));
    assert_eq!(reader.tx(&Hash32([9; 32])).await.unwrap(), None);

    // Included again later (it fails on its nonce there): the first place is kept.
    store.write(&[archived_txs(3, &[2])]).await.unwrap();
    let again = reader.tx(&Hash32([2; 32])).await.unwrap().unwrap();
    assert_eq!(again.height, 1);

    // The archive row answers for itself: the block read returns events and traces.
    let block = reader.block(1).await.unwrap().unwrap();
    assert_eq!(block.events.len(), 3);
    assert_eq!(block.traces.len(), 2);

    // An index row that points elsewhere is refused, not answered.
    store.flush_tx_index().await.unwrap();
    sqlx::query("UPDATE tx_index SET position = 0 WHERE height = 1 AND position = 1")
        .execute(&store.pool_for_tests())
        .await
        .unwrap();
    let error = reader.tx(&Hash32([2; 32])).await.unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { detail, .. } if detail.contains("index")),
        "{error}"
    );
    // Events changed on disk fail the row's checksum.
    sqlx::query("UPDATE blocks SET events = replace(events, 'staked', 'stakeD') WHERE height = 2")
        .execute(&store.pool_for_tests())
        .await
        .unwrap();
    assert!(matches!(
        reader.tx(&Hash32([3; 32])).await,
        Err(StorageError::Corrupt { .. })
    ));
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// Height `height` with `count` transactions whose hashes begin with the big-endian
/// numbers from `first` (no events or traces).
fn archived_numbered(height: u64, first: u32, count: u32) -> Write {
    let receipts = (first..first + count)
        .map(|n| {
            let mut hash = [0xAB; 32];
            hash[..4].copy_from_slice(&n.to_be_bytes());
            Receipt {
                tx_hash: Hash32(hash),
                status: TxStatus::Applied,
                fee: Amount(1),
            }
        })
        .collect();
    Write::Archive {
        entry: LogEntry {
            index: height,
            term: 1,
            data: EntryData::Noop,
        },
        receipts,
        events: Vec::new(),
        traces: Vec::new(),
        state_root: Hash32([height as u8; 32]),
    }
}

async fn index_table_rows(store: &SqliteStore) -> i64 {
    scalar(store, "SELECT COUNT(*) FROM tx_index").await
}

async fn place_of(reader: &StoreReader, n: u32) -> Option<(u64, u32)> {
    let mut hash = [0xAB; 32];
    hash[..4].copy_from_slice(&n.to_be_bytes());
    let found = reader.tx(&Hash32(hash)).await.unwrap();
    found.map(|tx| (tx.height, tx.position))
}

/// Index rows wait in memory (the readers find them there), go into the table as one
/// batch once enough wait, and none is lost by a restart, with or without a clean close:
/// the heights archived after the batch mark are read back from their receipts.
#[tokio::test]
async fn transaction_index_rows_go_in_by_batch_and_survive_a_restart() {
    let dir = temp_dir("tx-index-batches");
    let path = dir.join("node.db");
    let mut store = SqliteStore::open(&path).await.unwrap();
    store.write(&[archived_numbered(1, 0, 100)]).await.unwrap();
    store
        .write(&[archived_numbered(2, 100, 100)])
        .await
        .unwrap();
    assert_eq!(index_table_rows(&store).await, 0, "not yet a batch");
    assert_eq!(place_of(&store.reader(), 150).await, Some((2, 50)));
    assert_eq!(place_of(&store.reader(), 99).await, Some((1, 99)));
    assert_eq!(place_of(&store.reader(), 200).await, None);

    // A restart without a clean close: the rows come back from the archive.
    drop(store);
    let mut store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(place_of(&store.reader(), 150).await, Some((2, 50)));
    assert_eq!(index_table_rows(&store).await, 0);

    // Enough rows make a batch: all go in with the write that completes it.
    let per_height = 1_000;
    let mut height = 3;
    let mut next = 200;
    while store.recent.len() > 0 || height == 3 {
        store
            .write(&[archived_numbered(height, next, per_height)])
            .await
            .unwrap();
        next += per_height;
        height += 1;
        assert!(store.recent.len() < tx_index::FLUSH_ROWS, "bounded");
    }
    let total = i64::from(next);
    assert_eq!(index_table_rows(&store).await, total, "every row, once");
    assert!(total >= tx_index::FLUSH_ROWS as i64);
    let reader = store.reader();
    assert_eq!(place_of(&reader, 150).await, Some((2, 50)));
    assert_eq!(
        place_of(&reader, next - 1).await,
        Some((height - 1, per_height - 1))
    );

    // Included again later (it fails on its nonce there): the first place is kept, the
    // table's against memory's as within either.
    store
        .write(&[archived_numbered(height, 150, 1)])
        .await
        .unwrap();
    assert_eq!(store.recent.len(), 1);
    assert_eq!(place_of(&reader, 150).await, Some((2, 50)));

    // Restarted after the batch: only the heights after its mark come back to memory.
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.recent.len(), 1, "the height after the batch");
    let reader = store.reader();
    assert_eq!(place_of(&reader, 150).await, Some((2, 50)));
    assert_eq!(place_of(&reader, 0).await, Some((1, 0)));
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// The mark never lags the archive by more than `MARK_LAG_HEIGHTS`, rows or none (an idle
/// chain's empty heights): what opening the store reads back stays bounded.
#[tokio::test]
async fn the_batch_mark_follows_an_idle_chain() {
    let dir = temp_dir("tx-index-idle");
    let path = dir.join("node.db");
    let mut store = SqliteStore::open(&path).await.unwrap();
    store.write(&[archived_numbered(1, 0, 3)]).await.unwrap();
    let lag = tx_index::MARK_LAG_HEIGHTS as u64;
    for height in 2..=lag + 50 {
        store
            .write(&[archived_numbered(height, 0, 0)])
            .await
            .unwrap();
    }
    assert_eq!(
        index_table_rows(&store).await,
        3,
        "went in with the lagging mark"
    );
    assert_eq!(store.recent.len(), 0);
    assert_eq!(
        store.get_meta(tx_index::THROUGH_KEY).await.unwrap(),
        Some((lag as i64).to_le_bytes().to_vec())
    );
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(place_of(&store.reader(), 1).await, Some((1, 1)));
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// A store from before batches indexed every height as it archived it: opened now, it
/// takes the mark at its highest archived height and reads nothing back.
#[tokio::test]
async fn a_store_without_the_batch_mark_counts_its_archive_as_indexed() {
    let dir = temp_dir("tx-index-mark");
    let path = dir.join("node.db");
    let mut store = SqliteStore::open(&path).await.unwrap();
    store.write(&[archived_numbered(1, 0, 10)]).await.unwrap();
    store.flush_tx_index().await.unwrap();
    sqlx::query("DELETE FROM node_meta WHERE key = ?")
        .bind(tx_index::THROUGH_KEY)
        .execute(&store.pool_for_tests())
        .await
        .unwrap();
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.recent.len(), 0);
    assert_eq!(
        store.get_meta(tx_index::THROUGH_KEY).await.unwrap(),
        Some(1i64.to_le_bytes().to_vec())
    );
    assert_eq!(place_of(&store.reader(), 3).await, Some((1, 3)));
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// Opening reads the receipts after the batch mark back: a changed row there (or one no
/// longer text) stops the open as corrupt, naming the file, rather than indexing it.
#[tokio::test]
async fn a_damaged_row_after_the_batch_mark_is_corrupt_at_open() {
    for damage in ["'[]'", "CAST(X'C328' AS TEXT)"] {
        let dir = temp_dir("tx-index-damaged");
        let path = dir.join("node.db");
        let mut store = SqliteStore::open(&path).await.unwrap();
        store.write(&[archived_numbered(1, 0, 5)]).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE blocks SET receipts = {damage} WHERE height = 1"
        )))
        .execute(&store.pool_for_tests())
        .await
        .unwrap();
        store.close().await;
        let error = SqliteStore::open(&path).await.err().expect("refused");
        assert!(
            matches!(&error, StorageError::Corrupt { path: p, .. } if p.contains("node.db")),
            "{damage}: {error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn an_integrity_report_is_summarized_for_an_operator() {
    let report = "*** in database main ***\nPage 5: btree page 5 has bad magic\nPage 6: never used\nPage 7: never used";
    let summary = integrity_summary(report);
    assert!(summary.contains("3 damaged"), "{summary}");
    assert!(
        summary.contains("Page 5: btree page 5 has bad magic"),
        "{summary}"
    );
    assert!(!summary.contains("Page 7"), "{summary}");
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

/// One integer a query of `store` answers.
async fn scalar(store: &SqliteStore, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&store.pool_for_tests())
        .await
        .unwrap()
}

async fn page_size(store: &SqliteStore) -> i64 {
    scalar(store, "PRAGMA page_size").await
}

/// A database this version creates has its larger pages; one created with SQLite's
/// default 4 KiB pages (every store before them) keeps its size, and still writes, reads
/// and reopens.
#[tokio::test]
async fn a_new_store_has_large_pages_and_an_old_one_keeps_its_own() {
    let dir = temp_dir("page-size");
    let path = dir.join("node.db");
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(page_size(&store).await, i64::from(PAGE_BYTES));
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(page_size(&store).await, i64::from(PAGE_BYTES), "reopened");
    store.close().await;

    let old = dir.join("old.db");
    {
        let options = SqliteConnectOptions::new()
            .filename(&old)
            .create_if_missing(true)
            .page_size(4096)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        sqlx::query("CREATE TABLE before_us (x INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let mut store = SqliteStore::open(&old).await.unwrap();
    assert_eq!(
        page_size(&store).await,
        4096,
        "an existing file keeps its pages"
    );
    // A block-sized entry: a chain of overflow pages of the old size.
    let entry = LogEntry {
        index: 1,
        term: 1,
        data: EntryData::Normal(vec![9u8; 100_000].into()),
    };
    store
        .save(None, None, std::slice::from_ref(&entry))
        .await
        .unwrap();
    store.close().await;
    let store = SqliteStore::open(&old).await.unwrap();
    let recovered = store.load().await.unwrap();
    assert_eq!(recovered.entries, vec![entry]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A block is stored once (schema 7): archived while the log holds its entry, the archive
/// row refers to the entry. Compaction keeps that entry for the archive, the log goes on
/// after the snapshot, a restart loads only the log above the snapshot, a changed entry is
/// refused naming the height, and no truncation can delete an entry the archive needs.
#[tokio::test]
async fn an_archived_block_is_stored_once_and_outlives_compaction() {
    let dir = temp_dir("store-once");
    let path = dir.join("node.db");
    let mut store = SqliteStore::open(&path).await.unwrap();
    let entry = |index: u64| LogEntry {
        index,
        term: 1,
        data: EntryData::Normal(format!("block {index}").into_bytes().into()),
    };
    let log: Vec<LogEntry> = (1..=6).map(entry).collect();
    store.save(None, None, &log).await.unwrap();
    let root = |h: u64| Hash32([h as u8; 32]);
    let mut writes: Vec<Write> = (1..=3)
        .map(|h| archived(h, entry(h).data, root(h)))
        .collect();
    // Not in the log (9), another term than the log's (4), no block (5): stored as before.
    writes.push(archived(9, entry(9).data, root(9)));
    writes.push(Write::Archive {
        entry: LogEntry {
            term: 2,
            ..entry(4)
        },
        receipts: Vec::new(),
        events: Vec::new(),
        traces: Vec::new(),
        state_root: root(4),
    });
    writes.push(archived(5, EntryData::Noop, root(5)));
    store.write(&writes).await.unwrap();
    let once = "SELECT COUNT(*) FROM blocks WHERE in_log = 1 AND block IS NULL";
    assert_eq!(scalar(&store, once).await, 3);
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM blocks WHERE in_log = 0 AND block IS NOT NULL"
        )
        .await,
        2
    );
    let reader = store.reader();
    let read = |h: u64| {
        let reader = reader.clone();
        async move { reader.archived_entry(h).await.unwrap() }
    };
    for h in [1, 2, 3, 4, 9] {
        let archived = read(h).await;
        assert_eq!(archived.block, Some(format!("block {h}").into_bytes()));
        assert_eq!(archived.state_root, root(h));
    }
    assert_eq!(read(5).await.block, None);

    // Compaction through 5: entries 1..=3 stay for the archive, 4 and 5 go.
    store.save(None, Some(&snapshot(5)), &[]).await.unwrap();
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM entries WHERE idx <= 5").await,
        3
    );
    // The log goes on after the snapshot, though the highest kept entry is 3.
    store.save(None, Some(&snapshot(6)), &[]).await.unwrap();
    store.save(None, None, &[entry(7), entry(8)]).await.unwrap();
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    let recovered = store.load().await.unwrap();
    assert_eq!(recovered.snapshot.unwrap().meta.index, 6);
    assert_eq!(
        recovered
            .entries
            .iter()
            .map(|e| e.index)
            .collect::<Vec<_>>(),
        [7, 8]
    );
    let reader = store.reader();
    for h in [1, 2, 3] {
        let archived = reader.archived_entry(h).await.unwrap();
        assert_eq!(archived.block, Some(format!("block {h}").into_bytes()));
    }

    // A changed entry is a corrupt archive row, named.
    let pool = store.pool_for_tests();
    sqlx::query("UPDATE entries SET data = data || X'00' WHERE idx = 2")
        .execute(&pool)
        .await
        .unwrap();
    let error = reader.block(2).await.unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { detail, .. } if detail.contains("archived height 2 ")),
        "{error}"
    );
    // No deletion of an entry the archive reads: the trigger refuses it.
    let refused = sqlx::query("DELETE FROM entries WHERE idx = 1")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("archived block"), "{refused}");
    assert!(reader.archived_entry(1).await.unwrap().block.is_some());
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// The log's tail as the tables say, to hold the cached one against.
async fn tail_in_tables(store: &SqliteStore) -> LogTail {
    let mut tx = store.pool.begin().await.unwrap();
    store.read_tail(&mut tx).await.unwrap()
}

/// Appends are checked against a tail kept between writes (no reads); it is the tables'
/// own through appends, truncations, refusals, snapshots and a reopen.
#[tokio::test]
async fn the_kept_log_tail_always_matches_the_tables() {
    let dir = temp_dir("log-tail");
    let path = dir.join("node.db");
    let mut store = SqliteStore::open(&path).await.unwrap();
    let entry = |index: u64, term: u64| LogEntry {
        index,
        term,
        data: EntryData::Normal(format!("block {index}/{term}").into_bytes().into()),
    };
    let tail = |snapshot_index: i64, next_free: i64| LogTail {
        snapshot_index,
        next_free,
    };
    async fn agrees(store: &SqliteStore, expected: Option<LogTail>) {
        assert_eq!(store.tail, expected, "kept tail");
        if let Some(expected) = expected {
            assert_eq!(tail_in_tables(store).await, expected, "tables");
        }
    }
    let log: Vec<LogEntry> = (1..=5).map(|i| entry(i, 1)).collect();
    store.save(None, None, &log).await.unwrap();
    agrees(&store, Some(tail(0, 6))).await;
    // A conflict at 4: 4 and 5 are replaced by one entry of term 2.
    store.save(None, None, &[entry(4, 2)]).await.unwrap();
    agrees(&store, Some(tail(0, 5))).await;
    // A gap is refused and leaves no tail behind; the next write reads it again.
    let refused = store.save(None, None, &[entry(6, 2)]).await.unwrap_err();
    assert!(matches!(refused, StorageError::Misuse(_)), "{refused}");
    agrees(&store, None).await;
    store
        .write(&[Write::Log {
            hard_state: None,
            snapshot: None,
            entries: vec![entry(5, 2), entry(6, 2)],
        }])
        .await
        .unwrap();
    agrees(&store, Some(tail(0, 7))).await;
    // A snapshot inside the log keeps the suffix; one past it discards the log.
    store.save(None, Some(&snapshot(3)), &[]).await.unwrap();
    agrees(&store, None).await;
    store.save(None, None, &[entry(7, 2)]).await.unwrap();
    agrees(&store, Some(tail(3, 8))).await;
    store.save(None, Some(&snapshot(10)), &[]).await.unwrap();
    let refused = store.save(None, None, &[entry(8, 2)]).await.unwrap_err();
    assert!(matches!(refused, StorageError::Misuse(_)), "{refused}");
    store.save(None, None, &[entry(11, 2)]).await.unwrap();
    agrees(&store, Some(tail(10, 12))).await;
    store.close().await;
    let mut store = SqliteStore::open(&path).await.unwrap();
    agrees(&store, None).await;
    store.save(None, None, &[entry(12, 2)]).await.unwrap();
    agrees(&store, Some(tail(10, 13))).await;
    let recovered = store.load().await.unwrap();
    let kept: Vec<(u64, u64)> = recovered
        .entries
        .iter()
        .map(|e| (e.index, e.term))
        .collect();
    assert_eq!(kept, [(11, 2), (12, 2)]);
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// The WAL goes back into the database file without the writer: with the writer's own
/// checkpoint set far off, the file still grows to hold what was written, and the
/// writer's bound is the fallback. A close still leaves the file alone.
#[tokio::test]
async fn the_wal_is_checkpointed_off_the_writers_path() {
    let dir = temp_dir("checkpoint");
    let path = dir.join("node.db");
    let mut store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        scalar(&store, "PRAGMA wal_autocheckpoint").await,
        i64::from(checkpoint::FALLBACK_CHECKPOINT_PAGES)
    );
    let before = std::fs::metadata(&path).unwrap().len();
    // 4 MB of entries: a few hundred pages, far below the writer's own threshold.
    let log: Vec<LogEntry> = (1..=64)
        .map(|index| LogEntry {
            index,
            term: 1,
            data: EntryData::Normal(vec![index as u8; 64 * 1024].into()),
        })
        .collect();
    store.save(None, None, &log).await.unwrap();
    let written = 64 * 64 * 1024;
    let mut grown = 0;
    for _ in 0..200 {
        grown = std::fs::metadata(&path).unwrap().len();
        if grown >= before + written {
            break;
        }
        tokio::time::sleep(checkpoint::CHECKPOINT_EVERY / 5).await;
    }
    assert!(
        grown >= before + written,
        "the database file holds {grown} bytes, not the {written} written"
    );
    // A graceful close stops the checkpointer first: the store's connection is the last
    // to close, copies the rest back and removes the WAL (the file alone holds it all).
    store.close().await;
    let wal = dir.join("node.db-wal");
    assert!(!wal.exists(), "{} left after a close", wal.display());
    std::fs::remove_dir_all(dir).unwrap();
}
