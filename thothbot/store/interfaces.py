"""The store's interfaces: what the service layer types against and a database backend implements.

A unit of work is a plain function of a ``Tx``, run by ``Database.run`` in one transaction that
is atomic and isolated as if units ran one at a time. It reads and writes only through the
aggregates' methods below, which take and return datetimes, plain values and core values, never
a driver's types; it does no I/O of its own and awaits nothing, so a backend may run it again.

SQLite (``thothbot.store.sqlite``) runs units one after another on its own thread, each inside
``BEGIN IMMEDIATE``. A PostgreSQL backend for several processes (SQLAlchemy 2 Core over asyncpg)
would run each inside ``engine.begin()`` through ``AsyncConnection.run_sync``, at SERIALIZABLE,
running it again on a serialization failure; the service layer stays as it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

from thothbot.core.answers import SavedAnswer
from thothbot.core.channels import Closing, DiscordSetup, Opening
from thothbot.core.delivery import DeliveryRow
from thothbot.core.destinations import DeliveryStatus
from thothbot.core.ingress import ApiKeyRow, IdempotencyRecord, IngressEventRow
from thothbot.core.models import Firing, SlaTarget, Ticket
from thothbot.core.routing import QueuedTicket, RoutingState
from thothbot.core.rules import Rule
from thothbot.core.sla import SlaClock

T = TypeVar("T")


class StoreFault(Exception):
    """The database could not run a unit of work now: locked past the wait, full, read-only,
    damaged, an I/O error. Nothing of the unit was kept, and what was committed before is.

    Every backend raises it for its own database's trouble (SQLite's ``OperationalError``,
    later PostgreSQL's), so code that keeps work for later, such as the ingress worker, needs
    no backend's types. A bug (a constraint broken, bad SQL) is not a fault of the database
    and is raised as it is.
    """


@dataclass(frozen=True, slots=True)
class GuildRow:
    """A server's stored rules and settings (JSON documents, secrets unsealed) and revision."""

    guild_id: str
    rules: str
    settings: str
    revision: int


class GuildsTx(Protocol):
    """A server's configuration: rules, settings (secrets sealed in and unsealed out), the
    revision that keeps caches fresh, the Discord setup, the staff roster and saved answers."""

    def guild(self, guild_id: str) -> GuildRow:
        """The server's stored rules and settings; a server seen for the first time is created."""

    def revision(self, guild_id: str) -> int:
        """The server's settings revision (cheap: read before every unit to keep caches fresh)."""

    def save_rules(self, guild_id: str, rules: Sequence[Rule]) -> None: ...

    def save_settings(self, guild_id: str, document: Mapping[str, Any]) -> None:
        """Store the settings, their secrets (webhook URLs, destination secrets) sealed."""

    def discord_setup(self, guild_id: str) -> DiscordSetup | None: ...

    def save_discord_setup(self, setup: DiscordSetup) -> None:
        """Save a server's setup; bumps the revision, since the staff role changes who is staff."""

    def roster(self, guild_id: str) -> dict[str, list[str]]:
        """Members of each staff role, by role id."""

    def save_roster(self, guild_id: str, roster: Mapping[str, Iterable[str]]) -> bool:
        """Replace the stored role members; True (and a new revision) when anything changed."""

    def answers(self, guild_id: str) -> list[SavedAnswer]: ...

    def insert_answer(
        self, guild_id: str, triggers: Iterable[str], text: str, by: str, at: datetime
    ) -> int: ...

    def delete_answer(self, guild_id: str, answer_id: int) -> bool: ...


