"""What the ingress needs of the store: its keys, accepting an event once, the events waiting
to become tickets, how each ended, and the counts ``/metrics`` shows.

Accepting and finishing go through the group commit: under load, requests and the worker's
marks queued while a transaction is in flight share the next one. An accepted event is
announced (``Topic.INGRESS``) once committed, so the worker wakes for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from thothbot.changes import Changes, Topic
from thothbot.core.ingress import ApiKeyRow, IdempotencyRecord, IngressEventRow, StoredCounts
from thothbot.service.health import stored_counts
from thothbot.store import Database, Tx
from thothbot.store.group_commit import GroupCommit


@dataclass(frozen=True, slots=True)
class Finish:
    """How a processed event ends: 'done' with its ticket, or 'failed' with the reason."""

    event_id: str
    status: Literal["done", "failed"]
    ticket_id: int | None = None
    error: str | None = None


class Intake:
    """The ingress's units of work: each public method one transaction (some shared)."""

    def __init__(self, store: Database, changes: Changes | None = None) -> None:
        self._store = store
        self._commits = GroupCommit(store)
        self.changes = changes or Changes()

    async def check(self) -> None:
        """Raise when the database does not answer (the health check)."""
        await self._store.run(lambda tx: None)

    async def api_key(self, key_id: str) -> ApiKeyRow | None:
        return await self._store.run(lambda tx: tx.api_key(key_id))

    async def accept(
        self,
        event: IngressEventRow,
        request_key: str | None,
        first: IdempotencyRecord,
        since: datetime,
    ) -> IdempotencyRecord | Literal["revoked"] | None:
        """Store ``event`` unless its key was revoked ("revoked") or its ``request_key``
        (Idempotency-Key, or webhook-id) was taken since ``since``: then the first request's
        record is returned. ``first`` is the record a repeat of this one will get."""

        def unit(tx: Tx) -> IdempotencyRecord | Literal["revoked"] | None:
            # Authoritative here, in the transaction that would store the event: the key may
            # have been revoked (from another process) since it was cached.
            return tx.accept_ingress_event(event, request_key, first, since)

        outcome = await self._commits.run(unit)
        if outcome is None:
            self.changes.changed(Topic.INGRESS)
        return outcome

    async def pending(self, limit: int) -> list[IngressEventRow]:
        """Events waiting to become tickets, oldest first."""
        return await self._store.run(lambda tx: tx.pending_ingress_events(limit))

    async def opened_by(self, events: Sequence[IngressEventRow]) -> list[int | None]:
        """The ticket each event already opened, if a stop came before it was marked: found by
        what it was opened with, so it is never opened twice."""

        def unit(tx: Tx) -> list[int | None]:
            return [
                tx.api_ticket(e.guild_id, e.customer_id, ref, e.received_at)
                if isinstance(ref := e.payload.get("ticket_id"), str)
                else None
                for e in events
            ]

        return await self._store.run(unit)

    async def finish(self, finishes: Sequence[Finish]) -> None:
        """Record how processed events ended, in one transaction (shared with requests')."""

        def unit(tx: Tx) -> None:
            for f in finishes:
                tx.finish_ingress_event(f.event_id, f.status, f.ticket_id, f.error)

        await self._commits.run(unit)

    async def counts(self) -> tuple[int, StoredCounts]:
        """Events pending, and the deliveries and breaches stored, for ``/metrics``."""
        return await self._commits.run(stored_counts)
