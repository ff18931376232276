//! The node's storage: one SQLite database (bundled, embedded) in the data directory.
//!
//! WAL journal with `synchronous=FULL`: a commit is on disk, log and all, before `save`
//! returns, so an acknowledged vote or append survives `kill -9` and power loss. Each
//! `save` is one transaction with multi-row inserts (group commit). Rows of replicated
//! data carry a checksum (BLAKE3; SHA3 sums from before still read), and the snapshot a
//! digest of its bytes, checked on load:
//! SQLite detects broken pages but not a flipped bit inside a value.

use agora_consensus::raft::{
    EntryData, HardState, LogEntry, NodeId, Recovered, Snapshot, SnapshotMeta,
};
use agora_consensus::replica::Write;
use agora_consensus::storage::{LogStore, StorageError};
use agora_core::hash::tagged_hash;
use agora_core::{Event, TxTrace};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Bytes per stored snapshot chunk.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// The database's file name inside a node's data directory.
pub const STORE_FILE: &str = "node.db";
/// SQLite page size of a database this version creates (an existing file keeps the size
/// it was created with: SQLite cannot change it in WAL mode). Blocks are hundreds of
/// kilobytes stored as chains of overflow pages, and every page costs a WAL frame (a
/// header, a checksum, a write) and a copy at checkpoint: 16 KiB pages cut the store's
/// CPU per transaction by about a fifth against SQLite's 4 KiB default, for about 10%
/// more bytes written (the small tables' pages a height touches are larger;
/// BENCHMARKS.md, "Larger database pages").
pub const PAGE_BYTES: u32 = 16 * 1024;
/// Entries per INSERT statement (each binds 4 values; SQLite allows 32,766).
const ENTRIES_PER_INSERT: usize = 500;

/// The SQLite store.
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    /// The database file's identity (device, inode), which a proven hard state is bound to.
    file_id: Vec<u8>,
    /// Transaction-index rows archived but not yet in the table (`tx_index`).
    recent: tx_index::RecentTxs,
    /// Where the log stands, as of the last committed write; `None`: read it from the
    /// tables (at open, after a snapshot, after a failed write).
    tail: Option<LogTail>,
    /// Copies the WAL back into the file off the writer's path; stops with the store.
    checkpointer: checkpoint::Checkpointer,
}

/// The two facts an append is checked against, kept between writes so that a write that
/// appends costs no reads (each statement is a round trip to sqlx's worker thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LogTail {
    /// The snapshot's last index (0: none).
    snapshot_index: i64,
    /// The index the next appended entry takes: past both the snapshot and the highest
    /// entry kept (archived blocks' entries below the snapshot included).
    next_free: i64,
}

/// The identity of the file at `path`: a copy restored from elsewhere has another.
fn file_identity(path: &Path) -> Result<Vec<u8>, StorageError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| StorageError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    Ok([meta.dev().to_le_bytes(), meta.ino().to_le_bytes()].concat())
}

fn hard_state_checksum(
    alg: Sum,
    term: i64,
    vote: &[u8],
    commit: i64,
    promise: Option<&[u8]>,
) -> Vec<u8> {
    match promise {
        None => checksum(alg, &[&term.to_le_bytes(), vote, &commit.to_le_bytes()]),
        Some(promise) => checksum(
            alg,
            &[
                &term.to_le_bytes(),
                vote,
                &commit.to_le_bytes(),
                b"promise",
                promise,
            ],
        ),
    }
}

/// How a row's checksum is computed. Rows are written with [`Sum::CURRENT`]; a row reads
/// as intact if its checksum matches under any of [`Sum::READ`] (rows written by
/// earlier versions carry SHA3 sums). BLAKE3 because every block is summed twice on its way to
/// disk (log entry and archive row): SHA3 over those bytes was 8% of a node's CPU under
/// load (BENCHMARKS.md). Both are cryptographic, so a corrupted row matching either is
/// out of reach.
#[derive(Clone, Copy, Debug)]
enum Sum {
    Blake3,
    Sha3,
}

impl Sum {
    const CURRENT: Sum = Sum::Blake3;
    const READ: [Sum; 2] = [Sum::Blake3, Sum::Sha3];
}

