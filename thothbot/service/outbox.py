"""The outbox as the delivery worker sees it: what is due or waiting, and each try's outcome.

The desk puts escalations in the outbox in the transaction that made them; this service is
the worker's side (``thothbot/delivery.py``). Each method is one unit of work, so an outcome
and what it implies (a mark settled, a notice for the admins, an #ops post instead of a gone
webhook) are committed together or not at all. Each outcome's unit also says when the next
delivery is due, so the worker knows when to wake without reading again.

``Handoff`` is the short way for the bot's #ops posts: the desk's unit saves such a delivery
with its try already marked and holds it out of the due reads, and hands the row (with the
ticket and configuration it just read) to the worker of the same process, which posts it and
records the outcome: two units for an escalation, the desk's and the outcome's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from thothbot.changes import Changes, Topic
from thothbot.core.delivery import DeliveryRow
from thothbot.core.destinations import DeliveryStatus
from thothbot.store import Database, Tx

if TYPE_CHECKING:
    from thothbot.service.desk import Escalation


@dataclass(frozen=True, slots=True)
class OpsMessage:
    """An #ops post to remember with its delivery, so a claim can update it later."""

    ticket_id: int
    channel_id: str
    message_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rerouted:
    """A delivery for the bot's #ops channel put in the outbox instead of one that cannot go."""

    guild_id: str
    ticket_id: int
    destination: str  # the outbox row's destination (JSON)
    reason: str
    at: datetime

    def row(self) -> tuple[str, int, str, str, datetime]:
        return (self.guild_id, self.ticket_id, self.destination, self.reason, self.at)


@dataclass(frozen=True, slots=True)
class Handed:
    """A delivery to #ops the desk saved (its try marked, held from the due reads) and hands to
    the worker with what its post needs, read in the same unit."""

    row: DeliveryRow
    view: Escalation


class Handoff:
    """The desk's #ops deliveries on their way to the worker of this process, in memory.

    Closed until the worker opens it, once it has released what a previous run held (so no
    row is both released and handed); closed again when the worker stops, so nothing is held
    that no worker will take. What was handed and not taken when the process ends stays held
    in the database, and the next run's worker releases it and looks before posting again.
    """

    def __init__(self, changes: Changes) -> None:
        self._changes = changes
        self._rows: list[Handed] = []
        self._open = False

    @property
    def open(self) -> bool:
        """Whether the desk holds #ops deliveries for the worker (read inside its unit)."""
        return self._open

    def opened(self) -> None:
        self._open = True

    def closed(self) -> None:
        self._open = False

    def put(self, rows: Sequence[Handed]) -> None:
        """After the desk's commit: the rows it held, for the worker (which wakes)."""
        self._rows.extend(rows)
        self._changes.changed(Topic.HANDED)

    def take(self) -> list[Handed]:
        """Every row handed since the last take, oldest first."""
        rows, self._rows = self._rows, []
        return rows


