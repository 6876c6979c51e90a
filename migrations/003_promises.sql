-- followupd schema, version 3: keeping promises. The incident lifecycle
-- (open -> waiting -> resolved -> closed, with reopen), staff notes, tags, and the promise
-- ledger: every mail that promises an update records when, and whether it was kept.

ALTER TABLE incidents ADD COLUMN last_note_at TEXT;
-- Progress updates sent in a row with no staff note since the previous one.
ALTER TABLE incidents ADD COLUMN updates_without_news INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN resolved_at TEXT;
ALTER TABLE incidents ADD COLUMN check_back_at TEXT;
ALTER TABLE incidents ADD COLUMN close_at TEXT;
ALTER TABLE incidents ADD COLUMN root_cause TEXT;
ALTER TABLE incidents ADD COLUMN prevention TEXT;
ALTER TABLE incidents ADD COLUMN compensation TEXT;
ALTER TABLE incidents ADD COLUMN escalated_at TEXT;
-- The customer has had several incidents lately, or its tag keeps coming back.
ALTER TABLE incidents ADD COLUMN recurring INTEGER NOT NULL DEFAULT 0;
-- A late reply to a closed incident opens a new one that continues it.
ALTER TABLE incidents ADD COLUMN previous_incident INTEGER REFERENCES incidents (id);
CREATE INDEX incidents_customer ON incidents (customer_address, opened_at);
-- The scheduler reads only due rows through these.
CREATE INDEX incidents_check_back ON incidents (check_back_at) WHERE state = 'resolved';
CREATE INDEX incidents_close ON incidents (close_at) WHERE state = 'resolved';
-- Escalation: open incidents without a staff note for too long, not yet escalated.
CREATE INDEX incidents_quiet ON incidents (COALESCE(last_note_at, opened_at))
    WHERE state = 'open' AND escalated_at IS NULL;

CREATE TABLE notes (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    at          TEXT NOT NULL,
    author      TEXT NOT NULL,
    text        TEXT NOT NULL
);
CREATE INDEX notes_incident ON notes (incident_id, id);

CREATE TABLE tags (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    tag         TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (incident_id, tag)
) WITHOUT ROWID;

-- One row per promised update: made by which mail, due when; kept when the next update went
-- out in time, breached when it went out late.
CREATE TABLE promises (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    made_at     TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    made_by     TEXT NOT NULL,             -- the kind of mail that promised it
    kept_at     TEXT,
    breached_at TEXT
);
CREATE INDEX promises_pending ON promises (incident_id) WHERE kept_at IS NULL AND breached_at IS NULL;
