"""Tickets: the tickets themselves, their numbers, rule firings, routing (pointers, duty,
the queue), SLA clocks, saved answers sent, #ops messages and the counts stats read."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from thothbot.core.models import (
    ActionOutcome,
    ActionType,
    Firing,
    SlaTarget,
    Status,
    Ticket,
    TicketSource,
    Trigger,
)
from thothbot.core.routing import QueuedTicket, RoutingState
from thothbot.core.sla import SlaClock
from thothbot.store.base import SqliteBase, from_ts, ts

_SELECT_TICKET = """
    SELECT id, guild_id, number, type_id, customer_id, subject, body, status, escalated,
           escalation_reason, replies_paused, assignee_id, tags, urgency, created_at,
           first_staff_reply_at, closed_at, rating, source, ref, channel_id, claimed_by
    FROM tickets WHERE {column} = ?
"""


_TICKET_BY = {column: _SELECT_TICKET.replace("{column}", column) for column in ("id", "channel_id")}


_DUE_CLOCKS = """
    SELECT ticket_id, target, deadline FROM sla_clocks
    WHERE status = 'pending' AND deadline {op} ? ORDER BY deadline, ticket_id, target LIMIT ?
"""


_DUE_CLOCKS_BY = {op: _DUE_CLOCKS.replace("{op}", op) for op in ("<", "<=")}


def _ticket(row: sqlite3.Row) -> Ticket:
    return Ticket(
        id=row[0],
        guild_id=row[1],
        number=row[2],
        type_id=row[3],
        customer_id=row[4],
        subject=row[5],
        body=row[6],
        status=Status(row[7]),
        escalated=bool(row[8]),
        escalation_reason=row[9],
        replies_paused=bool(row[10]),
        assignee_id=row[11],
        tags=tuple(json.loads(row[12])),
        urgency=row[13],
        created_at=datetime.fromisoformat(row[14]),
        first_staff_reply_at=from_ts(row[15]),
        closed_at=from_ts(row[16]),
        rating=row[17],
        source=TicketSource(row[18]),
        ref=row[19],
        channel_id=row[20],
        claimed_by=row[21],
    )


def _updatable(ticket: Ticket) -> tuple[Any, ...]:
    return (
        ticket.status.value,
        int(ticket.escalated),
        ticket.escalation_reason,
        int(ticket.replies_paused),
        ticket.assignee_id,
        json.dumps(ticket.tags, ensure_ascii=False),
        str(ticket.urgency) if ticket.urgency is not None else None,
        ts(ticket.first_staff_reply_at) if ticket.first_staff_reply_at else None,
        ts(ticket.closed_at) if ticket.closed_at else None,
        ticket.rating,
        ticket.channel_id,
        ticket.claimed_by,
    )


class SqliteTickets(SqliteBase):
    """Tickets and what hangs off them, inside one unit of work."""

    # Tickets

    def reserve_number(self, guild_id: str) -> int:
        """Take the server's next ticket number."""
        taken = self._one(
            "UPDATE guilds SET next_ticket_number = next_ticket_number + 1 WHERE guild_id = ?"
            " RETURNING next_ticket_number - 1",
            (guild_id,),
        )
        if taken is None:  # a server seen for the first time
            self._known_guild(guild_id)
            return self.reserve_number(guild_id)
        return int(taken[0])

    def insert_ticket(self, ticket: Ticket) -> Ticket:
        number = ticket.number or self.reserve_number(ticket.guild_id)
        cursor = self._conn.execute(
            "INSERT INTO tickets (guild_id, number, type_id, customer_id, subject, body, status,"
            " created_at, source, ref, channel_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ticket.guild_id,
                number,
                ticket.type_id,
                ticket.customer_id,
                ticket.subject,
                ticket.body,
                ticket.status.value,
                ts(ticket.created_at),
                ticket.source,
                ticket.ref,
                ticket.channel_id,
            ),
        )
        inserted = replace(ticket, id=cast(int, cursor.lastrowid), number=number)
        if self._batch is not None:
            self._batch.keep(inserted)
        return inserted

    def ticket(self, ticket_id: int) -> Ticket | None:
        """The ticket (in a batch, as the batch last read or saved it)."""
        if self._batch is not None and ticket_id in self._batch.tickets:
            return self._batch.tickets[ticket_id]
        row = self._one(_TICKET_BY["id"], (ticket_id,))
        ticket = _ticket(row) if row is not None else None
        if self._batch is not None and ticket is not None:
            self._batch.keep(ticket)
        return ticket

    def ticket_by_channel(self, channel_id: str) -> Ticket | None:
        row = self._one(_TICKET_BY["channel_id"], (channel_id,))
        return _ticket(row) if row is not None else None

    def delete_ticket(self, ticket_id: int) -> None:
        for table in (
            "sla_clocks", "assignment_queue", "rule_firings", "answers_sent", "ops_messages",
            "deliveries",
        ):  # fmt: skip
            self._conn.execute(f"DELETE FROM {table} WHERE ticket_id = ?", (ticket_id,))  # noqa: S608
        self._conn.execute("DELETE FROM tickets WHERE id = ?", (ticket_id,))
        if self._batch is not None:
            self._batch.tickets.pop(ticket_id, None)

    def save_ticket(self, ticket: Ticket) -> None:
        self._conn.execute(
            "UPDATE tickets SET status = ?, escalated = ?, escalation_reason = ?,"
            " replies_paused = ?, assignee_id = ?, tags = ?, urgency = ?,"
            " first_staff_reply_at = ?, closed_at = ?, rating = ?, channel_id = ?, claimed_by = ?"
            " WHERE id = ?",
            (*_updatable(ticket), ticket.id),
        )
        if self._batch is not None:
            self._batch.keep(ticket)

    def unlabelled_tickets(self, limit: int) -> list[Ticket]:
        """Open tickets whose urgency is not known yet, oldest first (the triage loop's work)."""
        rows = self._all(
            _SELECT_TICKET.replace(
                "{column} = ?", "urgency IS NULL AND status != 'closed' ORDER BY id LIMIT ?"
            ),
            (limit,),
        )
        return [_ticket(row) for row in rows]

    def open_tickets_of(self, guild_id: str, customer_id: str) -> list[Ticket]:
        rows = self._all(
            _SELECT_TICKET.replace("{column} = ?", "guild_id = ? AND customer_id = ?")
            + " AND status = 'open' ORDER BY id",
            (guild_id, customer_id),
        )
        return [_ticket(row) for row in rows]

    def tickets_since(self, guild_id: str, since: datetime) -> list[Ticket]:
        rows = self._all(
            _SELECT_TICKET.replace("{column} = ?", "guild_id = ? AND created_at >= ?"),
            (guild_id, ts(since)),
        )
        return [_ticket(row) for row in rows]

    # Rule firings

    def insert_firings(self, guild_id: str, firings: Iterable[Firing]) -> None:
        self._many(
            "INSERT INTO rule_firings (guild_id, ticket_id, at, trigger, rule_id, outcomes)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    guild_id,
                    f.ticket_id,
                    ts(f.at),
                    f.trigger.value,
                    f.rule_id,
                    json.dumps(
                        [
                            {"type": o.type.value, "applied": o.applied, "detail": o.detail}
                            | ({"tag": o.tag} if o.tag is not None else {})
                            for o in f.outcomes
                        ],
                        ensure_ascii=False,
                    ),
                )
                for f in firings
            ],
        )

    def prune_firings(self, before: datetime, limit: int | None = None) -> int:
        cursor = self._conn.execute(
            "DELETE FROM rule_firings WHERE id IN (SELECT id FROM rule_firings WHERE at <= ?"
            " LIMIT ?)",
            (ts(before), -1 if limit is None else limit),
        )
        return cursor.rowcount

    def recent_firings(self, guild_id: str, limit: int) -> list[Firing]:
        rows = self._all(
            "SELECT f.ticket_id, t.number, f.at, f.trigger, f.rule_id, f.outcomes"
            " FROM rule_firings f JOIN tickets t ON t.id = f.ticket_id"
            " WHERE f.guild_id = ? ORDER BY f.id DESC LIMIT ?",
            (guild_id, limit),
        )
        return [
            Firing(
                at=datetime.fromisoformat(at),
                ticket_id=ticket_id,
                trigger=Trigger(trigger),
                rule_id=rule_id,
                outcomes=tuple(
                    ActionOutcome(ActionType(o["type"]), o["applied"], o["detail"], o.get("tag"))
                    for o in json.loads(outcomes)
                ),
                ticket_number=number,
            )
            for ticket_id, number, at, trigger, rule_id, outcomes in rows
        ]

    # Routing

    def routing_state(
        self, guild_id: str, capacity: int | None, ticket_ids: Iterable[int] = ()
    ) -> RoutingState:
        # In a batch, duty and pointers are read once and kept as this connection changes them.
        kept = self._batch.routing.get(guild_id) if self._batch is not None else None
        if kept is None:
            off_duty_rows = self._all(
                "SELECT user_id FROM duty WHERE guild_id = ? AND NOT on_duty", (guild_id,)
            )
            pointer_rows = self._all(
                "SELECT pool, last_agent FROM routing_pointers WHERE guild_id = ?", (guild_id,)
            )
            kept = ({r[0] for r in off_duty_rows}, dict(pointer_rows))
            if self._batch is not None:
                self._batch.routing[guild_id] = kept
        off_duty, pointers = frozenset(kept[0]), dict(kept[1])
        load: dict[str, int] = {}
        if capacity is not None:
            load = dict(
                self._all(
                    "SELECT assignee_id, COUNT(*) FROM tickets WHERE guild_id = ?"
                    " AND status = 'open' AND assignee_id IS NOT NULL GROUP BY assignee_id",
                    (guild_id,),
                )
            )
        queued = frozenset(
            ticket_id
            for ticket_id in ticket_ids
            if self._one("SELECT 1 FROM assignment_queue WHERE ticket_id = ?", (ticket_id,))
        )
        return RoutingState(
            capacity=capacity, off_duty=off_duty, load=load, pointers=pointers, queued=queued
        )

    def save_pointers(self, guild_id: str, state: RoutingState) -> None:
        self._many(
            "INSERT INTO routing_pointers (guild_id, pool, last_agent) VALUES (?, ?, ?)"
            " ON CONFLICT (guild_id, pool) DO UPDATE SET last_agent = excluded.last_agent",
            [(guild_id, pool, state.pointers[pool]) for pool in state.moved_pointers],
        )
        if self._batch is not None and guild_id in self._batch.routing:
            kept = self._batch.routing[guild_id][1]
            kept.update((pool, state.pointers[pool]) for pool in state.moved_pointers)

    def set_duty(self, guild_id: str, user_id: str, on_duty: bool) -> None:
        self._conn.execute(
            "INSERT INTO duty (guild_id, user_id, on_duty) VALUES (?, ?, ?)"
            " ON CONFLICT (guild_id, user_id) DO UPDATE SET on_duty = excluded.on_duty",
            (guild_id, user_id, on_duty),
        )
        if self._batch is not None:
            self._batch.routing.pop(guild_id, None)

    def has_queue(self, guild_id: str) -> bool:
        return (
            self._one("SELECT 1 FROM assignment_queue WHERE guild_id = ?", (guild_id,)) is not None
        )

    def queue(self, guild_id: str) -> Iterator[QueuedTicket]:
        cursor = self._conn.execute(
            "SELECT ticket_id, type_id, rule_id, queued_at FROM assignment_queue"
            " WHERE guild_id = ? ORDER BY queued_at, ticket_id",
            (guild_id,),
        )
        for r in cursor:
            yield QueuedTicket(r[0], r[1], r[2], datetime.fromisoformat(r[3]))

    def enqueue(self, guild_id: str, entries: Iterable[QueuedTicket]) -> None:
        self._many(
            "INSERT INTO assignment_queue (ticket_id, guild_id, type_id, rule_id, queued_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(q.ticket_id, guild_id, q.type_id, q.rule_id, ts(q.queued_at)) for q in entries],
        )

    def dequeue(self, ticket_ids: Iterable[int]) -> None:
        self._many("DELETE FROM assignment_queue WHERE ticket_id = ?", [(i,) for i in ticket_ids])

    # SLA clocks

    def start_clocks(self, ticket_id: int, deadlines: Mapping[SlaTarget, datetime]) -> None:
        self._many(
            "INSERT INTO sla_clocks (ticket_id, target, deadline, status)"
            " VALUES (?, ?, ?, 'pending')",
            [(ticket_id, target.value, ts(deadline)) for target, deadline in deadlines.items()],
        )

    def pending_clocks(self, ticket_id: int) -> dict[SlaTarget, SlaClock]:
        """The ticket's clocks still running, by target, in one read."""
        rows = self._all(
            "SELECT target, deadline FROM sla_clocks WHERE ticket_id = ? AND status = 'pending'",
            (ticket_id,),
        )
        return {
            SlaTarget(t): SlaClock(ticket_id, SlaTarget(t), datetime.fromisoformat(d))
            for t, d in rows
        }

    def resolve_clock(self, clock: SlaClock, status: str, at: datetime) -> None:
        self._conn.execute(
            "UPDATE sla_clocks SET status = ?, resolved_at = ? WHERE ticket_id = ? AND target = ?",
            (status, ts(at), clock.ticket_id, clock.target.value),
        )

    def due_clocks(self, until: datetime, *, inclusive: bool, limit: int = 100) -> list[SlaClock]:
        rows = self._all(_DUE_CLOCKS_BY["<=" if inclusive else "<"], (ts(until), limit))
        return [SlaClock(r[0], SlaTarget(r[1]), datetime.fromisoformat(r[2])) for r in rows]

    def next_deadline(self) -> datetime | None:
        row = self._one("SELECT MIN(deadline) FROM sla_clocks WHERE status = 'pending'")
        return from_ts(row[0])

    def clocks(self, ticket_id: int) -> list[tuple[SlaTarget, datetime, str]]:
        rows = self._all(
            "SELECT target, deadline, status FROM sla_clocks WHERE ticket_id = ? ORDER BY target",
            (ticket_id,),
        )
        return [(SlaTarget(r[0]), datetime.fromisoformat(r[1]), r[2]) for r in rows]

    def breaches_since(self, guild_id: str, since: datetime) -> int:
        (count,) = self._one(
            "SELECT count(*) FROM sla_clocks JOIN tickets ON tickets.id = sla_clocks.ticket_id"
            " WHERE tickets.guild_id = ? AND sla_clocks.status = 'breached'"
            " AND sla_clocks.resolved_at >= ?",
            (guild_id, ts(since)),
        )
        return int(count)

    def breach_count(self) -> int:
        (count,) = self._one("SELECT count(*) FROM sla_clocks WHERE status = 'breached'")
        return int(count)

    # Saved answers sent, #ops messages

    def answers_sent(self, ticket_id: int) -> list[int]:
        rows = self._all("SELECT answer_id FROM answers_sent WHERE ticket_id = ?", (ticket_id,))
        return [row[0] for row in rows]

    def mark_answer_sent(self, ticket_id: int, answer_id: int) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO answers_sent (ticket_id, answer_id) VALUES (?, ?)",
            (ticket_id, answer_id),
        )

    def ops_messages(self, ticket_id: int) -> list[tuple[str, str, str]]:
        rows = self._all(
            "SELECT channel_id, message_id, reason FROM ops_messages WHERE ticket_id = ?",
            (ticket_id,),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def add_ops_message(
        self, ticket_id: int, channel_id: str, message_id: str, reason: str
    ) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO ops_messages (ticket_id, channel_id, message_id, reason)"
            " VALUES (?, ?, ?, ?)",
            (ticket_id, channel_id, message_id, reason),
        )
