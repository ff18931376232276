-- Applied blocks and their results, kept for queries after the log is compacted.
CREATE TABLE blocks (
    height INTEGER PRIMARY KEY,
    block BLOB,
    receipts TEXT NOT NULL,
    state_root BLOB NOT NULL
);
