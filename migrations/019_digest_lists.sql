-- followupd schema, version 19: a reply to a digest can answer every incident it lists.
--
-- The Message-ID of the digest that told a member of this held notification. A reply naming
-- it with `#all` sends the member's words to the customer of every incident the digest
-- listed; NULL: not in a digest (yet), or one queued before this version.
ALTER TABLE suppressed ADD COLUMN digest_message_id TEXT;
CREATE INDEX suppressed_digest_message ON suppressed (digest_message_id)
    WHERE digest_message_id IS NOT NULL;
