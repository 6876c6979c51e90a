-- followupd schema, version 1: incidents, the message log, threading index, outbox,
-- IMAP checkpoint and the append-only event log.

CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY AUTOINCREMENT, -- the number customers and staff see
    token            TEXT UNIQUE,                       -- FU-<id>-<hmac>, set right after insert
    state            TEXT NOT NULL DEFAULT 'open',
    subject          TEXT NOT NULL,
    summary          TEXT NOT NULL,
    customer_address TEXT NOT NULL,
    customer_name    TEXT,
    opened_at        TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    cadence_secs     INTEGER NOT NULL,
    next_update_at   TEXT
);
CREATE INDEX incidents_state ON incidents (state, id);
CREATE INDEX incidents_next_update ON incidents (next_update_at) WHERE state = 'open';

-- Who may add to an incident: the customer, addresses they put in Cc, staff.
CREATE TABLE participants (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    address     TEXT NOT NULL,                 -- lower-cased
    role        TEXT NOT NULL,                 -- customer | reply-to | cc | staff
    PRIMARY KEY (incident_id, address)
) WITHOUT ROWID;

-- Every message in and out, with its raw bytes.
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY,
    direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    incident_id      INTEGER REFERENCES incidents (id),
    message_id       TEXT,
    dedupe_key       TEXT UNIQUE,              -- mid:<Message-ID> or sha256:<hash>, incoming only
    from_addr        TEXT,
    to_addr          TEXT,
    subject          TEXT,
    date_header      TEXT,
    in_reply_to      TEXT,
    references_      TEXT,
    class            TEXT NOT NULL,            -- human | auto-reply | bounce | bulk | loop |
                                               -- quarantined | <kind of mail we sent>
    class_reason     TEXT,
    sha256           TEXT NOT NULL,
    size             INTEGER NOT NULL,
    raw              BLOB NOT NULL,
    imap_mailbox     TEXT,
    imap_uidvalidity INTEGER,
    imap_uid         INTEGER,
    after_processing TEXT NOT NULL DEFAULT 'none', -- none | pending | done
    recorded_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX messages_imap ON messages (imap_mailbox, imap_uidvalidity, imap_uid)
    WHERE imap_uid IS NOT NULL;
CREATE INDEX messages_incident ON messages (incident_id, recorded_at);
CREATE INDEX messages_class ON messages (class);
CREATE INDEX messages_after_processing ON messages (imap_mailbox, imap_uidvalidity)
    WHERE after_processing = 'pending';

-- Message-ID -> incident, for threading; holds the customer's and our own IDs.
CREATE TABLE message_ids (
    message_id  TEXT PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id)
) WITHOUT ROWID;

-- Mail to send. Written in the same transaction as the change that causes it.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    kind            TEXT NOT NULL,             -- acknowledgement | ...
    caused_by       INTEGER REFERENCES messages (id),
    message_id      TEXT NOT NULL UNIQUE,      -- fixed at queue time, stable across retries
    recipient       TEXT NOT NULL,
    recipient_name  TEXT,
    in_reply_to     TEXT,
    references_     TEXT NOT NULL DEFAULT '',
    context         TEXT NOT NULL,             -- template data (JSON) as of queue time
    raw             BLOB,                      -- the rendered message; NULL until rendered
    -- queued -> sending (handed to the relay) -> sent | failed; a 'sending' row found at start
    -- was in flight when the previous daemon died: it waits for its receipt before a resend.
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'queued';
CREATE INDEX outbox_incident ON outbox (incident_id);
-- The promise of the spine: one acknowledgement per incident, ever.
CREATE UNIQUE INDEX outbox_one_ack ON outbox (incident_id) WHERE kind = 'acknowledgement';

CREATE TABLE send_attempts (
    id        INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES outbox (id),
    at        TEXT NOT NULL,
    outcome   TEXT NOT NULL,                   -- sent | retry | failed
    detail    TEXT NOT NULL
);
CREATE INDEX send_attempts_outbox ON send_attempts (outbox_id);

CREATE TABLE imap_checkpoint (
    mailbox     TEXT PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    incident_id INTEGER REFERENCES incidents (id),
    message_row INTEGER REFERENCES messages (id),
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX events_incident ON events (incident_id, id);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE (ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE (ABORT, 'the event log is append-only'); END;
