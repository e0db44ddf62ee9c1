"""What the health server asks the database: does it answer, and what it counts for /metrics."""

from __future__ import annotations

from thothbot.core.ingress import StoredCounts
from thothbot.store import Database, Tx


class HealthProbe:
    """Whether the database answers, and its counts; each one unit of work."""

    def __init__(self, store: Database) -> None:
        self._store = store

    async def ping(self) -> None:
        """Return once the database has run an empty unit (raise if it cannot)."""
        await self._store.run(_nothing)

    async def counts(self) -> tuple[int, StoredCounts]:
        """Events waiting for the ingress's worker, and the deliveries by status and SLA
        breaches stored, for ``/metrics``."""
        return await self._store.run(stored_counts)


def stored_counts(tx: Tx) -> tuple[int, StoredCounts]:
    """The unit that reads what /metrics shows of the database (the ingress runs it too)."""
    return tx.count_pending_ingress_events(), StoredCounts(tx.delivery_counts(), tx.breach_count())


def _nothing(tx: Tx) -> None:
    """A unit that reads and writes nothing: the database answered if it ran."""
