-- followupd schema, version 8: receipts decide when mail in doubt is sent again.

-- When a mail went in doubt (in flight when its sender died or lost the database): it is sent
-- again only once intake has read the support mailbox past this time plus a delivery margin
-- and found no receipt.
ALTER TABLE outbox ADD COLUMN in_doubt_since TEXT;
-- The running sender looks for rows left 'sending' before every drain.
CREATE INDEX outbox_sending ON outbox (id) WHERE state = 'sending';
-- The start of intake's last complete pass: every message delivered before it has been read.
ALTER TABLE imap_checkpoint ADD COLUMN read_through TEXT;
