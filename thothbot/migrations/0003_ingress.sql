-- HTTP ingress: API keys, the events it accepted, and idempotency records.

-- One row per key from `thothbot keys create`. The API key itself is only kept as a SHA-256
-- hash; the webhook signing secret is kept as is because verifying an HMAC needs it.
CREATE TABLE api_keys (
    key_id         TEXT PRIMARY KEY,
    guild_id       TEXT NOT NULL,
    key_hash       TEXT NOT NULL,  -- hex SHA-256 of the whole key "thk_<key_id>_<secret>"
    webhook_secret TEXT NOT NULL,  -- "whsec_<base64>", in clear: see thothbot/keys.py
    created_at     TEXT NOT NULL,
    revoked_at     TEXT
) WITHOUT ROWID;
CREATE INDEX api_keys_by_guild ON api_keys (guild_id, created_at);

-- Every accepted event, stored whole before it is answered. 'pending' until its effect (a
-- ticket) is saved; events still pending when the ingress starts are processed then.
CREATE TABLE ingress_events (
    event_id    TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL REFERENCES api_keys(key_id),
    guild_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    payload     TEXT NOT NULL,  -- JSON object: the event's fields, unknown ones included
    via         TEXT NOT NULL CHECK (via IN ('api', 'webhook')),
    received_at TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    ticket_id   INTEGER REFERENCES tickets(id),
    error       TEXT
) WITHOUT ROWID;
CREATE INDEX ingress_events_pending ON ingress_events (received_at) WHERE status = 'pending';

-- The first answer to each Idempotency-Key (kind 'api') or webhook-id (kind 'webhook'), per
-- key, with the hash of the request it answered; kept 72 hours, then purged.
CREATE TABLE idempotency_records (
    key_id       TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('api', 'webhook')),
    request_key  TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    answer       TEXT NOT NULL,  -- the JSON body that was sent
    created_at   TEXT NOT NULL,
    PRIMARY KEY (key_id, kind, request_key)
) WITHOUT ROWID;
CREATE INDEX idempotency_records_created_at ON idempotency_records (created_at);
