"""The only SQL in thothbot: one SQLite file through aiosqlite, schema from numbered migrations.

Work is done in units: ``await store.run(fn)`` calls ``fn(tx)`` on aiosqlite's database thread
inside one ``BEGIN IMMEDIATE`` transaction, so a unit is atomic, units never interleave, and a
whole gather -> decide -> save costs one thread hop instead of one per statement.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import stat
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite
from pydantic import SecretStr

from thothbot import sealing
from thothbot.core.answers import SavedAnswer
from thothbot.core.channels import CLOSING_STEPS, Closing, DiscordSetup, Opening
from thothbot.core.delivery import DeliveryRow
from thothbot.core.destinations import DeliveryStatus
from thothbot.core.ingress import ApiKeyRow, IdempotencyRecord, IngressEventRow
from thothbot.core.masking import map_secrets, reference, secret_fields
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
from thothbot.core.rules import Rule, rules_json
from thothbot.core.sla import SlaClock

log = logging.getLogger(__name__)

T = TypeVar("T")

MEMORY = ":memory:"


def ts(moment: datetime) -> str:
    """A datetime as stored: UTC, ISO-8601, microseconds, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


@dataclass(frozen=True, slots=True)
class GuildRow:
    guild_id: str
    rules: str
    settings: str
    revision: int


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
        first_staff_reply_at=_dt(row[15]),
        closed_at=_dt(row[16]),
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


