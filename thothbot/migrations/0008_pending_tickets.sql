-- Opening and closing a Discord ticket take several steps in Discord; each is either done or
-- pending here, so a crash between two of them is finished after a restart, once.

-- A ticket being opened: its number is taken and kept here before its channel is created (the
-- channel's topic names the opening), so a restart finds the channel and finishes the ticket,
-- or removes the channel and tells the customer. The row goes once the ticket's card is posted.
CREATE TABLE openings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id    TEXT NOT NULL REFERENCES guilds(guild_id),
    number      INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    type_id     TEXT,
    created_at  TEXT NOT NULL,
    channel_id  TEXT,     -- once Discord answered the channel's creation
    ticket_id   INTEGER   -- once the ticket is saved; the card may still be missing
);
CREATE INDEX openings_by_guild ON openings (guild_id);

-- A closed ticket's steps in Discord, saved with the close: each step's outcome is NULL while
-- pending. The channel is deleted last, once its history is read and the rating asked.
CREATE TABLE closings (
    ticket_id      INTEGER PRIMARY KEY REFERENCES tickets(id),
    guild_id       TEXT NOT NULL,
    channel_id     TEXT,
    closed_by      TEXT NOT NULL,   -- user id
    closed_by_name TEXT NOT NULL,   -- as the transcript shows it
    reason         TEXT,
    upload_limit   INTEGER NOT NULL, -- bytes of files one message may carry
    closed_at      TEXT NOT NULL,
    delete_at      TEXT NOT NULL,   -- the channel goes at this time, not before
    next_at        TEXT NOT NULL,   -- when the worker looks at it again
    attempts       INTEGER NOT NULL DEFAULT 0,
    error          TEXT,            -- the last failure, for the log and the operator
    read           TEXT,            -- the transcript is read and kept in transcript_parts
    logged         TEXT,            -- the transcript is in the log channel
    sent           TEXT,            -- the transcript is in the customer's DMs (or cannot be)
    asked          TEXT,            -- the rating is asked: 'dm', 'channel' or why not
    deleted        TEXT,            -- the channel is deleted
    finished_at    TEXT
);
CREATE INDEX closings_due ON closings (next_at) WHERE finished_at IS NULL;

-- A closing ticket's transcript, read from its channel before the channel goes: one row per
-- file, ``part`` numbering the messages it is posted in. Deleted when the closing finishes.
CREATE TABLE transcript_parts (
    ticket_id INTEGER NOT NULL REFERENCES closings(ticket_id),
    part      INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    name      TEXT NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (ticket_id, part, position)
);

-- Channel deletions scheduled before this version become closings with only the deletion left.
INSERT INTO closings (ticket_id, guild_id, channel_id, closed_by, closed_by_name, upload_limit,
                      closed_at, delete_at, next_at, read, logged, sent, asked)
SELECT t.id, t.guild_id, d.channel_id, '', '', 0, d.due_at, d.due_at, d.due_at,
       'before 0008', 'before 0008', 'before 0008', 'before 0008'
FROM channel_deletions d JOIN tickets t ON t.channel_id = d.channel_id;

DROP TABLE channel_deletions;
