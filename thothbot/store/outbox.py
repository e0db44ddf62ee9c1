"""The outbox: deliveries of escalations to their destinations, each tried until it is sent
or given up, and the destinations that said Gone."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime

from thothbot import sealing
from thothbot.core.delivery import DeliveryRow
from thothbot.core.destinations import DeliveryStatus
from thothbot.store.base import SqliteBase, from_ts, ts

_SELECT_DELIVERY = (
    "SELECT id, guild_id, ticket_id, destination, reason, created_at, attempts,"
    " event_id, body, attempt, attempting_at FROM deliveries"
)


# The due moment of a delivery handed to the running worker (``hold_delivery``): after every
# real one, so no read of what is due returns it while that worker has it in hand.
HELD = ts(datetime.max.replace(tzinfo=UTC))


def _delivery(row: sqlite3.Row) -> DeliveryRow:
    created_at = datetime.fromisoformat(row[5])
    return DeliveryRow(
        row[0], row[1], row[2], row[3], row[4], created_at, row[6],
        row[7], row[8], row[9], from_ts(row[10]),
    )  # fmt: skip


class SqliteOutbox(SqliteBase):
    """The outbox, inside one unit of work."""

    # Deliveries

    def insert_deliveries(self, rows: Iterable[tuple[str, int, str, str, datetime]]) -> None:
        self._many(
            "INSERT INTO deliveries (guild_id, ticket_id, destination, reason, created_at,"
            " status, next_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
            [(g, t, d, r, ts(at), ts(at)) for g, t, d, r, at in rows],
        )

    def hold_delivery(self, row: tuple[str, int, str, str, datetime], event_id: str) -> DeliveryRow:
        """Insert a delivery (``insert_deliveries``' row) handed to this process's worker at
        once: its ``event_id`` fixed and a try of a post carrying it marked from its moment,
        held out of the due reads until the worker records the outcome (or a restart releases
        it, ``release_held``)."""
        guild_id, ticket_id, destination, reason, at = row
        cursor = self._conn.execute(
            "INSERT INTO deliveries (guild_id, ticket_id, destination, reason, created_at,"
            " status, next_at, event_id, attempt, attempting_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            (guild_id, ticket_id, destination, reason, ts(at), HELD, event_id, event_id, ts(at)),
        )
        assert cursor.lastrowid is not None
        return DeliveryRow(
            cursor.lastrowid, guild_id, ticket_id, destination, reason, at, 0,
            event_id, None, event_id, at,
        )  # fmt: skip

    def release_held(self, now: datetime) -> None:
        """Deliveries held by a worker that stopped are due at ``now``; their marks stay (the
        post may have been made), so the next try looks for it first."""
        self._conn.execute(
            "UPDATE deliveries SET next_at = ? WHERE status = 'pending' AND next_at = ?",
            (ts(now), HELD),
        )

    def release(self, ids: Iterable[int], at: datetime) -> None:
        """Held deliveries the worker did not try: due at ``at``, their marks cleared."""
        self._many(
            "UPDATE deliveries SET next_at = ?, attempt = NULL, attempting_at = NULL"
            " WHERE id = ? AND next_at = ?",
            [(ts(at), i, HELD) for i in ids],
        )

    def due_deliveries(self, now: datetime, limit: int = 100) -> list[DeliveryRow]:
        rows = self._all(
            f"{_SELECT_DELIVERY} WHERE status = 'pending' AND next_at <= ?"
            " ORDER BY next_at, id LIMIT ?",
            (ts(now), limit),
        )
        return [_delivery(row) for row in rows]

    def waiting_deliveries(self, destination: str) -> list[DeliveryRow]:
        rows = self._all(
            f"{_SELECT_DELIVERY} WHERE status = 'pending' AND destination = ? ORDER BY id",
            (destination,),
        )
        return [_delivery(row) for row in rows]

    def next_delivery_at(self) -> datetime | None:
        row = self._one(
            "SELECT min(next_at) FROM deliveries WHERE status = 'pending' AND next_at < ?", (HELD,)
        )
        return from_ts(row[0])

    def sent_since(self, destination: str, since: datetime) -> list[datetime]:
        rows = self._all(
            "SELECT sent_at FROM deliveries WHERE destination = ? AND status = 'sent'"
            " AND sent_at >= ?",
            (destination, ts(since)),
        )
        return [datetime.fromisoformat(row[0]) for row in rows]

    def delivered(
        self,
        ids: Iterable[int],
        at: datetime,
        message_id: str | None,
        status: DeliveryStatus = DeliveryStatus.SENT,
    ) -> None:
        self._many(
            "UPDATE deliveries SET status = ?, sent_at = ?, message_id = ?,"
            " attempts = attempts + 1, error = NULL, next_at = ? WHERE id = ?",
            [(status.value, ts(at), message_id, ts(at), i) for i in ids],
        )

    def delivery_failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        error = sealing.scrub(error)  # an HTTP error may quote the webhook URL, token and all
        if retry_at is None:
            self._conn.execute(
                "UPDATE deliveries SET status = 'failed', attempts = attempts + 1, error = ?"
                " WHERE id = ?",
                (error, delivery_id),
            )
        else:
            self._conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, error = ?, next_at = ?"
                " WHERE id = ?",
                (error, ts(retry_at), delivery_id),
            )

    def postpone(self, ids: Iterable[int], until: datetime) -> None:
        self._many(
            "UPDATE deliveries SET next_at = ? WHERE id = ? AND next_at < ?",
            [(ts(until), i, ts(until)) for i in ids],
        )

    def prune_deliveries(self, before: datetime, limit: int | None = None) -> int:
        cursor = self._conn.execute(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries"
            " WHERE status != 'pending' AND created_at <= ? LIMIT ?)",
            (ts(before), -1 if limit is None else limit),
        )
        return cursor.rowcount

    def delivery_counts(self) -> dict[str, int]:
        return dict(self._all("SELECT status, count(*) FROM deliveries GROUP BY status"))

    # Exactly once as people see it

    def fix_event(self, delivery_id: int, event_id: str, body: str | None) -> None:
        self._conn.execute(
            "UPDATE deliveries SET event_id = coalesce(event_id, ?), body = coalesce(body, ?)"
            " WHERE id = ?",
            (event_id, body, delivery_id),
        )

    def attempting(self, ids: Iterable[int], marker: str | None, at: datetime | None) -> None:
        stamp = ts(at) if at is not None else None
        self._many(
            "UPDATE deliveries SET attempt = ?, attempting_at = ? WHERE id = ?",
            [(marker, stamp, i) for i in ids],
        )

    # Destinations that said Gone

    def disable_destination(
        self, guild_id: str, target: str, label: str, at: datetime, reason: str
    ) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO disabled_destinations"
            " (guild_id, target, label, disabled_at, reason) VALUES (?, ?, ?, ?, ?)",
            (guild_id, target, label, ts(at), reason),
        )

    def disabled_destinations(self, guild_id: str) -> dict[str, tuple[str, datetime, str]]:
        rows = self._all(
            "SELECT target, label, disabled_at, reason FROM disabled_destinations"
            " WHERE guild_id = ?",
            (guild_id,),
        )
        return {r[0]: (r[1], datetime.fromisoformat(r[2]), r[3]) for r in rows}

    def enable_destinations(self, guild_id: str) -> None:
        self._conn.execute("DELETE FROM disabled_destinations WHERE guild_id = ?", (guild_id,))
