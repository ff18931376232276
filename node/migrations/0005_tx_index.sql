-- Schema 5: lookups by transaction hash, and each archived height's events.
-- `events` holds the height's events and each transaction's sender and event count
-- (JSON); rows archived before this schema have none. The archive checksum covers it when
-- present. `tx_index` maps a transaction hash to where it committed (the first time: a
-- transaction included again fails on its nonce and keeps its first place); it carries no
-- checksum of its own because every lookup checks the hash against the archived receipt,
-- which does.
ALTER TABLE blocks ADD COLUMN events TEXT;
CREATE TABLE tx_index (
    hash BLOB PRIMARY KEY NOT NULL,
    height INTEGER NOT NULL,
    position INTEGER NOT NULL
) WITHOUT ROWID;