class Tx:
    """Synchronous access to the database inside one unit of work (runs on the database thread)."""

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

    # Servers

    def guild(self, guild_id: str) -> GuildRow:
        """The server's stored rules and settings; a server seen for the first time is created."""
        row = self._one(
            "SELECT rules, settings, revision FROM guilds WHERE guild_id = ?", (guild_id,)
        )
        if row is None:
            self._conn.execute("INSERT INTO guilds (guild_id) VALUES (?)", (guild_id,))
            return GuildRow(guild_id, "[]", "{}", 0)
        return GuildRow(guild_id, row[0], self._open_settings(guild_id, row[1]), row[2])

    def _known_guild(self, guild_id: str) -> None:
        """Create the server's row if it is new (without reading, or unsealing, its settings)."""
        self._conn.execute("INSERT OR IGNORE INTO guilds (guild_id) VALUES (?)", (guild_id,))

    def _open_settings(self, guild_id: str, text: str) -> str:
        """The stored settings with their secrets unsealed (they are stored sealed)."""
        if sealing.SEALED not in text:
            return text
        context = f"settings:{guild_id}"
        document = map_secrets(json.loads(text), lambda _, v: self._sealer.open(v, context))
        return json.dumps(document, ensure_ascii=False)

    def revision(self, guild_id: str) -> int:
        """The server's settings revision (cheap: read before every unit to keep caches fresh)."""
        row = self._one("SELECT revision FROM guilds WHERE guild_id = ?", (guild_id,))
        return row[0] if row is not None else self.guild(guild_id).revision

    def save_rules(self, guild_id: str, rules: Sequence[Rule]) -> None:
        self._known_guild(guild_id)
        self._conn.execute(
            "UPDATE guilds SET rules = ?, revision = revision + 1 WHERE guild_id = ?",
            (json.dumps(rules_json(rules), ensure_ascii=False), guild_id),
        )

    def save_settings(self, guild_id: str, document: Mapping[str, Any]) -> None:
        """Store the settings, their secrets (webhook URLs, destination secrets) sealed."""
        self._known_guild(guild_id)
        context = f"settings:{guild_id}"
        sealed = map_secrets(document, lambda _, v: self._sealer.seal(v, context))
        self._conn.execute(
            "UPDATE guilds SET settings = ?, revision = revision + 1 WHERE guild_id = ?",
            (json.dumps(sealed, ensure_ascii=False), guild_id),
        )

    def seal_at_rest(self) -> bool:
        """Seal what is stored in clear or with an older master key; first open the stored
        check value, so a wrong key fails here having changed nothing. Whether clear secrets
        were found (a database from before sealing)."""
        check = self._one("SELECT value FROM sealing WHERE name = 'check'")
        if check is not None:
            self._sealer.open(check[0], sealing.CHECK_CONTEXT)
        if check is None or self._sealer.needs_sealing(check[0]):
            self._conn.execute(
                "INSERT OR REPLACE INTO sealing (name, value) VALUES ('check', ?)",
                (self._sealer.seal(sealing.CHECK_VALUE, sealing.CHECK_CONTEXT),),
            )
        found_clear = False

        def reseal(value: str, context: str) -> str:
            nonlocal found_clear
            if not self._sealer.needs_sealing(value):
                return value
            found_clear |= not sealing.is_sealed(value)
            return self._sealer.seal(self._sealer.open(value, context), context)

        for key_id, current, previous in self._all(
            "SELECT key_id, webhook_secret, previous_secret FROM api_keys"
        ):
            context = f"api_keys:{key_id}"
            if self._sealer.needs_sealing(current) or (
                previous is not None and self._sealer.needs_sealing(previous)
            ):
                self._conn.execute(
                    "UPDATE api_keys SET webhook_secret = ?, previous_secret = ? WHERE key_id = ?",
                    (
                        reseal(current, context),
                        reseal(previous, context) if previous is not None else None,
                        key_id,
                    ),
                )
        for guild_id, text in self._all("SELECT guild_id, settings FROM guilds"):
            document = json.loads(text)
            if any(self._sealer.needs_sealing(v) for _, v in secret_fields(document)):
                context = f"settings:{guild_id}"

                def change(_: tuple[str | int, ...], value: str, context: str = context) -> str:
                    return reseal(value, context)

                resealed = map_secrets(document, change)
                self._conn.execute(  # the same settings: the revision stays
                    "UPDATE guilds SET settings = ? WHERE guild_id = ?",
                    (json.dumps(resealed, ensure_ascii=False), guild_id),
                )
        if self._one("SELECT 1 FROM sealing WHERE name = 'upgrade'"):
            found_clear |= self._scrub_outbox()
            self._conn.execute("DELETE FROM sealing WHERE name = 'upgrade'")
        return found_clear

    def _scrub_outbox(self) -> bool:
        """Replace the destinations that older versions copied whole (URL, secret) into the
        outbox by references; whether any was found."""
        rows = self._all(
            "SELECT id, destination FROM deliveries"
            " WHERE json_extract(destination, '$.url') IS NOT NULL"
            " OR json_extract(destination, '$.secret') IS NOT NULL"
        )
        self._many(
            "UPDATE deliveries SET destination = ? WHERE id = ?",
            [(json.dumps(reference(json.loads(d)), sort_keys=True), i) for i, d in rows],
        )
        return bool(rows)

    # Tickets

    def reserve_number(self, guild_id: str) -> int:
        """Take the server's next ticket number."""
        self._known_guild(guild_id)
        (number,) = self._one(
            "UPDATE guilds SET next_ticket_number = next_ticket_number + 1 WHERE guild_id = ?"
            " RETURNING next_ticket_number - 1",
            (guild_id,),
        )
        return int(number)

    def insert_ticket(self, ticket: Ticket) -> Ticket:
        """Store a new ticket, giving it its id and, unless it has one, the next number."""
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
        return replace(ticket, id=cast(int, cursor.lastrowid), number=number)

    def ticket(self, ticket_id: int) -> Ticket | None:
        row = self._one(_TICKET_BY["id"], (ticket_id,))
        return _ticket(row) if row is not None else None

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

    def save_ticket(self, ticket: Ticket) -> None:
        """Write a ticket's changeable columns (the service saves only tickets that changed)."""
        self._conn.execute(
            "UPDATE tickets SET status = ?, escalated = ?, escalation_reason = ?,"
            " replies_paused = ?, assignee_id = ?, tags = ?, urgency = ?,"
            " first_staff_reply_at = ?, closed_at = ?, rating = ?, channel_id = ?, claimed_by = ?"
            " WHERE id = ?",
            (*_updatable(ticket), ticket.id),
        )

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
        """Forget rule firings made before ``before`` (at most ``limit``); how many were
        removed."""
        cursor = self._conn.execute(
            "DELETE FROM rule_firings WHERE id IN (SELECT id FROM rule_firings WHERE at <= ?"
            " LIMIT ?)",
            (ts(before), -1 if limit is None else limit),
        )
        return cursor.rowcount

    def recent_firings(self, guild_id: str, limit: int) -> list[Firing]:
        """The server's latest firings, newest first, with their tickets' numbers."""
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
        """Duty, pointers, load (only when a capacity is set) and which of ``ticket_ids`` queue."""
        state = RoutingState(capacity=capacity)
        state.off_duty = {
            r[0]
            for r in self._all(
                "SELECT user_id FROM duty WHERE guild_id = ? AND NOT on_duty", (guild_id,)
            )
        }
        state.pointers = dict(
            self._all(
                "SELECT pool, last_agent FROM routing_pointers WHERE guild_id = ?", (guild_id,)
            )
        )
        if capacity is not None:
            state.load = dict(
                self._all(
                    "SELECT assignee_id, COUNT(*) FROM tickets WHERE guild_id = ?"
                    " AND status = 'open' AND assignee_id IS NOT NULL GROUP BY assignee_id",
                    (guild_id,),
                )
            )
        for ticket_id in ticket_ids:
            if self._one("SELECT 1 FROM assignment_queue WHERE ticket_id = ?", (ticket_id,)):
                state.queued.add(ticket_id)
        return state

    def save_pointers(self, guild_id: str, state: RoutingState) -> None:
        self._many(
            "INSERT INTO routing_pointers (guild_id, pool, last_agent) VALUES (?, ?, ?)"
            " ON CONFLICT (guild_id, pool) DO UPDATE SET last_agent = excluded.last_agent",
            [(guild_id, pool, state.pointers[pool]) for pool in state.moved_pointers],
        )
        state.moved_pointers.clear()

    def set_duty(self, guild_id: str, user_id: str, on_duty: bool) -> None:
        self._conn.execute(
            "INSERT INTO duty (guild_id, user_id, on_duty) VALUES (?, ?, ?)"
            " ON CONFLICT (guild_id, user_id) DO UPDATE SET on_duty = excluded.on_duty",
            (guild_id, user_id, on_duty),
        )

    def has_queue(self, guild_id: str) -> bool:
        return (
            self._one("SELECT 1 FROM assignment_queue WHERE guild_id = ?", (guild_id,)) is not None
        )

    def queue(self, guild_id: str) -> Iterator[QueuedTicket]:
        """The server's queued tickets, oldest first, read lazily."""
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

    def pending_clock(self, ticket_id: int, target: SlaTarget) -> SlaClock | None:
        row = self._one(
            "SELECT deadline FROM sla_clocks WHERE ticket_id = ? AND target = ?"
            " AND status = 'pending'",
            (ticket_id, target.value),
        )
        return SlaClock(ticket_id, target, datetime.fromisoformat(row[0])) if row else None

    def resolve_clock(self, clock: SlaClock, status: str, at: datetime) -> None:
        self._conn.execute(
            "UPDATE sla_clocks SET status = ?, resolved_at = ? WHERE ticket_id = ? AND target = ?",
            (status, ts(at), clock.ticket_id, clock.target.value),
        )

    def due_clocks(self, until: datetime, *, inclusive: bool, limit: int = 100) -> list[SlaClock]:
        """Pending clocks whose deadline has come, earliest first."""
        rows = self._all(_DUE_CLOCKS_BY["<=" if inclusive else "<"], (ts(until), limit))
        return [SlaClock(r[0], SlaTarget(r[1]), datetime.fromisoformat(r[2])) for r in rows]

    def next_deadline(self) -> datetime | None:
        row = self._one("SELECT MIN(deadline) FROM sla_clocks WHERE status = 'pending'")
        return _dt(row[0])

    def clocks(self, ticket_id: int) -> list[tuple[SlaTarget, datetime, str]]:
        rows = self._all(
            "SELECT target, deadline, status FROM sla_clocks WHERE ticket_id = ? ORDER BY target",
            (ticket_id,),
        )
        return [(SlaTarget(r[0]), datetime.fromisoformat(r[1]), r[2]) for r in rows]

    # Classifier cache

    def cached_classification(
        self, key: str, now: datetime, ttl: timedelta
    ) -> tuple[str, str] | None:
        """The (label, reason) cached under ``key`` less than ``ttl`` before ``now``, if any."""
        row = self._one(
            "SELECT label, reason FROM classifier_cache WHERE key = ? AND created_at > ?",
            (key, ts(now - ttl)),
        )
        return (row[0], row[1]) if row is not None else None

    def cache_classification(self, key: str, label: str, reason: str, at: datetime) -> None:
        self._conn.execute(
            "INSERT INTO classifier_cache (key, label, reason, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET label = excluded.label, reason = excluded.reason,"
            " created_at = excluded.created_at",
            (key, label, reason, ts(at)),
        )

    def prune_classifications(self, now: datetime, ttl: timedelta, limit: int | None = None) -> int:
        """Forget classifications older than ``ttl`` (at most ``limit``); how many were removed."""
        cursor = self._conn.execute(
            "DELETE FROM classifier_cache WHERE key IN (SELECT key FROM classifier_cache"
            " WHERE created_at <= ? LIMIT ?)",
            (ts(now - ttl), -1 if limit is None else limit),
        )
        return cursor.rowcount

    # Ingress

    def insert_api_key(self, key: ApiKeyRow) -> None:
        """Store a new key: the hash of the API key, the webhook signing secret sealed."""
        self._conn.execute(
            "INSERT INTO api_keys (key_id, guild_id, key_hash, webhook_secret, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                key.key_id,
                key.guild_id,
                key.key_hash,
                self._sealer.seal(key.webhook_secret, f"api_keys:{key.key_id}"),
                ts(key.created_at),
            ),
        )

    def api_key(self, key_id: str) -> ApiKeyRow | None:
        row = self._one(_SELECT_API_KEY + " WHERE key_id = ?", (key_id,))
        return self._api_key(row) if row is not None else None

    def _api_key(self, row: sqlite3.Row) -> ApiKeyRow:
        context = f"api_keys:{row[0]}"
        return ApiKeyRow(
            row[0],
            row[1],
            row[2],
            self._sealer.open(row[3], context),
            datetime.fromisoformat(row[4]),
            _dt(row[5]),
            self._sealer.open(row[6], context) if row[6] is not None else None,
            _dt(row[7]),
        )

    def rotate_webhook_secret(
        self, key_id: str, secret: str, at: datetime, overlap: timedelta
    ) -> ApiKeyRow | None:
        """Make ``secret`` the key's signing secret; the one it replaces keeps verifying until
        ``at + overlap`` (an older one still overlapping stops now). None if the key is unknown;
        a revoked key is returned unchanged."""
        row = self.api_key(key_id)
        if row is None or row.revoked_at is not None:
            return row
        context = f"api_keys:{key_id}"
        self._conn.execute(
            "UPDATE api_keys SET webhook_secret = ?, previous_secret = ?,"
            " previous_expires_at = ? WHERE key_id = ?",
            (
                self._sealer.seal(secret, context),
                self._sealer.seal(row.webhook_secret, context),
                ts(at + overlap),
                key_id,
            ),
        )
        return self.api_key(key_id)

    def api_keys(self, guild_id: str | None = None) -> list[ApiKeyRow]:
        """Every key (of one server, when given), oldest first, revoked ones included."""
        if guild_id is None:
            rows = self._all(_SELECT_API_KEY + " ORDER BY created_at, key_id")
        else:
            rows = self._all(
                _SELECT_API_KEY + " WHERE guild_id = ? ORDER BY created_at, key_id", (guild_id,)
            )
        return [self._api_key(r) for r in rows]

    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKeyRow | None:
        """Revoke a key (a revoked key keeps its first revocation time); None if unknown."""
        self._conn.execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?",
            (ts(at), key_id),
        )
        return self.api_key(key_id)

    def idempotency_record(
        self, key_id: str, kind: str, request_key: str, since: datetime
    ) -> IdempotencyRecord | None:
        """The answer recorded for ``request_key`` after ``since``, if any."""
        row = self._one(
            "SELECT request_hash, status, answer, created_at FROM idempotency_records"
            " WHERE key_id = ? AND kind = ? AND request_key = ? AND created_at > ?",
            (key_id, kind, request_key, ts(since)),
        )
        if row is None:
            return None
        return IdempotencyRecord(row[0], row[1], row[2], datetime.fromisoformat(row[3]))

    def save_idempotency_record(
        self, key_id: str, kind: str, request_key: str, record: IdempotencyRecord
    ) -> None:
        # REPLACE: an expired record not purged yet gives way to the new request.
        self._conn.execute(
            "INSERT OR REPLACE INTO idempotency_records (key_id, kind, request_key,"
            " request_hash, status, answer, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key_id,
                kind,
                request_key,
                record.request_hash,
                record.status,
                record.answer,
                ts(record.created_at),
            ),
        )

    def purge_idempotency_records(self, before: datetime) -> int:
        """Forget idempotency records made before ``before``; how many were removed."""
        cursor = self._conn.execute(
            "DELETE FROM idempotency_records WHERE created_at <= ?", (ts(before),)
        )
        return cursor.rowcount

    def purge_ingress_events(self, before: datetime) -> int:
        """Forget events received before ``before`` whose ticket is closed (or was never
        opened); how many were removed. An open ticket's #ops post still shows its event."""
        cursor = self._conn.execute(
            "DELETE FROM ingress_events WHERE received_at <= ? AND status != 'pending'"
            " AND (ticket_id IS NULL"
            " OR ticket_id IN (SELECT id FROM tickets WHERE status = 'closed'))",
            (ts(before),),
        )
        return cursor.rowcount

    def insert_ingress_event(self, event: IngressEventRow) -> None:
        self._conn.execute(
            "INSERT INTO ingress_events (event_id, key_id, guild_id, name, payload, via,"
            " received_at, status, ticket_id, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.event_id,
                event.key_id,
                event.guild_id,
                event.name,
                json.dumps(event.payload, ensure_ascii=False),
                event.via,
                ts(event.received_at),
                event.status,
                event.ticket_id,
                event.error,
            ),
        )

    def pending_ingress_events(self, limit: int = 100) -> list[IngressEventRow]:
        """Events accepted but not yet processed, oldest first."""
        rows = self._all(
            _SELECT_INGRESS_EVENT
            + " WHERE status = 'pending' ORDER BY received_at, event_id LIMIT ?",
            (limit,),
        )
        return [_ingress_event(r) for r in rows]

    def count_pending_ingress_events(self) -> int:
        """How many events wait to be processed: the depth of the ingress worker's queue."""
        row = self._one("SELECT COUNT(*) FROM ingress_events WHERE status = 'pending'")
        return int(row[0])

    def finish_ingress_event(
        self, event_id: str, status: str, ticket_id: int | None, error: str | None = None
    ) -> None:
        self._conn.execute(
            "UPDATE ingress_events SET status = ?, ticket_id = ?, error = ? WHERE event_id = ?",
            (status, ticket_id, error, event_id),
        )

    def api_ticket(
        self, guild_id: str, customer_id: str, ref: str, created_at: datetime
    ) -> int | None:
        """The ticket an event opened, found by what it was opened with (crash recovery)."""
        row = self._one(
            "SELECT id FROM tickets WHERE guild_id = ? AND customer_id = ? AND source = 'api'"
            " AND ref = ? AND created_at = ?",
            (guild_id, customer_id, ref, ts(created_at)),
        )
        return row[0] if row is not None else None

    # Discord: setup, staff roles, saved answers, #ops messages, channels to delete

    def discord_setup(self, guild_id: str) -> DiscordSetup | None:
        row = self._one(
            "SELECT staff_role_id, ops_channel_id, log_channel_id, categories"
            " FROM discord_setup WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return None
        return DiscordSetup(guild_id, row[0], row[1], row[2], tuple(json.loads(row[3])))

    def save_discord_setup(self, setup: DiscordSetup) -> None:
        """Save a server's setup; bumps the revision, since the staff role changes who is staff."""
        self.guild(setup.guild_id)
        self._conn.execute(
            "INSERT OR REPLACE INTO discord_setup"
            " (guild_id, staff_role_id, ops_channel_id, log_channel_id, categories)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                setup.guild_id,
                setup.staff_role_id,
                setup.ops_channel_id,
                setup.log_channel_id,
                json.dumps(list(setup.categories)),
            ),
        )
        self._bump(setup.guild_id)

    def roster(self, guild_id: str) -> dict[str, list[str]]:
        """Members of each staff role, by role id."""
        roster: dict[str, list[str]] = {}
        for role_id, user_id in self._all(
            "SELECT role_id, user_id FROM role_members WHERE guild_id = ?"
            " ORDER BY role_id, user_id",
            (guild_id,),
        ):
            roster.setdefault(role_id, []).append(user_id)
        return roster

    def save_roster(self, guild_id: str, roster: Mapping[str, Iterable[str]]) -> bool:
        """Replace the stored role members; True (and a new revision) when anything changed."""
        new = {role: sorted(set(members)) for role, members in roster.items()}
        if self.roster(guild_id) == {role: members for role, members in new.items() if members}:
            return False
        self._conn.execute("DELETE FROM role_members WHERE guild_id = ?", (guild_id,))
        self._many(
            "INSERT INTO role_members (guild_id, role_id, user_id) VALUES (?, ?, ?)",
            [(guild_id, role, user) for role, members in new.items() for user in members],
        )
        self.guild(guild_id)
        self._bump(guild_id)
        return True

    def _bump(self, guild_id: str) -> None:
        self._conn.execute(
            "UPDATE guilds SET revision = revision + 1 WHERE guild_id = ?", (guild_id,)
        )

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

    def breaches_since(self, guild_id: str, since: datetime) -> int:
        (count,) = self._one(
            "SELECT count(*) FROM sla_clocks JOIN tickets ON tickets.id = sla_clocks.ticket_id"
            " WHERE tickets.guild_id = ? AND sla_clocks.status = 'breached'"
            " AND sla_clocks.resolved_at >= ?",
            (guild_id, ts(since)),
        )
        return int(count)

    def answers(self, guild_id: str) -> list[SavedAnswer]:
        return [
            SavedAnswer(row[0], tuple(json.loads(row[1])), row[2])
            for row in self._all(
                "SELECT id, triggers, text FROM saved_answers WHERE guild_id = ? ORDER BY id",
                (guild_id,),
            )
        ]

    def insert_answer(
        self, guild_id: str, triggers: Iterable[str], text: str, by: str, at: datetime
    ) -> int:
        cursor = self._conn.execute(
            "INSERT INTO saved_answers (guild_id, triggers, text, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (guild_id, json.dumps(list(triggers), ensure_ascii=False), text, by, ts(at)),
        )
        self._bump(guild_id)  # answers are cached with the server's config
        return cast(int, cursor.lastrowid)

    def delete_answer(self, guild_id: str, answer_id: int) -> bool:
        cursor = self._conn.execute(
            "DELETE FROM saved_answers WHERE guild_id = ? AND id = ?", (guild_id, answer_id)
        )
        self._bump(guild_id)
        return cursor.rowcount > 0

    def answers_sent(self, ticket_id: int) -> list[int]:
        rows = self._all("SELECT answer_id FROM answers_sent WHERE ticket_id = ?", (ticket_id,))
        return [row[0] for row in rows]

    def mark_answer_sent(self, ticket_id: int, answer_id: int) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO answers_sent (ticket_id, answer_id) VALUES (?, ?)",
            (ticket_id, answer_id),
        )

    def ops_messages(self, ticket_id: int) -> list[tuple[str, str, str]]:
        """(channel id, message id, reason) of every #ops post about this ticket."""
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
        """Take the server's next number for a ticket about to get its channel."""
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
        """The server's unfinished openings, oldest first."""
        rows = self._all(f"{_SELECT_OPENING} WHERE guild_id = ? ORDER BY id", (guild_id,))
        return [_opening(row) for row in rows]

    def opening_channel(self, opening_id: int, channel_id: str) -> None:
        self._conn.execute(
            "UPDATE openings SET channel_id = ? WHERE id = ?", (channel_id, opening_id)
        )

    def opening_saved(self, opening_id: int, ticket_id: int) -> None:
        self._conn.execute(
            "UPDATE openings SET ticket_id = ? WHERE id = ?", (ticket_id, opening_id)
        )

    def opening_done(self, opening_id: int) -> None:
        self._conn.execute("DELETE FROM openings WHERE id = ?", (opening_id,))

    def abandon_opening(self, opening: Opening) -> bool:
        """Forget an opening that will not become a ticket; give its number back when no later
        one was taken (whether it was is the return value: a burned number is logged)."""
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
        return _dt(at)

    def closings_restart(self, now: datetime) -> None:
        """After a restart every unfinished closing is worth a look at once."""
        self._conn.execute(
            "UPDATE closings SET next_at = ? WHERE finished_at IS NULL AND next_at > ?",
            (ts(now), ts(now)),
        )

    def begin_closing(self, ticket_id: int, retry_at: datetime) -> None:
        """Count an attempt before it acts; should it not end, the closing is due at
        ``retry_at`` and the next attempt looks in Discord before posting again."""
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
        """Every step is done: the kept transcript (ticket text) is not needed any more."""
        self._conn.execute("DELETE FROM transcript_parts WHERE ticket_id = ?", (ticket_id,))
        self._conn.execute(
            "UPDATE closings SET finished_at = ?, error = NULL WHERE ticket_id = ?",
            (ts(at), ticket_id),
        )

    def save_transcript(
        self, ticket_id: int, parts: Sequence[Sequence[tuple[str, bytes]]], outcome: str
    ) -> None:
        """Keep a closing ticket's transcript, read from its channel, and record the read."""
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
        """The kept transcript: each message's files, in order."""
        parts: dict[int, list[tuple[str, bytes]]] = {}
        for part, name, data in self._all(
            "SELECT part, name, data FROM transcript_parts WHERE ticket_id = ?"
            " ORDER BY part, position",
            (ticket_id,),
        ):
            parts.setdefault(part, []).append((name, bytes(data)))
        return [parts[part] for part in sorted(parts)]

    # The outbox

    def insert_deliveries(self, rows: Iterable[tuple[str, int, str, str, datetime]]) -> None:
        """(guild id, ticket id, destination JSON, reason, at) each, due at once."""
        self._many(
            "INSERT INTO deliveries (guild_id, ticket_id, destination, reason, created_at,"
            " status, next_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
            [(g, t, d, r, ts(at), ts(at)) for g, t, d, r, at in rows],
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
        row = self._one("SELECT min(next_at) FROM deliveries WHERE status = 'pending'")
        return _dt(row[0])

    def sent_since(self, destination: str, since: datetime) -> list[datetime]:
        """When posts to this destination went out (summaries included), for its rate limit."""
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
            " attempts = attempts + 1, error = NULL WHERE id = ?",
            [(status.value, ts(at), message_id, i) for i in ids],
        )

    def delivery_failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        """Note a failed try: due again at ``retry_at``, or given up when None."""
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
        """Due again at ``until`` (never sooner than planned), not counted as a try: a rate
        limit, or no bot connected."""
        self._many(
            "UPDATE deliveries SET next_at = ? WHERE id = ? AND next_at < ?",
            [(ts(until), i, ts(until)) for i in ids],
        )

    # The outbox: exactly once as people see it

    def fix_event(self, delivery_id: int, event_id: str, body: str | None) -> None:
        """Give a delivery its webhook-id (and an http destination its body) once, for good."""
        self._conn.execute(
            "UPDATE deliveries SET event_id = coalesce(event_id, ?), body = coalesce(body, ?)"
            " WHERE id = ?",
            (event_id, body, delivery_id),
        )

    def attempting(self, ids: Iterable[int], marker: str | None, at: datetime | None) -> None:
        """Note that a post carrying ``marker`` is being tried for these rows (None: settled)."""
        stamp = ts(at) if at is not None else None
        self._many(
            "UPDATE deliveries SET attempt = ?, attempting_at = ? WHERE id = ?",
            [(marker, stamp, i) for i in ids],
        )

    def disable_destination(
        self, guild_id: str, target: str, label: str, at: datetime, reason: str
    ) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO disabled_destinations"
            " (guild_id, target, label, disabled_at, reason) VALUES (?, ?, ?, ?, ?)",
            (guild_id, target, label, ts(at), reason),
        )

    def disabled_destinations(self, guild_id: str) -> dict[str, tuple[str, datetime, str]]:
        """target -> (label, disabled at, reason) of the server's destinations that said Gone."""
        rows = self._all(
            "SELECT target, label, disabled_at, reason FROM disabled_destinations"
            " WHERE guild_id = ?",
            (guild_id,),
        )
        return {r[0]: (r[1], datetime.fromisoformat(r[2]), r[3]) for r in rows}

    def enable_destinations(self, guild_id: str) -> None:
        self._conn.execute("DELETE FROM disabled_destinations WHERE guild_id = ?", (guild_id,))

    def prune_deliveries(self, before: datetime, limit: int | None = None) -> int:
        """Forget finished deliveries (sent, summarized or given up) of escalations made before
        ``before`` (at most ``limit``); how many were removed. Pending ones stay, whatever
        their age."""
        cursor = self._conn.execute(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries"
            " WHERE status != 'pending' AND created_at <= ? LIMIT ?)",
            (ts(before), -1 if limit is None else limit),
        )
        return cursor.rowcount

    def breach_count(self) -> int:
        (count,) = self._one("SELECT count(*) FROM sla_clocks WHERE status = 'breached'")
        return int(count)

    def delivery_counts(self) -> dict[str, int]:
        return dict(self._all("SELECT status, count(*) FROM deliveries GROUP BY status"))

    def source_event(self, ticket: Ticket) -> tuple[str, dict[str, Any]] | None:
        """The event (name, payload) an API ticket was opened from."""
        if ticket.source != TicketSource.API or ticket.ref is None:
            return None
        key_id = ticket.customer_id.removeprefix("api:")
        row = self._one(
            "SELECT name, payload FROM ingress_events WHERE key_id = ?"
            " AND json_extract(payload, '$.ticket_id') = ? AND guild_id = ?"
            " ORDER BY received_at DESC LIMIT 1",
            (key_id, ticket.ref, ticket.guild_id),
        )
        return (row[0], json.loads(row[1])) if row is not None else None

    def unlabelled_tickets(self, limit: int) -> list[Ticket]:
        """Open tickets whose urgency is not known yet, oldest first (the triage loop's work)."""
        rows = self._all(
            _SELECT_TICKET.replace(
                "{column} = ?", "urgency IS NULL AND status != 'closed' ORDER BY id LIMIT ?"
            ),
            (limit,),
        )
        return [_ticket(row) for row in rows]


