-- followupd schema, version 17: an incident on hold.
--
-- `#hold until Thursday 10:00 waiting for the carrier`: the customer is told when they will
-- hear from us and why, no update or escalation is due before then, and at that time the
-- promised update goes out and the hold ends. NULL: not on hold.
ALTER TABLE incidents ADD COLUMN hold_until TEXT;
ALTER TABLE incidents ADD COLUMN hold_reason TEXT;
