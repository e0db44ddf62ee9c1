-- Urgency classifications answered by the model, keyed by the SHA-256 of what decided them
-- (model, instructions, labels, redacted text, tier, channel): an identical ticket is not
-- sent twice. Rows older than the TTL are ignored on read and pruned.
CREATE TABLE classifier_cache (
    key         TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX classifier_cache_created_at ON classifier_cache (created_at);
