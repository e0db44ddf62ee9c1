-- Retention: old rule firings and finished deliveries are deleted by age (see maintenance.py);
-- these indexes let the periodic delete find them without reading the whole table.
CREATE INDEX rule_firings_by_time ON rule_firings (at);
CREATE INDEX deliveries_finished ON deliveries (created_at) WHERE status != 'pending';
