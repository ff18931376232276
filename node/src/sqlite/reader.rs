//! Reads of the block archive and the transaction index, from any task; every row is
//! checked against its checksum before it is answered.

use super::{archive_checksum, classify, corrupt, sum_matches, EventsColumn};
use agora_api::{ApiError, BlockResponse, CertifiedHeight, CommittedTx};
use agora_consensus::raft::EntryData;
use agora_consensus::replica::ArchivedEntry;
use agora_consensus::storage::StorageError;
use agora_core::block::Block;
use agora_core::encoding::Canonical;
use agora_core::outcome::tx_events;
use agora_core::{Event, Hash32, Receipt, TxTrace};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool, TypeInfo, ValueRef};

/// An archived height's receipts or events column as stored: borsh in a BLOB (schema 8
/// on), or JSON text in a row archived before.
pub(super) struct ArchivedColumn {
    bytes: Vec<u8>,
    json: bool,
}

impl ArchivedColumn {
    /// Column `name` of `row`; none if it is NULL.
    pub(super) fn read(row: &SqliteRow, name: &str) -> Result<Option<Self>, sqlx::Error> {
        let json = row.try_get_raw(name)?.type_info().name() == "TEXT";
        let bytes: Option<Vec<u8>> = row.try_get(name)?;
        Ok(bytes.map(|bytes| ArchivedColumn { bytes, json }))
    }

    /// The bytes the row's checksum covers.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The value, decoded as it was written.
    pub(super) fn decode<T>(&self) -> Result<T, String>
    where
        T: borsh::BorshDeserialize + serde::de::DeserializeOwned,
    {
        if self.json {
            serde_json::from_slice(&self.bytes).map_err(|e| e.to_string())
        } else {
            borsh::from_slice(&self.bytes).map_err(|e| e.to_string())
        }
    }
}

/// One archived height, checked against its checksum.
pub(super) struct ArchivedRow {
    block: Option<Vec<u8>>,
    pub(super) receipts: Vec<Receipt>,
    events: Vec<Event>,
    traces: Vec<TxTrace>,
    state_root: Hash32,
}

/// Reads the block archive; cheap to clone, usable from any task.
#[derive(Clone)]
pub struct StoreReader {
    pub(super) pool: SqlitePool,
    pub(super) path: String,
    /// Index rows not yet in `tx_index`.
    pub(super) recent: super::tx_index::RecentTxs,
}

impl StoreReader {
    /// What the archive holds for `height`: the block (none for a no-op or configuration
    /// entry), its receipts and the root after it; none if the height is not archived.
    pub async fn block(&self, height: u64) -> Result<Option<BlockResponse>, StorageError> {
        let Some(row) = self.archived(height).await? else {
            return Ok(None);
        };
        let block = row
            .block
            .map(|bytes| Block::from_canonical_bytes(&bytes))
            .transpose()
            .map_err(|e| self.corrupt(format!("archived block {height}: {e}")))?;
        Ok(Some(BlockResponse {
            height,
            block,
            receipts: row.receipts,
            events: row.events,
            traces: row.traces,
            state_root: row.state_root,
        }))
    }

