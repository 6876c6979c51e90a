-- followupd schema, version 4: one vocabulary per column. messages.class says what a message
-- is (human | auto-reply | bounce | bulk | loop | quarantined | outgoing); the kind of mail we
-- sent moves to its own column. The outbox keeps each mail's rendered subject, so recording a
-- sent mail never parses MIME.

ALTER TABLE messages ADD COLUMN kind TEXT;
UPDATE messages SET kind = class, class = 'outgoing' WHERE direction = 'out';
ALTER TABLE outbox ADD COLUMN subject TEXT;
-- The scheduler's next due time for escalations (quiet incidents) is read through
-- incidents_quiet; promises by incident through promises_pending.

-- What a customer has not heard yet is measured from the last promise made to them.
CREATE INDEX promises_made ON promises (incident_id, made_at);
-- Our Outlook conversation for an incident is looked up by incident.
CREATE INDEX thread_indexes_incident ON thread_indexes (incident_id);
-- An open promise is made once: a mail repeating it (a status answer) adds no second row.
CREATE UNIQUE INDEX promises_open_once ON promises (incident_id, due_at)
    WHERE kept_at IS NULL AND breached_at IS NULL;
