-- followupd schema, version 5: the support team in the loop, and how sure we are of each
-- sender.

-- How far the receiving server proved the sender: verified | unverified | failed.
ALTER TABLE messages ADD COLUMN trust TEXT;
ALTER TABLE messages ADD COLUMN trust_reason TEXT;

-- customer (told to the customer) | internal (#internal) | correspondence (a staff member's own
-- mail to the customer, on record).
ALTER TABLE notes ADD COLUMN visibility TEXT NOT NULL DEFAULT 'customer';

-- The customer asked for no more automatic updates.
ALTER TABLE incidents ADD COLUMN updates_stopped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN assigned_to TEXT;
-- The promised update staff were last warned has no news yet.
ALTER TABLE incidents ADD COLUMN at_risk_warned_for TEXT;
-- When the customer last wrote, and when we last queued mail to them: an update thanks them
-- for what they sent since.
ALTER TABLE incidents ADD COLUMN customer_wrote_at TEXT;
ALTER TABLE incidents ADD COLUMN told_customer_at TEXT;

-- A staff reply's attachments go to the customer with the note.
ALTER TABLE outbox ADD COLUMN attachments_from INTEGER REFERENCES messages (id);

-- Staff notifications held back by the staff cap wait here for one digest.
ALTER TABLE suppressed ADD COLUMN digest_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX suppressed_digest ON suppressed (recipient, id) WHERE digest_pending = 1;

-- Staff mail has kinds of its own; escalation is one of them now.
UPDATE outbox SET kind = 'staff/escalation' WHERE kind = 'escalation';
UPDATE messages SET kind = 'staff/escalation' WHERE kind = 'escalation';
UPDATE suppressed SET kind = 'staff/escalation' WHERE kind = 'escalation';
UPDATE promises SET made_by = 'staff/escalation' WHERE made_by = 'escalation';
