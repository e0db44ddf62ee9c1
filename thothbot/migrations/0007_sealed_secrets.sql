-- Secrets sealed at rest (see thothbot/sealing.py). SQL cannot encrypt, so this migration only
-- makes room; the store seals on start whatever is still in clear: the webhook signing secrets
-- in api_keys, the secrets and webhook URLs in guilds.settings, and (once, flagged 'upgrade'
-- below) the destinations that older versions copied whole into the outbox.

-- 'check': a value sealed with the master key, so a wrong or missing key is found before
-- anything is written; 'upgrade': present until the outbox has been scrubbed.
CREATE TABLE sealing (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO sealing (name, value) VALUES ('upgrade', 'pending');

-- `thothbot keys rotate`: the secret that signed before the rotation keeps verifying until
-- previous_expires_at. webhook_secret and previous_secret hold sealed values.
ALTER TABLE api_keys ADD COLUMN previous_secret TEXT;
ALTER TABLE api_keys ADD COLUMN previous_expires_at TEXT;
