-- followupd schema, version 15: what the customer already told us, and how each check-back
-- answer was read.
--
-- The facts of an incident (order, invoice and tracking numbers from its complaint), so a
-- customer's new mail naming the same order joins the open incident instead of opening a
-- "recurrence" of it.
CREATE TABLE incident_facts (
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (incident_id, name, value)
);
CREATE INDEX incident_facts_by_value ON incident_facts (value);

-- How the answer was read (works, works_unhappy, not_fixed, unclear, thanks, rated, stop):
-- `report satisfaction` counts these, the very readings the decisions acted on. NULL for
-- answers recorded before it was kept.
ALTER TABLE check_back_answers ADD COLUMN reading TEXT;
