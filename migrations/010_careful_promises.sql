-- Issue 13: promises that read as if a careful person wrote them.

-- The language the customer is answered in: a staff choice (`incident lang`) or their mail's
-- Content-Language; NULL means [language] default.
ALTER TABLE incidents ADD COLUMN lang TEXT;
-- The customer's own UTC offset in minutes, from their complaint's Date: header (NULL: unknown).
ALTER TABLE incidents ADD COLUMN customer_utc_offset INTEGER;
-- Which time this is the customer has had this problem: 1 for a first incident, 2 when it
-- repeats one within [recurring] link_within (previous_incident names it), and so on.
ALTER TABLE incidents ADD COLUMN repeat_count INTEGER NOT NULL DEFAULT 1;
-- When the incident it repeats opened ("the second time in three weeks").
ALTER TABLE incidents ADD COLUMN previous_opened_at TEXT;
-- The one question the check-back asks, written by staff with the resolution.
ALTER TABLE incidents ADD COLUMN check_question TEXT;
-- Why the incident is listed by `report recurring`.
ALTER TABLE incidents ADD COLUMN recurring_reason TEXT;

-- Answers to the check-back: whether it is fixed (1 yes, 0 no, NULL not said) and a rating
-- from 1 to 5 if they gave one.
CREATE TABLE check_back_answers (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    message_id INTEGER REFERENCES messages(id),
    answered_at TEXT NOT NULL,
    fixed INTEGER CHECK (fixed IN (0, 1)),
    rating INTEGER CHECK (rating BETWEEN 1 AND 5)
);
CREATE INDEX check_back_answers_by_time ON check_back_answers (answered_at);
