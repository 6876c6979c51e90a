-- A new complaint looks for the customer's previous incident (issue 13) with a comparison that
-- ignores case; an index in that collation keeps it a lookup, not a scan of every incident.
CREATE INDEX incidents_by_customer_nocase ON incidents (customer_address COLLATE NOCASE, id);
