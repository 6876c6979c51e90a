-- followupd schema, version 9: right to erasure and retention of raw mail.

-- The event log stays append-only for everyone but the one door that erases a person
-- (`followupd erase`): inside its transaction a row sits in `erasing`, and only then may an
-- event's detail be scrubbed. The row is removed before that transaction commits.
CREATE TABLE erasing (since TEXT NOT NULL);
DROP TRIGGER events_append_only_update;
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
    WHEN NOT EXISTS (SELECT 1 FROM erasing)
    BEGIN SELECT RAISE (ABORT, 'the event log is append-only'); END;

-- When [retention] raw_after dropped the raw bytes of a message (its metadata stays).
ALTER TABLE messages ADD COLUMN raw_dropped_at TEXT;
