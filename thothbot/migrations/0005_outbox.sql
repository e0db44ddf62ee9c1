-- The outbox: every escalation on its way to #ops and the fan-out destinations, saved in the
-- same transaction as the escalation itself, so a crash loses none; sent ones are kept for the
-- per-destination rate limit and for the record.
CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id    TEXT NOT NULL,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    destination TEXT NOT NULL,  -- JSON: {"kind": "ops"}, or a destination from the settings
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'summarized', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     TEXT NOT NULL,
    sent_at     TEXT,
    message_id  TEXT,
    error       TEXT
);
CREATE INDEX deliveries_due ON deliveries (next_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_sent ON deliveries (destination, sent_at) WHERE status = 'sent';

-- An API ticket's event, found from the ticket (its ref is the event's ticket_id).
CREATE INDEX ingress_events_by_ref ON ingress_events (key_id, json_extract(payload, '$.ticket_id'));
