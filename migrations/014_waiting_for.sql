-- followupd schema, version 14: what a waiting incident waits for.
--
-- A waiting incident's own field (incident::Stage::Waiting): the staff's view and the status
-- can say what we need from the customer. NULL for incidents that waited before it was kept.
ALTER TABLE incidents ADD COLUMN waiting_for TEXT;
