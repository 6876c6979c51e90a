-- followupd schema, version 4: one vocabulary per column. messages.class says what a message
-- is (human | auto-reply | bounce | bulk | loop | quarantined | outgoing); the kind of mail we
-- sent moves to its own column. The outbox keeps each mail's rendered subject, so recording a
-- sent mail never parses MIME.

ALTER TABLE messages ADD COLUMN kind TEXT;
UPDATE messages SET kind = class, class = 'outgoing' WHERE direction = 'out';
ALTER TABLE outbox ADD COLUMN subject TEXT;
-- The scheduler's next due time for escalations (quiet incidents) is read through
-- incidents_quiet; promises by incident through promises_pending.