class TicketsTx(Protocol):
    """Tickets and what hangs off them: numbers, rule firings, routing, SLA clocks, saved
    answers sent, #ops messages, and the counts stats read."""

    def reserve_number(self, guild_id: str) -> int:
        """Take the server's next ticket number."""

    def insert_ticket(self, ticket: Ticket) -> Ticket:
        """Store a new ticket, giving it its id and, unless it has one, the next number."""

    def ticket(self, ticket_id: int) -> Ticket | None: ...

    def ticket_by_channel(self, channel_id: str) -> Ticket | None: ...

    def delete_ticket(self, ticket_id: int) -> None: ...

    def save_ticket(self, ticket: Ticket) -> None:
        """Write a ticket's changeable columns (the service saves only tickets that changed)."""

    def unlabelled_tickets(self, limit: int) -> list[Ticket]:
        """Open tickets whose urgency is not known yet, oldest first (the triage loop's work)."""

    def open_tickets_of(self, guild_id: str, customer_id: str) -> list[Ticket]: ...

    def tickets_since(self, guild_id: str, since: datetime) -> list[Ticket]: ...

    def insert_firings(self, guild_id: str, firings: Iterable[Firing]) -> None: ...

    def prune_firings(self, before: datetime, limit: int | None = None) -> int:
        """Forget rule firings made before ``before`` (at most ``limit``); how many were
        removed."""

    def recent_firings(self, guild_id: str, limit: int) -> list[Firing]:
        """The server's latest firings, newest first, with their tickets' numbers."""

    def routing_state(
        self, guild_id: str, capacity: int | None, ticket_ids: Iterable[int] = ()
    ) -> RoutingState:
        """Duty, pointers, load (only when a capacity is set) and which of ``ticket_ids`` queue."""

    def save_pointers(self, guild_id: str, state: RoutingState) -> None: ...

    def set_duty(self, guild_id: str, user_id: str, on_duty: bool) -> None: ...

    def has_queue(self, guild_id: str) -> bool: ...

    def queue(self, guild_id: str) -> Iterator[QueuedTicket]:
        """The server's queued tickets, oldest first, read lazily."""

    def enqueue(self, guild_id: str, entries: Iterable[QueuedTicket]) -> None: ...

    def dequeue(self, ticket_ids: Iterable[int]) -> None: ...

    def start_clocks(self, ticket_id: int, deadlines: Mapping[SlaTarget, datetime]) -> None: ...

    def pending_clocks(self, ticket_id: int) -> dict[SlaTarget, SlaClock]: ...

    def resolve_clock(self, clock: SlaClock, status: str, at: datetime) -> None: ...

    def due_clocks(self, until: datetime, *, inclusive: bool, limit: int = 100) -> list[SlaClock]:
        """Pending clocks whose deadline has come, earliest first."""

    def next_deadline(self) -> datetime | None: ...

    def clocks(self, ticket_id: int) -> list[tuple[SlaTarget, datetime, str]]: ...

    def breaches_since(self, guild_id: str, since: datetime) -> int: ...

    def breach_count(self) -> int: ...

    def answers_sent(self, ticket_id: int) -> list[int]: ...

    def mark_answer_sent(self, ticket_id: int, answer_id: int) -> None: ...

    def ops_messages(self, ticket_id: int) -> list[tuple[str, str, str]]:
        """(channel id, message id, reason) of every #ops post about this ticket."""

    def add_ops_message(
        self, ticket_id: int, channel_id: str, message_id: str, reason: str
    ) -> None: ...


class ChannelsTx(Protocol):
    """A Discord ticket's channel life: openings (a number taken before the channel exists)
    and closings (transcript, DM, rating request, channel deletion)."""

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

    def opening(self, opening_id: int) -> Opening | None: ...

    def openings(self, guild_id: str) -> list[Opening]:
        """The server's unfinished openings, oldest first."""

    def opening_saved(self, opening_id: int, ticket_id: int, channel_id: str | None) -> None:
        """The opening's ticket is saved, in ``channel_id`` (kept for a restart to find)."""

    def opening_done(self, opening_id: int) -> None: ...

    def abandon_opening(self, opening: Opening) -> bool:
        """Forget an opening that will not become a ticket; give its number back when no later
        one was taken (whether it was is the return value: a burned number is logged)."""

    def insert_closing(self, closing: Closing) -> None: ...

    def closing(self, ticket_id: int) -> Closing | None: ...

    def closings_due(self, now: datetime, limit: int = 20) -> list[Closing]: ...

    def next_closing_at(self) -> datetime | None: ...

    def closings_restart(self, now: datetime) -> None:
        """After a restart every unfinished closing is worth a look at once."""

    def begin_closing(self, ticket_id: int, retry_at: datetime) -> None:
        """Count an attempt before it acts; should it not end, the closing is due at
        ``retry_at`` and the next attempt looks in Discord before posting again."""

    def closing_step(self, ticket_id: int, step: str, outcome: str) -> None: ...

    def closing_later(self, ticket_id: int, next_at: datetime, error: str | None) -> None: ...

    def finish_closing(self, ticket_id: int, at: datetime) -> None:
        """Every step is done: the kept transcript (ticket text) is not needed any more."""

    def save_transcript(
        self, ticket_id: int, parts: Sequence[Sequence[tuple[str, bytes]]], outcome: str
    ) -> None:
        """Keep a closing ticket's transcript, read from its channel, and record the read."""

    def transcript(self, ticket_id: int) -> list[list[tuple[str, bytes]]]:
        """The kept transcript: each message's files, in order."""


