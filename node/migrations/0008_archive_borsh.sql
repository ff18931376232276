-- Schema 8: an archived height's `receipts` and `events` are written as borsh BLOBs
-- (`events`: the pair of its events and traces), no longer as JSON text. Serializing them
-- to JSON, hex hashes and all, was about 1.5% of a node's CPU under load, and the text
-- three times the bytes. Rows archived before stay as they are, JSON TEXT, and still read
-- (the storage class tells the two apart); their checksums cover the bytes as stored.
-- Nothing in the tables changes: this version is recorded so that an older binary, which
-- would take a BLOB row for a damaged one, refuses the file at its migration check
-- instead.
SELECT 1;
