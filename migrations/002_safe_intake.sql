-- followupd schema, version 2: safe intake. Attachments listed, Outlook conversations indexed,
-- undeliverable addresses, send caps counted per recipient, suppressed mail kept on record.

-- Mail over [intake] max_message_size is recorded with its headers only; size is the real size.
ALTER TABLE messages ADD COLUMN headers_only INTEGER NOT NULL DEFAULT 0;

-- Attachments as listed at intake (the bytes stay in messages.raw).
CREATE TABLE attachments (
    message_row  INTEGER NOT NULL REFERENCES messages (id),
    position     INTEGER NOT NULL,
    name         TEXT,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    PRIMARY KEY (message_row, position)
) WITHOUT ROWID;

-- Outlook conversation ids (first 22 bytes of Thread-Index, hex) -> incident.
CREATE TABLE thread_indexes (
    root        TEXT NOT NULL,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    PRIMARY KEY (root, incident_id)
) WITHOUT ROWID;

-- Addresses a bounce said cannot be delivered to: no automatic mail goes there until the
-- address writes to us again or staff clear it.
CREATE TABLE undeliverable (
    address     TEXT PRIMARY KEY,
    since       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    incident_id INTEGER REFERENCES incidents (id),
    bounce_row  INTEGER REFERENCES messages (id)
) WITHOUT ROWID;

-- Automatic mail that was decided but not sent (send cap, undeliverable recipient): on record
-- with its reason, never silently dropped.
CREATE TABLE suppressed (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    kind        TEXT NOT NULL,
    caused_by   INTEGER REFERENCES messages (id),
    recipient   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    context     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX suppressed_incident ON suppressed (incident_id);

-- Send caps count a recipient's recent automatic mail.
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);

-- Outgoing Thread-Index, so Outlook keeps our replies in the customer's conversation.
ALTER TABLE outbox ADD COLUMN thread_index TEXT;