/// Whether `sum` is the checksum `of` computes under any algorithm rows may carry.
fn sum_matches(sum: &[u8], of: impl Fn(Sum) -> Vec<u8>) -> bool {
    Sum::READ.iter().any(|alg| of(*alg) == sum)
}

fn checksum(alg: Sum, parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        Sum::Blake3 => {
            let mut hasher = blake3::Hasher::new_derive_key("agora/store-row/v2");
            for part in parts {
                hasher.update(part);
            }
            hasher.finalize().as_bytes()[..16].to_vec()
        }
        Sum::Sha3 => tagged_hash(b"agora/store-row/v1", parts).0[..16].to_vec(),
    }
}

fn entry_checksum(alg: Sum, index: i64, term: i64, data: &[u8]) -> Vec<u8> {
    checksum(alg, &[&index.to_le_bytes(), &term.to_le_bytes(), data])
}

/// An archived height's checksum: every column, each length-prefixed (a missing block is
/// told apart from an empty one). The receipts and events columns are summed as stored
/// (borsh, or the JSON text of rows archived before schema 8).
fn archive_checksum(
    alg: Sum,
    height: i64,
    block: Option<&[u8]>,
    receipts: &[u8],
    root: &[u8],
    events: Option<&[u8]>,
) -> Vec<u8> {
    // A missing block is the single byte 0; a present one is 1, its length, its bytes.
    let length = block.map(|b| (b.len() as u64).to_le_bytes());
    let (present, length, bytes): (&[u8], &[u8], &[u8]) = match (block, &length) {
        (Some(b), Some(length)) => (&[1], length, b),
        _ => (&[0], &[], &[]),
    };
    // Events (schema 5) come last, tagged, so a row archived before them sums as it did.
    let events_length = events.map(|e| (e.len() as u64).to_le_bytes());
    let (events_tag, events_length, events): (&[u8], &[u8], &[u8]) = match (events, &events_length)
    {
        (Some(e), Some(length)) => (b"events", length, e),
        _ => (&[], &[], &[]),
    };
    checksum(
        alg,
        &[
            b"archive",
            &height.to_le_bytes(),
            present,
            length,
            bytes,
            &(receipts.len() as u64).to_le_bytes(),
            receipts,
            root,
            events_tag,
            events_length,
            events,
        ],
    )
}

/// The `events` column of an archived height: borsh (the pair `(events, traces)`), or
/// JSON in rows archived before schema 8.
#[derive(serde::Serialize, serde::Deserialize, borsh::BorshDeserialize)]
pub struct EventsColumn {
    /// The height's events, in order.
    pub events: Vec<Event>,
    /// One trace per receipt: which events are whose.
    pub traces: Vec<TxTrace>,
}

/// Index rows per INSERT statement (each binds 3 values).
const INDEX_ROWS_PER_INSERT: usize = 2_000;

fn meta_checksum(alg: Sum, key: &str, value: &[u8]) -> Vec<u8> {
    checksum(
        alg,
        &[
            b"meta",
            &(key.len() as u64).to_le_bytes(),
            key.as_bytes(),
            value,
        ],
    )
}

fn to_i64(value: u64, what: &str) -> Result<i64, StorageError> {
    i64::try_from(value).map_err(|_| StorageError::Misuse(format!("{what} {value} exceeds 2^63")))
}

impl SqliteStore {
    /// Creates a new node's database holding the promise record of a node that has voted
    /// nowhere and acknowledged nothing (`agora-node init`): it starts as an ordinary
    /// voter. A database that lost this record — deleted, or replaced by a copy from
    /// elsewhere — makes the node rejoin before it votes (`raft::rejoin`). Refuses a file
    /// that already exists.
    pub async fn create_new(path: &Path) -> Result<(), StorageError> {
        if path.exists() {
            return Err(StorageError::Io {
                path: path.display().to_string(),
                detail: "already exists; a new node's database is created once".into(),
            });
        }
        let mut store = SqliteStore::open(path).await?;
        let promise = HardState {
            proven: true,
            ..HardState::default()
        };
        store.save(Some(promise), None, &[]).await?;
        store.close().await;
        Ok(())
    }