_SELECT_DELIVERY = (
    "SELECT id, guild_id, ticket_id, destination, reason, created_at, attempts,"
    " event_id, body, attempt, attempting_at FROM deliveries"
)


def _delivery(row: sqlite3.Row) -> DeliveryRow:
    created_at = datetime.fromisoformat(row[5])
    return DeliveryRow(
        row[0], row[1], row[2], row[3], row[4], created_at, row[6],
        row[7], row[8], row[9], _dt(row[10]),
    )  # fmt: skip


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
        row[16], _dt(row[17]),
    )  # fmt: skip


_SELECT_API_KEY = (
    "SELECT key_id, guild_id, key_hash, webhook_secret, created_at, revoked_at,"
    " previous_secret, previous_expires_at FROM api_keys"
)
_SELECT_INGRESS_EVENT = (
    "SELECT event_id, key_id, guild_id, name, payload, via, received_at, status, ticket_id,"
    " error FROM ingress_events"
)


def _ingress_event(row: sqlite3.Row) -> IngressEventRow:
    return IngressEventRow(
        row[0],
        row[1],
        row[2],
        row[3],
        json.loads(row[4]),
        row[5],
        datetime.fromisoformat(row[6]),
        row[7],
        row[8],
        row[9],
    )


class StoreUnavailable(Exception):
    """The database cannot be opened: a path, permission or file problem, said in plain words."""


