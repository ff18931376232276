//! The transaction index (`tx_index`: hash → height, position), written in batches.
//!
//! The index is keyed by transaction hash, so its inserts land on random pages of its
//! B-tree: indexing each height as it was archived rewrote a page of the index for almost
//! every transaction (~65 of ~450 pages for a height of 70 transactions in a 20-second
//! benchmark), as many bytes as the block itself, twice over counting the WAL checkpoint.
//! Rows now wait in memory ([`RecentTxs`], shared with the readers, which look there too)
//! until [`FLUSH_ROWS`] are pending, or the mark below lags the archive by
//! [`MARK_LAG_HEIGHTS`], then go in, sorted, in one write: each index page is rewritten
//! once per batch rather than once per height.
//!
//! Nothing is lost in a crash: the rows are derived from the archived receipts, which are
//! durable when their height's write commits. `node_meta` key [`THROUGH_KEY`] records the
//! height through which every archived height's rows are in the table, and opening the
//! store reads the receipts of the heights after it back into memory.

use super::{corrupt, meta_checksum, SqliteStore, Sum, INDEX_ROWS_PER_INSERT};
use agora_consensus::storage::{LogStore, StorageError};
use agora_core::{Hash32, Receipt};
use sqlx::{Sqlite, Transaction};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Pending rows that make a batch: the index takes them in one write.
pub(super) const FLUSH_ROWS: usize = 8_192;

/// The most heights the mark may lag the archive (an idle chain's empty heights included),
/// which bounds what opening the store reads back.
pub(super) const MARK_LAG_HEIGHTS: i64 = 1_024;

/// `node_meta` key: the height (u64, little endian) through which every archived height's
/// transactions are in `tx_index`.
pub(super) const THROUGH_KEY: &str = "tx_index_through";

/// Where a transaction committed: (height, position).
type Place = (i64, i64);

#[derive(Default)]
struct Pending {
    /// Rows archived but not yet in the table, each hash at its first place.
    rows: BTreeMap<Hash32, Place>,
    /// The highest height archived (committed) so far.
    archived_through: i64,
    /// The mark as stored: the table holds every row of the heights through it.
    marked: i64,
}

/// Index rows archived but not yet in the table; shared by the store and its readers.
#[derive(Clone, Default)]
pub struct RecentTxs(Arc<Mutex<Pending>>);

impl RecentTxs {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Only map operations run under the lock; a panic there leaves a usable map.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where `hash` committed first, if it waits here.
    pub(super) fn place(&self, hash: &Hash32) -> Option<Place> {
        self.lock().rows.get(hash).copied()
    }

    /// Rows waiting.
    pub(super) fn len(&self) -> usize {
        self.lock().rows.len()
    }

    /// The highest archived height.
    fn archived_through(&self) -> i64 {
        self.lock().archived_through
    }

    /// The stored mark.
    fn marked(&self) -> i64 {
        self.lock().marked
    }

    /// Records a committed write's rows (`flushed`: the mark it stored, with which they
    /// and everything waiting went into the table).
    fn committed(&self, rows: &[(Hash32, Place)], highest: Option<i64>, flushed: Option<i64>) {
        let mut pending = self.lock();
        if let Some(mark) = flushed {
            pending.rows.clear();
            pending.marked = mark;
        } else {
            add_first_places(&mut pending.rows, rows);
        }
        if let Some(height) = highest {
            pending.archived_through = pending.archived_through.max(height);
        }
    }

    /// Everything waiting, with `rows` added.
    fn merged(&self, rows: &[(Hash32, Place)]) -> BTreeMap<Hash32, Place> {
        let mut all = self.lock().rows.clone();
        add_first_places(&mut all, rows);
        all
    }
}

/// Adds `rows`, keeping each hash's lowest place (a transaction included again fails on
/// its nonce and keeps its first place).
fn add_first_places(map: &mut BTreeMap<Hash32, Place>, rows: &[(Hash32, Place)]) {
    for &(hash, place) in rows {
        map.entry(hash)
            .and_modify(|kept| *kept = (*kept).min(place))
            .or_insert(place);
    }
}

