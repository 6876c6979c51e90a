-- followupd schema, version 13: incidents a bug stopped.
--
-- A panic in followupd's own code while acting on one incident for the scheduler is caught:
-- the incident is marked with the panic's message and the scheduler passes it over until a
-- staff member acts on it (which clears the mark), instead of failing on it every tick or
-- stopping every other incident's updates.
ALTER TABLE incidents ADD COLUMN fault TEXT;
ALTER TABLE incidents ADD COLUMN fault_at TEXT;
