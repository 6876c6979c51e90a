-- followupd schema, version 21: a burst is listed in the team's digest.
--
-- A row that lists an incident in a member's next digest without standing for a mail held
-- back from them: a new incident of a burst, shared out to one member (its notification went
-- to them alone) or told to everyone before the burst was one. The digest lists it, `#all`
-- answers it; `incident show` does not call it suppressed.
ALTER TABLE suppressed ADD COLUMN listed_only INTEGER NOT NULL DEFAULT 0;
