"""What the health server asks the database: does it answer, and what it counts for /metrics."""

from __future__ import annotations

from dataclasses import dataclass

from thothbot.store import Database, Tx


@dataclass(frozen=True, slots=True)
class Counts:
    """What the database counts, read in one unit: events waiting for the ingress's worker,
    deliveries by status and SLA breaches."""

    pending_events: int
    deliveries: dict[str, int]
    breaches: int


class HealthProbe:
    """Whether the database answers, and its counts; each one unit of work."""

    def __init__(self, store: Database) -> None:
        self._store = store

    async def ping(self) -> None:
        """Return once the database has run an empty unit (raise if it cannot)."""
        await self._store.run(_nothing)

    async def counts(self) -> Counts:
        return await self._store.run(
            lambda tx: Counts(
                tx.count_pending_ingress_events(), tx.delivery_counts(), tx.breach_count()
            )
        )


def _nothing(tx: Tx) -> None:
    """A unit that reads and writes nothing: the database answered if it ran."""