class Outbox:
    """The delivery worker's reads and records on the outbox."""

    def __init__(self, store: Database) -> None:
        self._store = store

    # What to send

    async def due(self, now: datetime, limit: int, *, release: bool = False) -> list[DeliveryRow]:
        """Pending deliveries due by ``now``, oldest first; with ``release``, what a worker that
        stopped held is due first (``Handoff``)."""

        def unit(tx: Tx) -> list[DeliveryRow]:
            if release:
                tx.release_held(now)
            return tx.due_deliveries(now, limit)

        return await self._store.run(unit)

    async def waiting(self, destination: str) -> list[DeliveryRow]:
        """Every pending delivery to one destination, in order."""
        return await self._store.run(lambda tx: tx.waiting_deliveries(destination))

    async def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due."""
        return await self._store.run(lambda tx: tx.next_delivery_at())

    async def sent_since(self, destination: str, since: datetime) -> list[datetime]:
        """When posts to this destination went out since ``since`` (for its rate limit)."""
        return await self._store.run(lambda tx: tx.sent_since(destination, since))

    async def counts(self) -> dict[str, int]:
        """Deliveries by status."""
        return await self._store.run(lambda tx: tx.delivery_counts())

    async def disabled(self, guild_id: str) -> dict[str, tuple[str, datetime, str]]:
        """target -> (label, disabled at, reason) of the server's destinations that said Gone."""
        return await self._store.run(lambda tx: tx.disabled_destinations(guild_id))

    # Before a try

    async def postpone(
        self, ids: Sequence[int], until: datetime, *, held: Sequence[int] = ()
    ) -> datetime | None:
        """Due again at ``until``, not counted as a try; ``held`` rows were handed and never
        tried, so their marks are cleared. When the next delivery is due."""

        def unit(tx: Tx) -> datetime | None:
            tx.postpone(ids, until)
            tx.release(held, until)
            return tx.next_delivery_at()

        return await self._store.run(unit)

    async def fix_event(self, delivery_id: int, event_id: str, body: str | None) -> None:
        """Give a delivery its webhook-id (and body) for every try."""
        await self._store.run(lambda tx: tx.fix_event(delivery_id, event_id, body))

    async def attempting(
        self,
        ids: Sequence[int],
        marker: str | None,
        at: datetime | None,
        *,
        fixed: DeliveryRow | None = None,
    ) -> None:
        """Commit that a post carrying ``marker`` is being tried for ``ids`` (None: settled);
        with ``fixed``, that row's webhook-id and body are saved in the same unit."""

        def unit(tx: Tx) -> None:
            if fixed is not None and fixed.event_id is not None:
                tx.fix_event(fixed.id, fixed.event_id, fixed.body)  # kept if it had one
            tx.attempting(ids, marker, at)

        await self._store.run(unit)

    # Outcomes

    async def sent(
        self,
        ids: Sequence[int],
        at: datetime,
        message_id: str,
        *,
        ops_message: OpsMessage | None = None,
    ) -> datetime | None:
        """One post went out for ``ids``: the first is sent, the rest summarized by it; the
        marks are settled and an #ops post is remembered, in one unit. When the next delivery
        is due."""
        first, *rest = ids

        def unit(tx: Tx) -> datetime | None:
            if ops_message is not None:
                m = ops_message
                tx.add_ops_message(m.ticket_id, m.channel_id, m.message_id, m.reason)
            tx.delivered([first], at, message_id)
            tx.delivered(rest, at, message_id, DeliveryStatus.SUMMARIZED)
            tx.attempting(ids, None, None)
            return tx.next_delivery_at()

        return await self._store.run(unit)

    async def failed(
        self,
        delivery_id: int,
        error: str,
        retry_at: datetime | None,
        *,
        settled: bool,
        instead: Rerouted | None = None,
    ) -> datetime | None:
        """A failed try: due again at ``retry_at`` (None: given up); ``settled`` clears its
        mark; ``instead`` is put in the outbox with it. When the next delivery is due."""

        def unit(tx: Tx) -> datetime | None:
            tx.delivery_failed(delivery_id, error, retry_at)
            if settled:
                tx.attempting([delivery_id], None, None)
            if instead is not None:
                tx.insert_deliveries([instead.row()])
            return tx.next_delivery_at()

        return await self._store.run(unit)

    async def gone(
        self,
        delivery_id: int,
        error: str,
        *,
        target: str,
        label: str,
        at: datetime,
        notice: Rerouted,
        instead: Rerouted | None,
    ) -> None:
        """A destination said it is gone: the delivery is given up, the destination disabled,
        the admins' ``notice`` (and the escalation ``instead``, when #ops takes it) put in the
        outbox, in one unit."""
        guild_id = notice.guild_id

        def unit(tx: Tx) -> None:
            tx.delivery_failed(delivery_id, error, None)
            tx.attempting([delivery_id], None, None)
            tx.disable_destination(guild_id, target, label, at, error)
            tx.insert_deliveries([notice.row()])
            if instead is not None:
                tx.insert_deliveries([instead.row()])

        await self._store.run(unit)
