-- followupd schema, version 18: an escalation goes to the assignee first, the team later.
--
-- When an escalation went to the incident's assignee alone, the team is told at this time
-- unless someone has written meanwhile. NULL: nothing pending.
ALTER TABLE incidents ADD COLUMN team_alarm_at TEXT;