class OutboxTx(Protocol):
    """The outbox: deliveries of escalations, each tried until sent or given up, and the
    destinations that said Gone."""

    def insert_deliveries(self, rows: Iterable[tuple[str, int, str, str, datetime]]) -> None:
        """(guild id, ticket id, destination JSON, reason, at) each, due at once."""

    def hold_delivery(self, row: tuple[str, int, str, str, datetime], event_id: str) -> DeliveryRow:
        """Insert one delivery handed to this process's worker: its ``event_id`` fixed, a try
        marked from its moment, and held out of the due reads until the worker records it."""

    def release_held(self, now: datetime) -> None:
        """Deliveries held by a worker that stopped are due at ``now``, their marks kept."""

    def release(self, ids: Iterable[int], at: datetime) -> None:
        """Held deliveries the worker did not try: due at ``at``, their marks cleared."""

    def due_deliveries(self, now: datetime, limit: int = 100) -> list[DeliveryRow]: ...

    def waiting_deliveries(self, destination: str) -> list[DeliveryRow]: ...

    def next_delivery_at(self) -> datetime | None: ...

    def sent_since(self, destination: str, since: datetime) -> list[datetime]:
        """When posts to this destination went out (summaries included), for its rate limit."""

    def delivered(
        self,
        ids: Iterable[int],
        at: datetime,
        message_id: str | None,
        status: DeliveryStatus = DeliveryStatus.SENT,
    ) -> None: ...

    def delivery_failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        """Note a failed try: due again at ``retry_at``, or given up when None."""

    def postpone(self, ids: Iterable[int], until: datetime) -> None:
        """Due again at ``until`` (never sooner than planned), not counted as a try: a rate
        limit, or no bot connected."""

    def prune_deliveries(self, before: datetime, limit: int | None = None) -> int:
        """Forget finished deliveries (sent, summarized or given up) of escalations made before
        ``before`` (at most ``limit``); how many were removed. Pending ones stay, whatever
        their age."""

    def delivery_counts(self) -> dict[str, int]: ...

    def fix_event(self, delivery_id: int, event_id: str, body: str | None) -> None:
        """Give a delivery its webhook-id (and an http destination its body) once, for good."""

    def attempting(self, ids: Iterable[int], marker: str | None, at: datetime | None) -> None:
        """Note that a post carrying ``marker`` is being tried for these rows (None: settled)."""

    def disable_destination(
        self, guild_id: str, target: str, label: str, at: datetime, reason: str
    ) -> None: ...

    def disabled_destinations(self, guild_id: str) -> dict[str, tuple[str, datetime, str]]:
        """target -> (label, disabled at, reason) of the server's destinations that said Gone."""

    def enable_destinations(self, guild_id: str) -> None: ...


