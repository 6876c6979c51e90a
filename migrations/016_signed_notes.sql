-- followupd schema, version 16: the name a note is signed with for the customer.
--
-- A status answer that quotes a note says who wrote it ("Anna wrote on Tuesday at 14:30"),
-- with the name the customer read under it (a staff mail's display name), never an address.
-- NULL: signed by the team.
ALTER TABLE notes ADD COLUMN signed TEXT;