/// The index rows of one archived height.
pub(super) fn rows_of(
    height: i64,
    receipts: &[Receipt],
) -> impl Iterator<Item = (Hash32, Place)> + '_ {
    receipts
        .iter()
        .enumerate()
        .map(move |(position, receipt)| (receipt.tx_hash, (height, position as i64)))
}

impl SqliteStore {
    /// Inside a write's transaction, before it commits: whether the waiting rows and this
    /// write's `rows` make a batch, and if so their insertion (with the new mark).
    pub(super) async fn index_if_due(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        rows: &[(Hash32, Place)],
        highest: Option<i64>,
    ) -> Result<Option<i64>, StorageError> {
        let through = highest.unwrap_or(0).max(self.recent.archived_through());
        let full = self.recent.len() + rows.len() >= FLUSH_ROWS;
        if !full && through - self.recent.marked() < MARK_LAG_HEIGHTS {
            return Ok(None);
        }
        self.insert_index_rows(tx, &self.recent.merged(rows), through)
            .await?;
        Ok(Some(through))
    }

    /// After a write committed (`flushed`: the mark [`SqliteStore::index_if_due`] stored).
    pub(super) fn indexed(
        &self,
        rows: &[(Hash32, Place)],
        highest: Option<i64>,
        flushed: Option<i64>,
    ) {
        self.recent.committed(rows, highest, flushed);
    }

    /// Puts every waiting row into the table now (one write).
    pub async fn flush_tx_index(&mut self) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        let through = self.recent.archived_through();
        self.insert_index_rows(&mut tx, &self.recent.merged(&[]), through)
            .await?;
        tx.commit().await.map_err(|e| self.error(e))?;
        self.recent.committed(&[], None, Some(through));
        Ok(())
    }

    async fn insert_index_rows(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        rows: &BTreeMap<Hash32, Place>,
        through: i64,
    ) -> Result<(), StorageError> {
        let rows: Vec<(&Hash32, &Place)> = rows.iter().collect();
        for chunk in rows.chunks(INDEX_ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO tx_index (hash, height, position) ",
            );
            insert.push_values(chunk, |mut row, (hash, (height, position))| {
                row.push_bind(hash.0.to_vec())
                    .push_bind(*height)
                    .push_bind(*position);
            });
            insert
                .build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.error(e))?;
        }
        self.set_through(tx, through).await
    }

    async fn set_through(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        height: i64,
    ) -> Result<(), StorageError> {
        let value = height.to_le_bytes();
        sqlx::query("INSERT OR REPLACE INTO node_meta (key, value, checksum) VALUES (?, ?, ?)")
            .bind(THROUGH_KEY)
            .bind(&value[..])
            .bind(meta_checksum(Sum::CURRENT, THROUGH_KEY, &value))
            .execute(&mut **tx)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// At open: the rows of the heights archived after the mark, back into memory. A
    /// store without the mark indexed every height as it archived it (before batches): it
    /// gets the mark at its highest archived height.
    pub(super) async fn recover_tx_index(&self) -> Result<(), StorageError> {
        let through = match self.get_meta(THROUGH_KEY).await? {
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                    corrupt(self.path_string(), format!("{THROUGH_KEY} is not 8 bytes"))
                })?;
                i64::from_le_bytes(bytes)
            }
            None => {
                let highest: Option<i64> = sqlx::query_scalar("SELECT MAX(height) FROM blocks")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.error(e))?;
                let highest = highest.unwrap_or(0);
                let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
                self.set_through(&mut tx, highest).await?;
                tx.commit().await.map_err(|e| self.error(e))?;
                highest
            }
        };
        // Each row read back is checked against its checksum, as a reader would.
        let heights: Vec<i64> =
            sqlx::query_scalar("SELECT height FROM blocks WHERE height > ? ORDER BY height")
                .bind(through)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
        let reader = self.reader();
        let mut rows = Vec::new();
        let mut highest = None;
        for height in heights {
            let archived = reader.archived(height as u64).await?.ok_or_else(|| {
                corrupt(
                    self.path_string(),
                    format!("archived height {height} vanished"),
                )
            })?;
            rows.extend(rows_of(height, &archived.receipts));
            highest = Some(height);
        }
        self.recent.lock().marked = through;
        // Every height read back is after the mark.
        self.recent
            .committed(&rows, Some(highest.unwrap_or(through)), None);
        Ok(())
    }
}
