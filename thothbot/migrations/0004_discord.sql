-- What the Discord side needs after a restart: each server's setup, who holds the staff roles,
-- saved answers and which tickets got them, the #ops message of each escalation, and channels
-- waiting to be deleted after a close.

-- Who took an escalation from #ops; a second claim is refused.
ALTER TABLE tickets ADD COLUMN claimed_by TEXT;

CREATE TABLE discord_setup (
    guild_id       TEXT PRIMARY KEY REFERENCES guilds(guild_id),
    staff_role_id  TEXT NOT NULL,
    ops_channel_id TEXT NOT NULL,
    log_channel_id TEXT,
    categories     TEXT NOT NULL  -- JSON list of ticket category ids; the last one takes new tickets
);

-- Members of the roles that make someone staff (the server's staff role, a type's staff_role),
-- refreshed from Discord at start and on member updates; round robin walks them.
CREATE TABLE role_members (
    guild_id TEXT NOT NULL,
    role_id  TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (guild_id, role_id, user_id)
);

CREATE TABLE saved_answers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   TEXT NOT NULL,
    triggers   TEXT NOT NULL,  -- JSON list of phrases
    text       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX saved_answers_by_guild ON saved_answers (guild_id, id);

CREATE TABLE answers_sent (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    answer_id INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, answer_id)
);

CREATE TABLE ops_messages (
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    channel_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    reason     TEXT NOT NULL,  -- shown again when the post is updated (claimed, assigned)
    PRIMARY KEY (ticket_id, message_id)
);

CREATE TABLE channel_deletions (
    channel_id TEXT PRIMARY KEY,
    due_at     TEXT NOT NULL
);
