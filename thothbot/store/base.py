"""What every aggregate's SQL builds on: the open connection and sealer of one unit of work,
three query helpers, and how a moment is stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from thothbot import sealing
from thothbot.core.models import Ticket


def ts(moment: datetime) -> str:
    """A datetime as stored: UTC, ISO-8601, microseconds, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_ts(text: str | None) -> datetime | None:
    """A stored moment read back (None stays None)."""
    return datetime.fromisoformat(text) if text is not None else None


_VARIABLES = 999  # bound parameters in one statement: SQLite's lowest limit of any version


class Batch:
    """What units sharing transactions (``Store.batch``) remember between them: how many ran
    since the last commit, and reads that no other connection can change while this one holds
    the write lock. Forgotten when a unit is rolled back and when another connection has
    written between two of the batch's transactions. A method that writes a ticket, a
    server's revision, duty or round-robin pointers keeps what is remembered in step."""

    TICKETS = 4096  # tickets remembered: the most recently used

    def __init__(self, every: int) -> None:
        self.every = every  # units per transaction
        self.units = 0
        self.data_version: int | None = None  # moves when another connection commits
        self.revisions: dict[str, int] = {}
        self.tickets: dict[int, Ticket] = {}
        self.routing: dict[str, tuple[set[str], dict[str, str]]] = {}  # off duty, pointers

    def forget(self) -> None:
        self.revisions.clear()
        self.tickets.clear()
        self.routing.clear()

    def keep(self, ticket: Ticket) -> None:
        self.tickets.pop(ticket.id, None)  # to the end: the most recently used
        self.tickets[ticket.id] = ticket
        if len(self.tickets) > self.TICKETS:
            del self.tickets[next(iter(self.tickets))]


class SqliteBase:
    """Synchronous access to the database inside one unit of work (runs on the database thread).

    Each aggregate's methods are a mixin over this; ``thothbot.store.tx.SqliteTx`` composes them.
    In a batch, ``_batch`` keeps reads for the next units.
    """

    def __init__(
        self, conn: sqlite3.Connection, sealer: sealing.Sealer, batch: Batch | None = None
    ) -> None:
        self._conn = conn
        self._sealer = sealer
        self._batch = batch

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def _one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return self._conn.execute(sql, tuple(params)).fetchone()

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """``sql`` for each row; a plain ``INSERT ... VALUES (...)`` takes all its rows in one
        statement (a ticket's two SLA clocks, a cascade's firings)."""
        # executemany costs about three executes, and most units write one row or none.
        if len(rows) == 1:
            self._conn.execute(sql, rows[0])
        elif (  # no ON CONFLICT after the values; within the parameter limit
            rows
            and sql.startswith("INSERT")
            and " VALUES (" in sql
            and sql.endswith(")")
            and len(rows[0]) * len(rows) <= _VARIABLES
        ):
            head, group = sql.rsplit(" VALUES ", 1)
            values = ", ".join([group] * len(rows))
            self._conn.execute(head + " VALUES " + values, [v for row in rows for v in row])
        elif rows:
            self._conn.executemany(sql, rows)

    def _known_guild(self, guild_id: str) -> None:
        """Create the server's row if it is new (without reading, or unsealing, its settings)."""
        self._conn.execute("INSERT OR IGNORE INTO guilds (guild_id) VALUES (?)", (guild_id,))
