-- Servers, tickets, rule firings, routing, duty and SLA clocks: everything the bot needs after a restart.
-- Times are UTC ISO-8601 text with microseconds, so they sort as text.

CREATE TABLE guilds (
    guild_id           TEXT PRIMARY KEY,
    rules              TEXT NOT NULL DEFAULT '[]',
    settings           TEXT NOT NULL DEFAULT '{}',
    revision           INTEGER NOT NULL DEFAULT 0,  -- bumped on every save; lets caches know they are stale
    next_ticket_number INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE tickets (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id             TEXT NOT NULL REFERENCES guilds(guild_id),
    number               INTEGER NOT NULL,
    type_id              TEXT,
    customer_id          TEXT NOT NULL,
    subject              TEXT NOT NULL,
    body                 TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    escalated            INTEGER NOT NULL DEFAULT 0,
    escalation_reason    TEXT,
    replies_paused       INTEGER NOT NULL DEFAULT 0,
    assignee_id          TEXT,
    tags                 TEXT NOT NULL DEFAULT '[]',
    urgency              TEXT,
    created_at           TEXT NOT NULL,
    first_staff_reply_at TEXT,
    closed_at            TEXT,
    rating               INTEGER,
    source               TEXT NOT NULL,
    ref                  TEXT,
    channel_id           TEXT,
    UNIQUE (guild_id, number)
);
CREATE INDEX tickets_open_by_assignee ON tickets (guild_id, status, assignee_id);
CREATE INDEX tickets_by_customer ON tickets (guild_id, customer_id, status);
CREATE UNIQUE INDEX tickets_by_channel ON tickets (channel_id) WHERE channel_id IS NOT NULL;

CREATE TABLE rule_firings (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id  TEXT NOT NULL,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    at        TEXT NOT NULL,
    trigger   TEXT NOT NULL,
    rule_id   TEXT NOT NULL,
    outcomes  TEXT NOT NULL  -- JSON: [{"type", "applied", "detail", "tag"?}]
);
CREATE INDEX rule_firings_by_guild ON rule_firings (guild_id, id);

CREATE TABLE routing_pointers (
    guild_id   TEXT NOT NULL,
    pool       TEXT NOT NULL,  -- '' for the server pool, else a ticket type id
    last_agent TEXT NOT NULL,
    PRIMARY KEY (guild_id, pool)
);

CREATE TABLE duty (
    guild_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    on_duty  INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE assignment_queue (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    guild_id  TEXT NOT NULL,
    type_id   TEXT,
    rule_id   TEXT,
    queued_at TEXT NOT NULL
);
CREATE INDEX assignment_queue_by_guild ON assignment_queue (guild_id, queued_at, ticket_id);

CREATE TABLE sla_clocks (
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    target      TEXT NOT NULL CHECK (target IN ('first_response', 'resolution')),
    deadline    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'met', 'breached', 'stopped')),
    resolved_at TEXT,
    PRIMARY KEY (ticket_id, target)
);
-- The SLA checker sleeps until the earliest pending deadline: never a scan of every ticket.
CREATE INDEX sla_clocks_pending ON sla_clocks (deadline) WHERE status = 'pending';