    /// Opens (creating if missing) the database at `path`, applies migrations and checks
    /// the file's integrity.
    pub async fn open(path: &Path) -> Result<SqliteStore, StorageError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .page_size(PAGE_BYTES)
            .pragma(
                "wal_autocheckpoint",
                checkpoint::FALLBACK_CHECKPOINT_PAGES.to_string(),
            )
            .busy_timeout(Duration::from_secs(5));
        let store_path = path.display().to_string();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            // An in-process connection does not go stale: no ping (a round trip to sqlx's
            // worker thread) before every write.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(|e| classify(&store_path, e))?;
        let store = SqliteStore {
            pool,
            path: path.to_path_buf(),
            file_id: file_identity(path)?,
            recent: tx_index::RecentTxs::default(),
            tail: None,
            checkpointer: checkpoint::Checkpointer::start(&options, store_path.clone()),
        };
        let check: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&store.pool)
            .await
            .map_err(|e| store.error(e))?;
        if check != "ok" {
            return Err(StorageError::Corrupt {
                path: store.path_string(),
                detail: integrity_summary(&check),
            });
        }
        sqlx::migrate!("./migrations")
            .run(&store.pool)
            .await
            .map_err(|e| StorageError::Corrupt {
                path: store.path_string(),
                detail: format!("schema migration failed: {e}"),
            })?;
        store.checksum_unsummed_rows().await?;
        store.recover_tx_index().await?;
        Ok(store)
    }

    /// Rows archived before schema 3 have no checksum: they get one now, once.
    async fn checksum_unsummed_rows(&self) -> Result<(), StorageError> {
        let rows = sqlx::query(
            "SELECT height, block, receipts, state_root, events FROM blocks WHERE checksum IS NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        for row in rows {
            let height: i64 = row.try_get("height").map_err(|e| self.error(e))?;
            let block: Option<Vec<u8>> = row.try_get("block").map_err(|e| self.error(e))?;
            let receipts: Vec<u8> = row.try_get("receipts").map_err(|e| self.error(e))?;
            let root: Vec<u8> = row.try_get("state_root").map_err(|e| self.error(e))?;
            let events: Option<Vec<u8>> = row.try_get("events").map_err(|e| self.error(e))?;
            sqlx::query("UPDATE blocks SET checksum = ? WHERE height = ?")
                .bind(archive_checksum(
                    Sum::CURRENT,
                    height,
                    block.as_deref(),
                    &receipts,
                    &root,
                    events.as_deref(),
                ))
                .bind(height)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
        }
        let rows = sqlx::query("SELECT key, value FROM node_meta WHERE checksum IS NULL")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        for row in rows {
            let key: String = row.try_get("key").map_err(|e| self.error(e))?;
            let value: Vec<u8> = row.try_get("value").map_err(|e| self.error(e))?;
            sqlx::query("UPDATE node_meta SET checksum = ? WHERE key = ?")
                .bind(meta_checksum(Sum::CURRENT, &key, &value))
                .bind(&key)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    fn path_string(&self) -> String {
        self.path.display().to_string()
    }

    fn error(&self, error: sqlx::Error) -> StorageError {
        classify(&self.path_string(), error)
    }

    fn corrupt(&self, detail: impl Into<String>) -> StorageError {
        corrupt(self.path_string(), detail)
    }

    #[cfg(test)]
    pub(crate) fn pool_for_tests(&self) -> SqlitePool {
        self.pool.clone()
    }

    /// Carries out a replica's writes, in order, as one transaction (one fsync): either all
    /// of them are durable when this returns `Ok`, or none.
    pub async fn write(&mut self, writes: &[Write]) -> Result<(), StorageError> {
        if writes.is_empty() {
            return Ok(());
        }
        // Taken out: a write that fails leaves none (the tables are read again).
        let mut tail = self.tail.take();
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        // The archived heights' index rows: into the table in batches (`tx_index`).
        let mut index_rows = Vec::new();
        let mut highest = None;
        for write in writes {
            match write {
                Write::Log {
                    hard_state,
                    snapshot,
                    entries,
                } => {
                    self.save_in(&mut tx, *hard_state, snapshot.as_ref(), entries, &mut tail)
                        .await?
                }
                Write::Archive {
                    entry,
                    receipts,
                    events,
                    traces,
                    state_root,
                } => {
                    let block = match &entry.data {
                        EntryData::Normal(bytes) => Some(&bytes[..]),
                        _ => None,
                    };
                    // Schema 8: borsh, not JSON (reader::ArchivedColumn).
                    let receipts_column = borsh::to_vec(receipts).expect("in memory");
                    let events_column = borsh::to_vec(&(events, traces)).expect("in memory");
                    let height = to_i64(entry.index, "height")?;
                    let sum = archive_checksum(
                        Sum::CURRENT,
                        height,
                        block,
                        &receipts_column,
                        &state_root.0,
                        Some(&events_column),
                    );
                    // Stored once (schema 7): a block whose entry this log holds (same
                    // index and term: the same entry) is read from there.
                    sqlx::query(
                        "INSERT OR REPLACE INTO blocks (height, block, receipts, state_root, checksum, events, in_log) \
                         SELECT ?1, CASE WHEN found THEN NULL ELSE ?2 END, ?3, ?4, ?5, ?6, found \
                         FROM (SELECT ?2 IS NOT NULL AND EXISTS (SELECT 1 FROM entries WHERE idx = ?1 AND term = ?7) AS found)",
                    )
                        .bind(height)
                        .bind(block)
                        .bind(receipts_column)
                        .bind(&state_root.0[..])
                        .bind(sum)
                        .bind(events_column)
                        .bind(to_i64(entry.term, "term")?)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.error(e))?;
                    index_rows.extend(tx_index::rows_of(height, receipts));
                    highest = highest.max(Some(height));
                    self.index_certificates(&mut tx, height, events).await?;
                }
            }
        }
        let flushed = self.index_if_due(&mut tx, &index_rows, highest).await?;
        // Dropping `tx` on an error above rolls everything back.
        tx.commit().await.map_err(|e| self.error(e))?;
        self.tail = tail;
        self.indexed(&index_rows, highest, flushed);
        Ok(())
    }

    /// Records that the block at `height` carries the certificate of each height its
    /// `certified` events name.
    async fn index_certificates(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        height: i64,
        events: &[Event],
    ) -> Result<(), StorageError> {
        for event in events {
            if let Event::Certified {
                height: certified, ..
            } = event
            {
                sqlx::query(
                    "INSERT OR REPLACE INTO certificate_index (height, carried_in) VALUES (?, ?)",
                )
                .bind(to_i64(*certified, "certified height")?)
                .bind(height)
                .execute(&mut **tx)
                .await
                .map_err(|e| self.error(e))?;
            }
        }
        Ok(())
    }

    /// The durable parts of one `Ready`, inside a transaction (storage contract rule 3).
    async fn save_in(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        hard_state: Option<HardState>,
        snapshot: Option<&Snapshot>,
        entries: &[LogEntry],
        tail: &mut Option<LogTail>,
    ) -> Result<(), StorageError> {
        if let Some(snapshot) = snapshot {
            self.write_snapshot(tx, snapshot).await?;
            // Compaction may have removed entries: read the tail again when needed.
            *tail = None;
        }
        if let Some(hard_state) = hard_state {
            let term = to_i64(hard_state.term, "term")?;
            let commit = to_i64(hard_state.commit, "commit index")?;
            let vote = hard_state
                .vote
                .map(|v| borsh::to_vec(&v).expect("in memory"));
            let promise = hard_state.proven.then_some(self.file_id.as_slice());
            let sum = hard_state_checksum(
                Sum::CURRENT,
                term,
                vote.as_deref().unwrap_or_default(),
                commit,
                promise,
            );
            sqlx::query("INSERT OR REPLACE INTO hard_state (id, term, vote, commit_index, checksum, promise) VALUES (0, ?, ?, ?, ?, ?)")
                .bind(term)
                .bind(vote)
                .bind(commit)
                .bind(sum)
                .bind(promise)
                .execute(&mut **tx)
                .await
                .map_err(|e| self.error(e))?;
        }
        self.write_entries(tx, entries, tail).await?;
        Ok(())
    }

    /// The log's tail as the tables hold it.
    async fn read_tail(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<LogTail, StorageError> {
        let snapshot_index: i64 =
            match sqlx::query_scalar::<_, Vec<u8>>("SELECT meta FROM snapshot_meta WHERE id = 0")
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| self.error(e))?
            {
                Some(bytes) => to_i64(
                    borsh::from_slice::<SnapshotMeta>(&bytes)
                        .map_err(|e| self.corrupt(e.to_string()))?
                        .index,
                    "index",
                )?,
                None => 0,
            };
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(idx) FROM entries")
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| self.error(e))?;
        // Entries kept below the snapshot for the archive are not the log's.
        Ok(LogTail {
            snapshot_index,
            next_free: last.unwrap_or(0).max(snapshot_index) + 1,
        })
    }

    /// A handle that reads the block archive from another task.
    pub fn reader(&self) -> StoreReader {
        StoreReader {
            pool: self.pool.clone(),
            path: self.path_string(),
            recent: self.recent.clone(),
        }
    }

    /// Closes the pool, flushing the WAL (the checkpointer's connection closes first, so
    /// that the pool's is the last: it copies the WAL back and removes it).
    pub async fn close(self) {
        self.checkpointer.stop().await;
        self.pool.close().await;
    }

    async fn load_snapshot(&self) -> Result<Option<Snapshot>, StorageError> {
        let Some(row) =
            sqlx::query("SELECT meta, total_bytes, data_digest FROM snapshot_meta WHERE id = 0")
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        let meta_bytes: Vec<u8> = row.try_get("meta").map_err(|e| self.error(e))?;
        let total: i64 = row.try_get("total_bytes").map_err(|e| self.error(e))?;
        let digest: Vec<u8> = row.try_get("data_digest").map_err(|e| self.error(e))?;
        let meta: SnapshotMeta = borsh::from_slice(&meta_bytes)
            .map_err(|e| self.corrupt(format!("snapshot metadata: {e}")))?;
        let chunks = sqlx::query("SELECT data FROM snapshot_chunks ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        let mut data = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for chunk in chunks {
            let bytes: Vec<u8> = chunk.try_get("data").map_err(|e| self.error(e))?;
            data.extend_from_slice(&bytes);
        }
        if data.len() as i64 != total
            || !sum_matches(&digest, |alg| checksum(alg, &[&meta_bytes, &data]))
        {
            return Err(self.corrupt(format!(
                "snapshot at index {} fails its digest ({} of {total} bytes)",
                meta.index,
                data.len()
            )));
        }
        Ok(Some(Snapshot {
            meta,
            data: Arc::new(data),
        }))
    }

    async fn write_snapshot(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        snapshot: &Snapshot,
    ) -> Result<(), StorageError> {
        let current: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT meta FROM snapshot_meta WHERE id = 0")
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| self.error(e))?;
        let mut previous = 0;
        if let Some(bytes) = current {
            let stored: SnapshotMeta = borsh::from_slice(&bytes)
                .map_err(|e| self.corrupt(format!("snapshot metadata: {e}")))?;
            if stored.index >= snapshot.meta.index {
                return Ok(());
            }
            previous = to_i64(stored.index, "snapshot index")?;
        }
        let index = to_i64(snapshot.meta.index, "snapshot index")?;
        let term = to_i64(snapshot.meta.term, "snapshot term")?;
        let matching: Option<i64> =
            sqlx::query_scalar("SELECT idx FROM entries WHERE idx = ? AND term = ?")
                .bind(index)
                .bind(term)
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| self.error(e))?;
        // Keep the suffix only if the log holds the snapshot's last entry (§7). Below the
        // snapshot, entries that hold archived blocks stay (schema 7); those below the
        // previous snapshot are all such entries, so only the span since is looked at.
        let delete = if matching.is_some() {
            "DELETE FROM entries WHERE idx <= ?1 AND idx > ?2 \
             AND NOT EXISTS (SELECT 1 FROM blocks WHERE height = idx AND in_log = 1)"
        } else {
            "DELETE FROM entries WHERE idx > ?1 OR (idx > ?2 \
             AND NOT EXISTS (SELECT 1 FROM blocks WHERE height = idx AND in_log = 1))"
        };
        sqlx::query(delete)
            .bind(index)
            .bind(previous)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.error(e))?;
        let meta_bytes = borsh::to_vec(&snapshot.meta).expect("in memory");
        let digest = checksum(Sum::CURRENT, &[&meta_bytes, &snapshot.data]);
        sqlx::query("DELETE FROM snapshot_chunks")
            .execute(&mut **tx)
            .await
            .map_err(|e| self.error(e))?;
        for (seq, chunk) in snapshot.data.chunks(SNAPSHOT_CHUNK_BYTES).enumerate() {
            sqlx::query("INSERT INTO snapshot_chunks (seq, data) VALUES (?, ?)")
                .bind(seq as i64)
                .bind(chunk)
                .execute(&mut **tx)
                .await
                .map_err(|e| self.error(e))?;
        }
        sqlx::query("INSERT OR REPLACE INTO snapshot_meta (id, meta, total_bytes, data_digest) VALUES (0, ?, ?, ?)")
            .bind(&meta_bytes)
            .bind(snapshot.data.len() as i64)
            .bind(&digest)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn write_entries(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        entries: &[LogEntry],
        tail: &mut Option<LogTail>,
    ) -> Result<(), StorageError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let first_index = to_i64(first.index, "entry index")?;
        let known = match *tail {
            Some(known) => known,
            None => self.read_tail(tx).await?,
        };
        if first_index <= known.snapshot_index || first_index > known.next_free {
            return Err(StorageError::Misuse(format!(
                "entries from {first_index} do not continue a log ending at {}",
                known.next_free - 1
            )));
        }
        // An append past the end has nothing to replace; only a conflict truncates.
        if first_index < known.next_free {
            sqlx::query("DELETE FROM entries WHERE idx >= ?")
                .bind(first_index)
                .execute(&mut **tx)
                .await
                .map_err(|e| self.error(e))?;
        }
        *tail = Some(LogTail {
            snapshot_index: known.snapshot_index,
            next_free: to_i64(last.index, "entry index")? + 1,
        });
        for batch in entries.chunks(ENTRIES_PER_INSERT) {
            let mut sql = String::from("INSERT INTO entries (idx, term, data, checksum) VALUES ");
            sql.push_str(&vec!["(?, ?, ?, ?)"; batch.len()].join(", "));
            // Only placeholders are interpolated; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for entry in batch {
                let index = to_i64(entry.index, "entry index")?;
                let term = to_i64(entry.term, "entry term")?;
                let data = borsh::to_vec(&entry.data).expect("in memory");
                let sum = entry_checksum(Sum::CURRENT, index, term, &data);
                query = query.bind(index).bind(term).bind(data).bind(sum);
            }
            query.execute(&mut **tx).await.map_err(|e| self.error(e))?;
        }
        Ok(())
    }
}

