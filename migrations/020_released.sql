-- followupd schema, version 20: held mail a person released.
--
-- A quarantined message released by staff (`followupd quarantine release ID`, `#release`)
-- went through intake again as the message this column names; it leaves the quarantine
-- list and stays on record as it was held. NULL: still held.
ALTER TABLE messages ADD COLUMN released_as INTEGER REFERENCES messages (id);