class IngressTx(Protocol):
    """The ingress's records: API keys (the signing secret sealed at rest), idempotency records
    and the events accepted for the worker."""

    def insert_api_key(self, key: ApiKeyRow) -> None:
        """Store a new key: the hash of the API key, the webhook signing secret sealed."""

    def api_key(self, key_id: str) -> ApiKeyRow | None: ...

    def rotate_webhook_secret(
        self, key_id: str, secret: str, at: datetime, overlap: timedelta
    ) -> ApiKeyRow | None:
        """Make ``secret`` the key's signing secret; the one it replaces keeps verifying until
        ``at + overlap`` (an older one still overlapping stops now). None if the key is unknown;
        a revoked key is returned unchanged."""

    def api_keys(self, guild_id: str | None = None) -> list[ApiKeyRow]:
        """Every key (of one server, when given), oldest first, revoked ones included."""

    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKeyRow | None:
        """Revoke a key (a revoked key keeps its first revocation time); None if unknown."""

    def idempotency_record(
        self, key_id: str, kind: str, request_key: str, since: datetime
    ) -> IdempotencyRecord | None:
        """The answer recorded for ``request_key`` after ``since``, if any."""

    def save_idempotency_record(
        self, key_id: str, kind: str, request_key: str, record: IdempotencyRecord
    ) -> None:
        """Record the answer to ``request_key``; an expired record not purged yet gives way."""

    def accept_ingress_event(
        self,
        event: IngressEventRow,
        request_key: str | None,
        first: IdempotencyRecord,
        since: datetime,
    ) -> IdempotencyRecord | Literal["revoked"] | None:
        """Store ``event`` unless its key is revoked ("revoked") or its ``request_key`` was
        taken after ``since`` (that first request's record is returned); with a
        ``request_key``, ``first`` is saved as the record a repeat of this request gets."""

    def purge_idempotency_records(self, before: datetime) -> int:
        """Forget idempotency records made before ``before``; how many were removed."""

    def insert_ingress_event(self, event: IngressEventRow) -> None: ...

    def pending_ingress_events(self, limit: int = 100) -> list[IngressEventRow]:
        """Events accepted but not yet processed, oldest first."""

    def count_pending_ingress_events(self) -> int:
        """How many events wait to be processed: the depth of the ingress worker's queue."""

    def finish_ingress_event(
        self, event_id: str, status: str, ticket_id: int | None, error: str | None = None
    ) -> None: ...

    def purge_ingress_events(self, before: datetime) -> int:
        """Forget events received before ``before`` whose ticket is closed (or was never
        opened); how many were removed. An open ticket's #ops post still shows its event."""

    def api_ticket(
        self, guild_id: str, customer_id: str, ref: str, created_at: datetime
    ) -> int | None:
        """The ticket an event opened, found by what it was opened with (crash recovery)."""

    def source_event(self, ticket: Ticket) -> tuple[str, dict[str, Any]] | None:
        """The event (name, payload) an API ticket was opened from."""


class ClassificationsTx(Protocol):
    """The classifier's cache."""

    def cached_classification(
        self, key: str, now: datetime, ttl: timedelta
    ) -> tuple[str, str] | None:
        """The (label, reason) cached under ``key`` less than ``ttl`` before ``now``, if any."""

    def cache_classification(self, key: str, label: str, reason: str, at: datetime) -> None: ...

    def prune_classifications(self, now: datetime, ttl: timedelta, limit: int | None = None) -> int:
        """Forget classifications older than ``ttl`` (at most ``limit``); how many were removed."""


class Tx(GuildsTx, TicketsTx, ChannelsTx, OutboxTx, IngressTx, ClassificationsTx, Protocol):
    """Everything a unit of work may do, in one transaction."""


class Database(Protocol):
    """An open database: run units of work, close when done."""

    async def run(self, unit: Callable[[Tx], T]) -> T:
        """Run ``unit`` in one transaction; roll back if it raises (and raise that)."""

    def batch(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Let the units run inside the block share transactions, each rolled back alone if it
        raises (see ``Store.batch``)."""

    async def changed_elsewhere(self) -> bool:
        """Whether another connection (another process) committed since the last call; the
        first call says False. SQLite answers from ``PRAGMA data_version``; a PostgreSQL
        backend, from the ``LISTEN`` notifications it received meanwhile."""

    async def close(self) -> None:
        """Let the units under way finish, then close."""
