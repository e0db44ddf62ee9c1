"""What every aggregate's SQL builds on: the open connection and sealer of one unit of work,
three query helpers, and how a moment is stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from thothbot import sealing


def ts(moment: datetime) -> str:
    """A datetime as stored: UTC, ISO-8601, microseconds, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_ts(text: str | None) -> datetime | None:
    """A stored moment read back (None stays None)."""
    return datetime.fromisoformat(text) if text is not None else None


class SqliteBase:
    """Synchronous access to the database inside one unit of work (runs on the database thread).

    Each aggregate's methods are a mixin over this; ``thothbot.store.tx.SqliteTx`` composes them.
    """

    def __init__(self, conn: sqlite3.Connection, sealer: sealing.Sealer) -> None:
        self._conn = conn
        self._sealer = sealer

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def _one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return self._conn.execute(sql, tuple(params)).fetchone()

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        # executemany costs about three executes, and most units write one row or none.
        if len(rows) == 1:
            self._conn.execute(sql, rows[0])
        elif rows:
            self._conn.executemany(sql, rows)

    def _known_guild(self, guild_id: str) -> None:
        """Create the server's row if it is new (without reading, or unsealing, its settings)."""
        self._conn.execute("INSERT OR IGNORE INTO guilds (guild_id) VALUES (?)", (guild_id,))
