-- followupd schema, version 7: every message's raw bytes in a table of their own.
--
-- A row's last column can be written a piece at a time (zeroblob, then incremental blob I/O)
-- without SQLite first building the whole row in memory; `raw` in the middle of `messages`
-- could not, and a 20 MB message cost 40 MB of SQLite memory to store. The message log's own
-- rows also become small to scan.
CREATE TABLE message_raw (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id),
    raw        BLOB NOT NULL
);
INSERT INTO message_raw (message_id, raw) SELECT id, raw FROM messages;
ALTER TABLE messages DROP COLUMN raw;
