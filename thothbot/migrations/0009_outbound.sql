-- Deliveries that are exactly once as people see them, and destinations that said "gone".
-- event_id: the Standard Webhooks webhook-id ("msg_" + a ULID), unique across installs, the same
--   on every try; it is also the marker a post carries, so a restart can find what it sent.
-- body: what an http destination gets, fixed on the first try (its timestamp included).
-- attempt, attempting_at: the marker of the post being tried and when, set and committed before
--   each try to Discord, cleared on a definite answer; a row found with them set was maybe
--   accepted, so its post is looked for (by that marker) before it is posted again. Rows folded
--   into one summary share the summary's marker.
ALTER TABLE deliveries ADD COLUMN event_id TEXT;
ALTER TABLE deliveries ADD COLUMN body TEXT;
ALTER TABLE deliveries ADD COLUMN attempt TEXT;
ALTER TABLE deliveries ADD COLUMN attempting_at TEXT;

-- A destination that answered 410 Gone gets nothing more until its server saves its settings
-- again. Keyed by the fingerprint of its URL that its outbox rows carry (core/masking.reference),
-- so no webhook URL or token is kept here.
CREATE TABLE disabled_destinations (
    guild_id    TEXT NOT NULL,
    target      TEXT NOT NULL,  -- the "ref" of the destination's outbox rows
    label       TEXT NOT NULL,  -- what admins are shown: kind and host
    disabled_at TEXT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (guild_id, target)
);