class DatabaseFault(StoreUnavailable, sqlite3.OperationalError):
    """The database file failed while working (full disk, read-only, damaged), in plain words.

    Still a ``sqlite3.OperationalError``, so code that keeps work pending on database trouble
    (the ingress worker, the outbox) treats it as before. What was committed before is kept:
    SQLite rolls the failed transaction back.
    """


class SchemaTooNew(StoreUnavailable):
    """The database was migrated by a newer thothbot: opening it could damage it."""


# Who opens which file, said once per open: a relative THOTH_DB_PATH run from another folder
# would otherwise silently make a second, empty database.
announce = logging.getLogger("thothbot.database")

# Created by whoever opens a database first: the database holds webhook secrets and every
# ticket's text, so only its owner reads it. SQLite gives its -wal and -shm the database's mode.
FOLDER_MODE = 0o700
FILE_MODE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")


class Store:
    """An open database: ``run`` units of work, ``close`` when done."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        db: aiosqlite.Connection | None,
        sealer: sealing.Sealer,
    ) -> None:
        self._conn = conn
        self._db = db
        self.path = path
        self.sealer = sealer

    @classmethod
    async def open(
        cls, path: str | Path, *, threaded: bool = True, secret_key: SecretStr | None = None
    ) -> Store:
        """Open (and migrate) the database at ``path``, with its secrets sealed by
        ``secret_key`` (``THOTH_SECRET_KEY``), else by the key file beside it.

        ``threaded`` runs every unit on aiosqlite's own thread, so the event loop never waits on
        the disk: what the bot and the ingress need. A batch with one caller and nothing else on
        its loop (``thothbot simulate`` on an in-memory database) passes ``threaded=False`` and
        runs units in place, saving the two thread switches per unit (about a third of its time).
        """
        path = str(path)
        key = secret_key.get_secret_value() if secret_key is not None else None
        try:
            created = path != MEMORY and _make_room(Path(path))
            store = await cls._open(path, threaded=threaded, key=key)
        except sealing.SealingError as error:
            raise StoreUnavailable(str(error)) from None
        except StoreUnavailable as error:
            raise type(error)(f"cannot open the database at {path}: {error}") from error
        except (OSError, sqlite3.Error) as error:
            reason = _diagnose(Path(path)) or _reason(error)
            raise StoreUnavailable(f"cannot open the database at {path}: {reason}") from error
        if path != MEMORY:
            where = _absolute(path)
            if created:
                announce.info("created a new, empty database at %s", where)
            else:
                announce.info("using the database at %s", where)
        return store

    @classmethod
    async def _open(cls, path: str, *, threaded: bool, key: str | None) -> Store:
        if not threaded:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                sealer = _prepare(conn, path, key)
            except BaseException:
                conn.close()
                raise
            return cls(conn, path, None, sealer)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            sealer = await _on_thread(db)(_prepare, db._conn, path, key)
        except BaseException:
            await db.close()
            raise
        return cls(db._conn, path, db, sealer)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
        else:
            self._conn.close()

    async def run(self, unit: Callable[[Tx], T]) -> T:
        """Run ``unit`` in one transaction on the database thread; roll back if it raises."""
        try:
            if self._db is None:
                return _transaction(self._conn, unit, self.sealer)
            return cast(T, await _on_thread(self._db)(_transaction, self._conn, unit, self.sealer))
        except sqlite3.Error as error:
            if isinstance(error, DatabaseFault):
                raise
            fault = explain(error, Path(self.path))
            if fault is None:
                raise
            raise DatabaseFault(f"the database at {self.path}: {fault}") from error


def _absolute(path: str) -> Path:
    return Path(path).resolve()


def _make_room(path: Path) -> bool:
    """Create the database's folder (0700) and file (0600), saying whether the file is new;
    refuse a folder where the file goes, since aiosqlite's thread outlives a connect that fails
    that way."""
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise StoreUnavailable(f"cannot create its folder {folder}: a file of that name is there")
    if not folder.exists():
        try:
            folder.mkdir(parents=True, mode=FOLDER_MODE)
        except FileExistsError:
            pass  # made meanwhile by another process
        except OSError as error:
            raise StoreUnavailable(
                f"cannot create its folder {folder}: {_reason(error)}"
            ) from error
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder, not a file")
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    except FileExistsError:
        _tighten(path)
        return False
    except OSError as error:
        raise StoreUnavailable(
            f"cannot create it in {folder}: {_reason(error)} (thothbot must be able to write"
            " to the database's folder)"
        ) from error
    return True


def _tighten(path: Path) -> None:
    """Take group and others' access away from a database made by an older thothbot."""
    for file in (path, *(path.with_name(path.name + side) for side in SIDE_FILES)):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(mode & 0o700)
                log.warning("%s was readable by others: now only by its owner", file)
        except OSError:
            pass  # missing, not ours, or on a read-only disk: opening it says what matters


