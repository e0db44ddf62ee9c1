"""A Discord ticket's channel life: openings (a number taken before the channel exists) and
closings (transcript, DM, rating request, channel deletion), with the kept transcript."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from thothbot.core.channels import CLOSING_STEPS, Closing, Opening
from thothbot.store.base import from_ts, ts
from thothbot.store.tickets import SqliteTickets

_SELECT_OPENING = (
    "SELECT id, guild_id, number, customer_id, subject, body, type_id, created_at, channel_id,"
    " ticket_id FROM openings"
)


def _opening(row: sqlite3.Row) -> Opening:
    return Opening(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6],
        datetime.fromisoformat(row[7]), row[8], row[9],
    )  # fmt: skip


_SELECT_CLOSING = (
    "SELECT ticket_id, guild_id, channel_id, closed_by, closed_by_name, reason, upload_limit,"
    " closed_at, delete_at, next_at, attempts, error, read, logged, sent, asked, deleted,"
    " finished_at FROM closings"
)


def _closing(row: sqlite3.Row) -> Closing:
    return Closing(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6],
        datetime.fromisoformat(row[7]), datetime.fromisoformat(row[8]),
        datetime.fromisoformat(row[9]), row[10], row[11], row[12], row[13], row[14], row[15],
        row[16], from_ts(row[17]),
    )  # fmt: skip


class SqliteChannels(SqliteTickets):
    """Openings and closings, inside one unit of work (an opening takes a ticket number)."""

    # Openings: a Discord ticket between its number and its card

    def insert_opening(
        self,
        guild_id: str,
        customer_id: str,
        subject: str,
        *,
        body: str,
        type_id: str | None,
        at: datetime,
    ) -> Opening:
        number = self.reserve_number(guild_id)
        cursor = self._conn.execute(
            "INSERT INTO openings (guild_id, number, customer_id, subject, body, type_id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (guild_id, number, customer_id, subject, body, type_id, ts(at)),
        )
        return Opening(
            cast(int, cursor.lastrowid), guild_id, number, customer_id, subject, body, type_id, at
        )

    def opening(self, opening_id: int) -> Opening | None:
        row = self._one(f"{_SELECT_OPENING} WHERE id = ?", (opening_id,))
        return _opening(row) if row is not None else None

    def openings(self, guild_id: str) -> list[Opening]:
        rows = self._all(f"{_SELECT_OPENING} WHERE guild_id = ? ORDER BY id", (guild_id,))
        return [_opening(row) for row in rows]

    def opening_saved(self, opening_id: int, ticket_id: int, channel_id: str | None) -> None:
        self._conn.execute(
            "UPDATE openings SET ticket_id = ?, channel_id = COALESCE(?, channel_id) WHERE id = ?",
            (ticket_id, channel_id, opening_id),
        )

    def opening_done(self, opening_id: int) -> None:
        self._conn.execute("DELETE FROM openings WHERE id = ?", (opening_id,))

    def abandon_opening(self, opening: Opening) -> bool:
        self._conn.execute("DELETE FROM openings WHERE id = ?", (opening.id,))
        cursor = self._conn.execute(
            "UPDATE guilds SET next_ticket_number = ? WHERE guild_id = ?"
            " AND next_ticket_number = ?",
            (opening.number, opening.guild_id, opening.number + 1),
        )
        return cursor.rowcount == 1

    # Closings: a closed ticket's transcript, DM, rating request and channel deletion

    def insert_closing(self, closing: Closing) -> None:
        self._conn.execute(
            "INSERT INTO closings (ticket_id, guild_id, channel_id, closed_by, closed_by_name,"
            " reason, upload_limit, closed_at, delete_at, next_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                closing.ticket_id,
                closing.guild_id,
                closing.channel_id,
                closing.closed_by,
                closing.closed_by_name,
                closing.reason,
                closing.upload_limit,
                ts(closing.closed_at),
                ts(closing.delete_at),
                ts(closing.next_at),
            ),
        )

    def closing(self, ticket_id: int) -> Closing | None:
        row = self._one(f"{_SELECT_CLOSING} WHERE ticket_id = ?", (ticket_id,))
        return _closing(row) if row is not None else None

    def closings_due(self, now: datetime, limit: int = 20) -> list[Closing]:
        rows = self._all(
            f"{_SELECT_CLOSING} WHERE finished_at IS NULL AND next_at <= ?"
            " ORDER BY next_at LIMIT ?",
            (ts(now), limit),
        )
        return [_closing(row) for row in rows]

    def next_closing_at(self) -> datetime | None:
        (at,) = self._one("SELECT min(next_at) FROM closings WHERE finished_at IS NULL")
        return from_ts(at)

    def closings_restart(self, now: datetime) -> None:
        self._conn.execute(
            "UPDATE closings SET next_at = ? WHERE finished_at IS NULL AND next_at > ?",
            (ts(now), ts(now)),
        )

    def begin_closing(self, ticket_id: int, retry_at: datetime) -> None:
        self._conn.execute(
            "UPDATE closings SET attempts = attempts + 1, next_at = ? WHERE ticket_id = ?",
            (ts(retry_at), ticket_id),
        )

    def closing_step(self, ticket_id: int, step: str, outcome: str) -> None:
        if step not in CLOSING_STEPS:
            raise ValueError(f"no closing step {step!r}")
        self._conn.execute(
            f"UPDATE closings SET {step} = ? WHERE ticket_id = ?",  # noqa: S608
            (outcome, ticket_id),
        )

    def closing_later(self, ticket_id: int, next_at: datetime, error: str | None) -> None:
        self._conn.execute(
            "UPDATE closings SET next_at = ?, error = ? WHERE ticket_id = ?",
            (ts(next_at), error, ticket_id),
        )

    def finish_closing(self, ticket_id: int, at: datetime) -> None:
        self._conn.execute("DELETE FROM transcript_parts WHERE ticket_id = ?", (ticket_id,))
        self._conn.execute(
            "UPDATE closings SET finished_at = ?, error = NULL WHERE ticket_id = ?",
            (ts(at), ticket_id),
        )

    def save_transcript(
        self, ticket_id: int, parts: Sequence[Sequence[tuple[str, bytes]]], outcome: str
    ) -> None:
        self._conn.execute("DELETE FROM transcript_parts WHERE ticket_id = ?", (ticket_id,))
        self._many(
            "INSERT INTO transcript_parts (ticket_id, part, position, name, data)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (ticket_id, part, position, name, data)
                for part, files in enumerate(parts)
                for position, (name, data) in enumerate(files)
            ],
        )
        self.closing_step(ticket_id, "read", outcome)

    def transcript(self, ticket_id: int) -> list[list[tuple[str, bytes]]]:
        parts: dict[int, list[tuple[str, bytes]]] = {}
        for part, name, data in self._all(
            "SELECT part, name, data FROM transcript_parts WHERE ticket_id = ?"
            " ORDER BY part, position",
            (ticket_id,),
        ):
            parts.setdefault(part, []).append((name, bytes(data)))
        return [parts[part] for part in sorted(parts)]