impl LogStore for SqliteStore {
    async fn load(&self) -> Result<Recovered, StorageError> {
        let hard_state = match sqlx::query(
            "SELECT term, vote, commit_index, checksum, promise FROM hard_state WHERE id = 0",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.error(e))?
        {
            None => HardState::default(),
            Some(row) => {
                let term: i64 = row.try_get("term").map_err(|e| self.error(e))?;
                let vote: Option<Vec<u8>> = row.try_get("vote").map_err(|e| self.error(e))?;
                let commit: i64 = row.try_get("commit_index").map_err(|e| self.error(e))?;
                let sum: Vec<u8> = row.try_get("checksum").map_err(|e| self.error(e))?;
                let promise: Option<Vec<u8>> = row.try_get("promise").map_err(|e| self.error(e))?;
                let vote_bytes = vote.clone().unwrap_or_default();
                if !sum_matches(&sum, |alg| {
                    hard_state_checksum(alg, term, &vote_bytes, commit, promise.as_deref())
                }) {
                    return Err(self.corrupt("hard state fails its checksum"));
                }
                let vote = match vote {
                    None => None,
                    Some(bytes) => Some(
                        borsh::from_slice::<NodeId>(&bytes)
                            .map_err(|e| self.corrupt(format!("vote: {e}")))?,
                    ),
                };
                HardState {
                    term: term as u64,
                    vote,
                    commit: commit as u64,
                    // Made in this very file: a restored copy is another file.
                    proven: promise.as_deref() == Some(self.file_id.as_slice()),
                }
            }
        };
        let snapshot = self.load_snapshot().await?;
        let snapshot_index = snapshot.as_ref().map_or(0, |s| s.meta.index);
        // Below the snapshot, entries are kept only for the block archive (schema 7).
        let rows =
            sqlx::query("SELECT idx, term, data, checksum FROM entries WHERE idx > ? ORDER BY idx")
                .bind(to_i64(snapshot_index, "snapshot index")?)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let index: i64 = row.try_get("idx").map_err(|e| self.error(e))?;
            let term: i64 = row.try_get("term").map_err(|e| self.error(e))?;
            let data: Vec<u8> = row.try_get("data").map_err(|e| self.error(e))?;
            let sum: Vec<u8> = row.try_get("checksum").map_err(|e| self.error(e))?;
            if !sum_matches(&sum, |alg| entry_checksum(alg, index, term, &data)) {
                return Err(self.corrupt(format!("log entry {index} fails its checksum")));
            }
            let expected = snapshot_index + entries.len() as u64 + 1;
            if index as u64 != expected {
                return Err(self.corrupt(format!(
                    "log has a gap: entry {index} where {expected} was expected"
                )));
            }
            let data: EntryData = borsh::from_slice(&data)
                .map_err(|e| self.corrupt(format!("log entry {index}: {e}")))?;
            entries.push(LogEntry {
                index: index as u64,
                term: term as u64,
                data,
            });
        }
        Ok(Recovered {
            hard_state,
            snapshot,
            entries,
        })
    }

    async fn save(
        &mut self,
        hard_state: Option<HardState>,
        snapshot: Option<&Snapshot>,
        entries: &[LogEntry],
    ) -> Result<(), StorageError> {
        if hard_state.is_none() && snapshot.is_none() && entries.is_empty() {
            return Ok(());
        }
        // Taken out: a write that fails leaves none (the tables are read again).
        let mut tail = self.tail.take();
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        self.save_in(&mut tx, hard_state, snapshot, entries, &mut tail)
            .await?;
        // Dropping `tx` on an error above rolls everything back.
        tx.commit().await.map_err(|e| self.error(e))?;
        self.tail = tail;
        Ok(())
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let row: Option<(Vec<u8>, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT value, checksum FROM node_meta WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
        match row {
            None => Ok(None),
            Some((value, Some(sum)))
                if sum_matches(&sum, |alg| meta_checksum(alg, key, &value)) =>
            {
                Ok(Some(value))
            }
            Some(_) => Err(self.corrupt(format!("node record {key:?} fails its checksum"))),
        }
    }

    async fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        sqlx::query("INSERT OR REPLACE INTO node_meta (key, value, checksum) VALUES (?, ?, ?)")
            .bind(key)
            .bind(value)
            .bind(meta_checksum(Sum::CURRENT, key, value))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }
}

