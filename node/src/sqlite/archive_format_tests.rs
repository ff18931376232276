//! Schema 8: an archived height's receipts and events are stored as borsh, and heights
//! archived before in JSON text still read.

use super::conformance_tests::{archived_txs, receipt, temp_dir};
use super::*;
use agora_core::{AccountId, Hash32, Receipt};

/// Row `height`'s receipts and events rewritten as schema 7 wrote them (JSON text), with
/// the checksum that version computed over that text.
async fn rewrite_as_json(pool: &SqlitePool, height: i64, receipts: &[Receipt], events: &str) {
    let receipts = serde_json::to_string(receipts).unwrap();
    let sum = archive_checksum(
        Sum::CURRENT,
        height,
        None,
        receipts.as_bytes(),
        &[height as u8; 32],
        Some(events.as_bytes()),
    );
    sqlx::query("UPDATE blocks SET receipts = ?, events = ?, checksum = ? WHERE height = ?")
        .bind(&receipts)
        .bind(events)
        .bind(sum)
        .bind(height)
        .execute(pool)
        .await
        .unwrap();
}

async fn storage_classes(pool: &SqlitePool, height: i64) -> (String, String) {
    let row = sqlx::query(
        "SELECT typeof(receipts) AS r, typeof(events) AS e FROM blocks WHERE height = ?",
    )
    .bind(height)
    .fetch_one(pool)
    .await
    .unwrap();
    (row.get("r"), row.get("e"))
}

#[tokio::test]
async fn heights_archived_in_json_before_schema_8_still_read_and_new_ones_are_borsh() {
    let dir = temp_dir("archive-borsh");
    let path = dir.join("node.db");
    let mut store = SqliteStore::open(&path).await.unwrap();
    store
        .write(&[archived_txs(1, &[1, 2]), archived_txs(2, &[3])])
        .await
        .unwrap();
    let pool = store.pool_for_tests();
    assert_eq!(
        storage_classes(&pool, 1).await,
        ("blob".to_string(), "blob".to_string())
    );
    let reader = store.reader();
    let before = reader.block(1).await.unwrap().expect("archived");
    assert_eq!(before.receipts, vec![receipt(1), receipt(2)]);
    assert_eq!(before.traces.len(), 2);
    assert_eq!(before.events.len(), 3);

    // Height 1 as an older version archived it: the same values, in JSON.
    let events = serde_json::to_string(&EventsColumn {
        events: before.events.clone(),
        traces: before.traces.clone(),
    })
    .unwrap();
    rewrite_as_json(&pool, 1, &before.receipts, &events).await;
    assert_eq!(
        storage_classes(&pool, 1).await,
        ("text".to_string(), "text".to_string())
    );
    let after = reader.block(1).await.unwrap().expect("still archived");
    assert_eq!(after.receipts, before.receipts);
    assert_eq!(after.events, before.events);
    assert_eq!(after.traces, before.traces);
    let found = reader.tx(&Hash32([2; 32])).await.unwrap().expect("indexed");
    assert_eq!(found.sender, Some(AccountId(Hash32([2; 32]))));
    assert_eq!(found.events.len(), 1);

    // Opening reads the receipts past the index's mark back from both kinds of row.
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    let reader = store.reader();
    assert_eq!(
        reader.tx(&Hash32([2; 32])).await.unwrap().map(|t| t.height),
        Some(1)
    );
    assert_eq!(
        reader.tx(&Hash32([3; 32])).await.unwrap().map(|t| t.height),
        Some(2)
    );

    // A changed byte in the JSON text is caught by the checksum, as before.
    sqlx::query(
        "UPDATE blocks SET receipts = replace(receipts, 'applied', 'Applied') WHERE height = 1",
    )
    .execute(&store.pool_for_tests())
    .await
    .unwrap();
    assert!(matches!(
        reader.block(1).await,
        Err(StorageError::Corrupt { .. })
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A borsh row that does not decode (its checksum recomputed to match, as a bug writing
/// it would have) is reported as corrupt, naming the column, not answered.
#[tokio::test]
async fn an_undecodable_borsh_row_is_corrupt() {
    let dir = temp_dir("archive-borsh-bad");
    let mut store = SqliteStore::open(&dir.join("node.db")).await.unwrap();
    store.write(&[archived_txs(1, &[1])]).await.unwrap();
    let pool = store.pool_for_tests();
    let events: Vec<u8> = sqlx::query_scalar("SELECT events FROM blocks WHERE height = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let receipts = vec![9u8; 5];
    let sum = archive_checksum(Sum::CURRENT, 1, None, &receipts, &[1; 32], Some(&events));
    sqlx::query("UPDATE blocks SET receipts = ?, checksum = ? WHERE height = 1")
        .bind(&receipts)
        .bind(sum)
        .execute(&pool)
        .await
        .unwrap();
    let error = store.reader().block(1).await.unwrap_err();
    assert!(
        error.to_string().contains("archived receipts of height 1"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