def explain(error: sqlite3.Error, path: Path) -> str | None:
    """What a database error at ``path`` means for the operator, or None when it is not the
    file's fault (a bug, a constraint)."""
    fault = _fault(error)
    if fault is None:
        return None
    if error.sqlite_errorcode & 0xFF in (_READONLY, _CANTOPEN, _IOERR):
        return _diagnose(path) or f"it {fault}"
    return f"it {fault}"


def _diagnose(path: Path) -> str | None:
    """Why SQLite cannot write the database, when the file system can tell: SQLite's own
    errors say "unable to open" or "disk I/O error" for a read-only mount."""
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return (
                "it is on a read-only disk (a read-only mount?): thothbot must be able to write"
                " to the database and its folder"
            )
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            return (
                "permission denied: the user thothbot runs as must be able to write to the"
                " database and its folder"
            )
    except OSError:
        return None
    return None


def _reason(error: OSError | sqlite3.Error) -> str:
    """Why a file operation failed, in words."""
    if isinstance(error, sqlite3.Error):
        fault = _fault(error)
        return f"it {fault}" if fault else str(error)
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.EROFS:
        return "the disk is mounted read-only"
    if error.errno == errno.ENOSPC:
        return "the disk is full"
    return str(error.strerror or error).lower() if error.strerror else str(error)


