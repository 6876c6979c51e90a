-- followupd schema, version 12: staff replies held back from the customer.
--
-- A staff member's reply whose own words could not be read with confidence (all quote, text of
-- a staff-only mail in it, a line that is partly our own mail) is not sent. Its words as read
-- are kept here until its author sends them as shown (`#send`) or writes again.
CREATE TABLE held_replies (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    message_row INTEGER NOT NULL REFERENCES messages (id),
    member      TEXT NOT NULL,                 -- lower-cased address of the author
    text        TEXT NOT NULL,                 -- their own words as read, commands and all
    greeting    TEXT,                          -- their greeting above them ("Hi Ann,")
    reason      TEXT NOT NULL,
    held_at     TEXT NOT NULL,
    released_at TEXT
);
CREATE INDEX held_replies_pending ON held_replies (incident_id, member) WHERE released_at IS NULL;
