-- Schema 7: a block is stored once. An archived height whose log entry is still in
-- `entries` (same index, same term when it was archived) keeps `block` NULL and sets
-- `in_log`: its bytes are that entry's. The archive checksum still covers the block's
-- bytes, so a read through the log entry is checked as before. Compaction keeps such
-- entries (below the snapshot they are the archive's, not the log's: `load` reads only
-- above the snapshot), and the trigger refuses to delete one, so no archived block can
-- be lost by a truncation.
ALTER TABLE blocks ADD COLUMN in_log INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER entries_keep_archived_blocks BEFORE DELETE ON entries
WHEN EXISTS (SELECT 1 FROM blocks WHERE height = OLD.idx AND in_log = 1)
BEGIN
    SELECT RAISE(ABORT, 'a log entry that holds an archived block cannot be deleted');
END;
