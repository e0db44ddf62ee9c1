"""Retention: what the desk keeps only for a while, and deleting it once past its period.

Each kind of row has its period, counted from when the row was made:

- idempotency records: 72 hours (a repeated request within that is answered as the first was);
- stored ingress events: 30 days, and only once their ticket is closed (an open ticket's #ops
  post still shows its event);
- classifier cache: 30 days (older answers are ignored on read anyway, ``DEFAULT_TTL``);
- rule firings (the `/rules log`): 90 days;
- finished deliveries (sent, summarized or given up): 30 days; pending ones are never deleted.

Deletes are idempotent, so two processes pruning at once is harmless. The loop that prunes
every few minutes is ``thothbot/maintenance.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from thothbot.service.classifications import DEFAULT_TTL as CLASSIFICATION_TTL
from thothbot.store import Database, Tx

IDEMPOTENCY_TTL = timedelta(hours=72)
EVENT_TTL = timedelta(days=30)
FIRING_TTL = timedelta(days=90)
DELIVERY_TTL = timedelta(days=30)
# Rows deleted per transaction: a first pass over a large old database must not hold the write
# lock (and every request waiting on it) for seconds.
PRUNE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each kind of row is kept."""

    idempotency_records: timedelta = IDEMPOTENCY_TTL
    ingress_events: timedelta = EVENT_TTL
    classifications: timedelta = CLASSIFICATION_TTL
    firings: timedelta = FIRING_TTL
    deliveries: timedelta = DELIVERY_TTL


@dataclass(frozen=True, slots=True)
class Pruned:
    """How many rows of each kind one pass deleted."""

    idempotency_records: int = 0
    ingress_events: int = 0
    classifications: int = 0
    firings: int = 0
    deliveries: int = 0

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def __str__(self) -> str:
        return ", ".join(
            f"{getattr(self, f.name)} {f.name.replace('_', ' ')}"
            for f in fields(self)
            if getattr(self, f.name)
        )


class Pruner:
    """Deletes every row past its retention, a batch per unit of work."""

    def __init__(
        self, store: Database, retention: Retention | None = None, *, batch: int = PRUNE_BATCH
    ) -> None:
        self._store = store
        self.retention = retention or Retention()
        self.batch = batch

    async def prune(self, now: datetime) -> Pruned:
        """Delete every expired row as of ``now``, a batch at a time."""
        counts: dict[str, int] = {}
        for kind, unit in _deleting(self.retention, now, self.batch).items():
            total = 0
            while True:
                removed = await self._store.run(unit)
                total += removed
                if removed < self.batch:
                    break
            counts[kind] = total
        return Pruned(**counts)


def _deleting(retention: Retention, now: datetime, batch: int) -> dict[str, Callable[[Tx], int]]:
    """Per kind, a unit deleting one batch of its expired rows (how many it deleted)."""
    return {
        "idempotency_records": lambda tx: tx.purge_idempotency_records(
            now - retention.idempotency_records
        ),
        "ingress_events": lambda tx: tx.purge_ingress_events(now - retention.ingress_events),
        "classifications": lambda tx: tx.prune_classifications(
            now, retention.classifications, limit=batch
        ),
        "firings": lambda tx: tx.prune_firings(now - retention.firings, limit=batch),
        "deliveries": lambda tx: tx.prune_deliveries(now - retention.deliveries, limit=batch),
    }
