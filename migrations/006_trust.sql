-- followupd schema, version 6: trust at the door. Who an incident's mail goes to, how far its
-- customer is proven, and what the send caps count.

-- One reply address per incident, chosen when it opens: every mail of the incident goes there.
ALTER TABLE incidents ADD COLUMN reply_address TEXT;
ALTER TABLE incidents ADD COLUMN reply_name TEXT;
UPDATE incidents SET reply_address = customer_address, reply_name = customer_name;

-- How far the receiving server proved the customer (verified | unverified | failed): the trust
-- of the mail that opened the incident, raised when a verified mail from them joins it.
-- Incidents from before this version were answered in full: they stay so.
ALTER TABLE incidents ADD COLUMN sender_trust TEXT NOT NULL DEFAULT 'verified';
-- The staff member who acted on the incident first: a person vouches for it.
ALTER TABLE incidents ADD COLUMN vouched_by TEXT;

-- What the caps count: the recipient's mailbox with sub-address and case folded away, its
-- domain, and whether the mail was about an incident nobody could vouch for.
ALTER TABLE outbox ADD COLUMN recipient_mailbox TEXT;
ALTER TABLE outbox ADD COLUMN recipient_domain TEXT;
ALTER TABLE outbox ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET recipient_mailbox = lower(recipient),
    recipient_domain = lower(substr(recipient, instr(recipient, '@') + 1));
CREATE INDEX outbox_mailbox ON outbox (recipient_mailbox, created_at);
CREATE INDEX outbox_domain ON outbox (recipient_domain, created_at);
-- The global cap counts by time alone: kind and state in the index spare a row lookup each.
CREATE INDEX outbox_created ON outbox (created_at, kind, state);
