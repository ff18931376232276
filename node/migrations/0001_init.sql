-- Agora node storage, schema 1. Integers are SQLite INTEGER (i64); indexes and terms
-- stay below 2^63. Every row that holds replicated data carries a checksum so that a
-- flipped bit is reported instead of replayed.

CREATE TABLE hard_state (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    term INTEGER NOT NULL,
    vote BLOB,
    commit_index INTEGER NOT NULL,
    checksum BLOB NOT NULL
);

CREATE TABLE entries (
    idx INTEGER PRIMARY KEY,
    term INTEGER NOT NULL,
    data BLOB NOT NULL,
    checksum BLOB NOT NULL
);

CREATE TABLE snapshot_meta (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    meta BLOB NOT NULL,
    total_bytes INTEGER NOT NULL,
    data_digest BLOB NOT NULL
);

CREATE TABLE snapshot_chunks (
    seq INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);

CREATE TABLE node_meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
