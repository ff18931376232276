-- Schema 6: where each certified height's certificate is on chain: the height of the
-- block that carries it (from that block's `certified` events). Like `tx_index` it has no
-- checksum of its own: every lookup finds the certificate inside the archived block,
-- whose checksum covers it, and takes the root from the certified height's own row.
-- Heights archived before this schema are not indexed.
CREATE TABLE certificate_index (
    height INTEGER PRIMARY KEY NOT NULL,
    carried_in INTEGER NOT NULL
) WITHOUT ROWID;
