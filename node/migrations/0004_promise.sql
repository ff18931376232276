-- Schema 4: the hard state records whether the node's promises are intact (it rejoined
-- after any loss of state), bound to the identity (device and inode) of the database file
-- it was made in: a copy of the file restored from elsewhere is a different file and
-- reads as not proven, so the node rejoins before it votes (see consensus/src/raft/rejoin.rs).
ALTER TABLE hard_state ADD COLUMN promise BLOB;