    /// Where the transaction `hash` committed, from the index, checked against the
    /// archived receipt; none if this node's archive does not hold it.
    pub async fn tx(&self, hash: &Hash32) -> Result<Option<CommittedTx>, StorageError> {
        // The rows waiting in memory first: a batch that goes into the table meanwhile
        // leaves them there only once it committed, so one of the two places holds it.
        let waiting = self.recent.place(hash);
        let stored: Option<(i64, i64)> =
            sqlx::query_as("SELECT height, position FROM tx_index WHERE hash = ?")
                .bind(&hash.0[..])
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| classify(&self.path, e))?;
        // Both, for a transaction included again later: the first place.
        let found = match (waiting, stored) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some((height, position)) = found else {
            return Ok(None);
        };
        let misplaced = || {
            self.corrupt(format!(
                "the transaction index places {hash} at height {height}, position {position}, where the archive does not hold it"
            ))
        };
        let (Ok(height), Ok(position)) = (u64::try_from(height), u32::try_from(position)) else {
            return Err(misplaced());
        };
        let row = self.archived(height).await?.ok_or_else(misplaced)?;
        let receipt = row
            .receipts
            .get(position as usize)
            .filter(|r| r.tx_hash == *hash)
            .cloned()
            .ok_or_else(misplaced)?;
        let events = tx_events(&row.traces, &row.events, position as usize)
            .map(<[Event]>::to_vec)
            .unwrap_or_default();
        Ok(Some(CommittedTx {
            hash: *hash,
            height,
            position,
            sender: row.traces.get(position as usize).and_then(|t| t.sender),
            receipt,
            events,
            state_root: row.state_root,
        }))
    }

    /// Certified heights from `from` up (at most `limit`), or without `from` the newest:
    /// each with its state root and the certificate, found in the archived block that
    /// carries it. A certified height this node has no archive of (it caught up by
    /// snapshot) is left out.
    pub async fn certified(
        &self,
        from: Option<u64>,
        limit: u64,
    ) -> Result<Vec<CertifiedHeight>, StorageError> {
        let error = |e| classify(&self.path, e);
        let rows: Vec<(i64, i64)> = match from {
            Some(from) => sqlx::query_as(
                "SELECT height, carried_in FROM certificate_index WHERE height >= ? ORDER BY height LIMIT ?",
            )
            .bind(i64::try_from(from).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
            None => sqlx::query_as(
                "SELECT height, carried_in FROM certificate_index ORDER BY height DESC LIMIT 1",
            ),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        let mut certified = Vec::with_capacity(rows.len());
        let mut carrier: Option<(u64, Block)> = None;
        for (height, carried_in) in rows {
            let misplaced = || {
                self.corrupt(format!(
                    "the certificate index places height {height}'s certificate in block {carried_in}, which does not hold it"
                ))
            };
            let (Ok(height), Ok(carried_in)) = (u64::try_from(height), u64::try_from(carried_in))
            else {
                return Err(misplaced());
            };
            let Some(own) = self.archived(height).await? else {
                continue;
            };
            if carrier.as_ref().is_none_or(|(at, _)| *at != carried_in) {
                let row = self.archived(carried_in).await?.ok_or_else(misplaced)?;
                let bytes = row.block.ok_or_else(misplaced)?;
                let block = Block::from_canonical_bytes(&bytes)
                    .map_err(|e| self.corrupt(format!("archived block {carried_in}: {e}")))?;
                carrier = Some((carried_in, block));
            }
            let block = &carrier.as_ref().expect("just read").1;
            let certificate = block
                .certificates
                .iter()
                .find(|c| c.height == height)
                .cloned()
                .ok_or_else(misplaced)?;
            let header = own
                .block
                .map(|bytes| Block::from_canonical_bytes(&bytes).map(|b| b.header))
                .transpose()
                .map_err(|e| self.corrupt(format!("archived block {height}: {e}")))?;
            certified.push(CertifiedHeight {
                height,
                state_root: own.state_root,
                certificate,
                carried_in,
                header,
            });
        }
        Ok(certified)
    }

    /// One archived height for a past-height proof; an answer for the client if missing.
    pub async fn archived_entry(&self, height: u64) -> Result<ArchivedEntry, ApiError> {
        let ArchivedRow {
            block, state_root, ..
        } = self
            .archived(height)
            .await
            .map_err(|e| ApiError::new(500, "storage", e.to_string()))?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "this node has no archive of height {height} (it caught up by snapshot); ask another node"
                ))
            })?;
        Ok(ArchivedEntry {
            height,
            block,
            state_root,
        })
    }

    pub(super) async fn archived(&self, height: u64) -> Result<Option<ArchivedRow>, StorageError> {
        let error = |e| classify(&self.path, e);
        let Ok(height) = i64::try_from(height) else {
            return Ok(None); // no chain gets that high
        };
        // A block stored once (schema 7) is read from its log entry.
        let row = sqlx::query(
            "SELECT b.block, b.in_log, e.data AS entry, b.receipts, b.state_root, b.checksum, b.events \
             FROM blocks b LEFT JOIN entries e ON b.in_log = 1 AND e.idx = b.height WHERE b.height = ?",
        )
        .bind(height)
        .fetch_optional(&self.pool)
        .await
        .map_err(error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut block: Option<Vec<u8>> = row.try_get("block").map_err(error)?;
        if row.try_get::<bool, _>("in_log").map_err(error)? {
            let entry: Option<Vec<u8>> = row.try_get("entry").map_err(error)?;
            let entry = entry.ok_or_else(|| {
                self.corrupt(format!(
                    "archived height {height} is stored in its log entry, and the log has no entry {height}"
                ))
            })?;
            match borsh::from_slice::<EntryData>(&entry) {
                Ok(EntryData::Normal(bytes)) => {
                    block = Some(std::sync::Arc::unwrap_or_clone(bytes))
                }
                _ => {
                    return Err(self.corrupt(format!(
                        "archived height {height} fails its checksum (its log entry holds no block)"
                    )))
                }
            }
        }
        let receipts = ArchivedColumn::read(&row, "receipts")
            .map_err(error)?
            .ok_or_else(|| self.corrupt(format!("archived height {height} has no receipts")))?;
        let root: Vec<u8> = row.try_get("state_root").map_err(error)?;
        let sum: Option<Vec<u8>> = row.try_get("checksum").map_err(error)?;
        let events = ArchivedColumn::read(&row, "events").map_err(error)?;
        let intact = sum.is_some_and(|sum| {
            sum_matches(&sum, |alg| {
                archive_checksum(
                    alg,
                    height,
                    block.as_deref(),
                    receipts.bytes(),
                    &root,
                    events.as_ref().map(ArchivedColumn::bytes),
                )
            })
        });
        if !intact {
            return Err(self.corrupt(format!(
                "archived height {height} fails its checksum (its block, receipts or state root changed on disk)"
            )));
        }
        let receipts = receipts
            .decode()
            .map_err(|e| self.corrupt(format!("archived receipts of height {height}: {e}")))?;
        let root = <[u8; 32]>::try_from(root.as_slice())
            .map_err(|_| self.corrupt(format!("archived state root of height {height}")))?;
        let EventsColumn { events, traces } = match events {
            Some(column) => column
                .decode()
                .map_err(|e| self.corrupt(format!("archived events of height {height}: {e}")))?,
            None => EventsColumn {
                events: Vec::new(),
                traces: Vec::new(),
            },
        };
        Ok(Some(ArchivedRow {
            block,
            receipts,
            events,
            traces,
            state_root: Hash32(root),
        }))
    }

    fn corrupt(&self, detail: String) -> StorageError {
        corrupt(self.path.clone(), detail)
    }
}