/// SQLite's integrity report, for an operator: how many problems, and the first one (the
/// report lists every damaged page, which says nothing more to a person).
fn integrity_summary(report: &str) -> String {
    let problems: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("***"))
        .collect();
    let first = problems.first().copied().unwrap_or(report);
    let first: String = first.chars().take(120).collect();
    format!(
        "SQLite's integrity check found {} damaged page(s) or record(s) (first: {first})",
        problems.len().max(1)
    )
}

/// Tells corruption (which needs an operator) from other failures.
fn classify(path: &str, error: sqlx::Error) -> StorageError {
    let text = error.to_string();
    // A column that no longer decodes to its type (text that is not UTF-8) is damaged data.
    let corrupt = [
        "malformed",
        "not a database",
        "corrupt",
        "disk image",
        "while decoding column",
    ]
    .iter()
    .any(|needle| text.contains(needle));
    if corrupt {
        StorageError::Corrupt {
            path: path.to_string(),
            detail: text,
        }
    } else if text.contains("disk is full") {
        StorageError::Io {
            path: path.to_string(),
            detail: format!(
                "{text}. The last write was rolled back and nothing that depended on it was \
                 sent. Free space on the file system that holds {path} and start the node \
                 again: it catches up from its peers"
            ),
        }
    } else {
        StorageError::Io {
            path: path.to_string(),
            detail: text,
        }
    }
}

/// Stored data at `path` fails its checks.
fn corrupt(path: String, detail: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        path,
        detail: detail.into(),
    }
}

mod checkpoint;
mod reader;
mod tx_index;
pub use reader::StoreReader;

#[cfg(test)]
mod archive_format_tests;
#[cfg(test)]
mod conformance_tests;
