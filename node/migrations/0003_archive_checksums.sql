-- Schema 3: the block archive and the node's own records carry a checksum too, checked on
-- every read (a mismatch is an error naming the height, never an answer). Rows written
-- before this schema are checksummed once, when the store first opens at schema 3.
ALTER TABLE blocks ADD COLUMN checksum BLOB;
ALTER TABLE node_meta ADD COLUMN checksum BLOB;
