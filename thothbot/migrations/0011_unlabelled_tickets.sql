-- Open tickets whose urgency is not known yet: the triage loop reads them after every opening
-- (and after a restart), so it finds them without reading the whole table.
CREATE INDEX tickets_unlabelled ON tickets (id) WHERE urgency IS NULL AND status != 'closed';