# SQLite's primary result codes (the low byte of the extended code) worth saying in words.
_FULL, _READONLY, _PERM, _CORRUPT, _NOTADB, _CANTOPEN, _IOERR = 13, 8, 3, 11, 26, 14, 10


def _fault(error: sqlite3.Error) -> str | None:
    """What a database error means for the operator, or None when it is not the file's fault."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    if primary == _FULL:
        return (
            "is on a full disk: nothing new can be saved until space is freed (what was saved"
            " before is kept)"
        )
    if primary in (_READONLY, _PERM):
        return (
            "is read-only (a read-only disk or mount, or file permissions): thothbot must be"
            " able to write to the database and its folder"
        )
    if primary in (_CORRUPT, _NOTADB):
        return (
            "is not a thothbot database, or it is damaged: restore it from a backup"
            " (thothbot db restore FILE)"
        )
    if primary == _CANTOPEN:
        return "cannot be opened: check that its folder exists and that thothbot may write there"
    if primary == _IOERR:
        return "could not be read or written: the disk failed, is full or is read-only"
    return None


def _on_thread(db: aiosqlite.Connection) -> Callable[..., Awaitable[Any]]:
    """aiosqlite's (private, stable since 0.17) call-on-its-thread: handing it a whole unit
    makes one hop (about 90 us on this 2-core machine) instead of one per statement."""
    executor: Callable[..., Awaitable[Any]] = db._execute
    return executor


def _transaction(conn: sqlite3.Connection, unit: Callable[[Tx], T], sealer: sealing.Sealer) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = unit(Tx(conn, sealer))
        conn.execute("COMMIT")
    except BaseException:
        # SQLite has already rolled back after some errors (a full disk, an I/O error): a
        # second rollback would hide the first error behind "no transaction is active".
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result


def _prepare(conn: sqlite3.Connection, path: str, key: str | None) -> sealing.Sealer:
    on_disk = path != MEMORY
    refuse_newer(conn)  # before anything below writes to the file
    if on_disk:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    migrate(conn)
    if not on_disk:  # nothing outlives an in-memory database, so neither does its key
        sealer = sealing.ephemeral()
    else:
        sealed = conn.execute("SELECT 1 FROM sealing WHERE name = 'check'").fetchone()
        sealer = sealing.sealer_for(path, key, may_create=sealed is None)
    if _transaction(conn, Tx.seal_at_rest, sealer) and on_disk:
        # Secrets were in clear until now: rewrite the file, so no old page, free page or
        # WAL frame still holds them.
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log.info("sealed the secrets that were stored in clear")
    return sealer


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in ``thothbot/migrations``, in order."""
    found = []
    for entry in resources.files("thothbot.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(version), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    """The migrations this database has had, read without writing (none for a new file)."""
    table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if table is None:
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def refuse_newer(conn: sqlite3.Connection) -> None:
    """Refuse a database migrated by a newer thothbot, changing nothing: this code does not
    know its tables, and writing to them could lose what the newer version keeps there."""
    known = max(version for version, _, _ in migrations())
    applied = applied_versions(conn)
    if applied and max(applied) > known:
        raise SchemaTooNew(
            f"it was written by a newer thothbot (schema {max(applied)}; this one knows up to"
            f" {known}). Run the newer thothbot, or restore a backup taken before the upgrade"
            " (thothbot db restore FILE). Nothing was changed."
        )


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations this database has not seen yet, each in its own transaction."""
    refuse_newer(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    done = []
    for version, name, sql in migrations():
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (version, name, ts(datetime.now(UTC))),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        log.info("applied migration %04d_%s", version, name)
        done.append(version)
    return done


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit on its own)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    leftover = [ln for ln in current.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise sqlite3.OperationalError(f"a migration ends in an incomplete statement: {leftover}")
    return statements
