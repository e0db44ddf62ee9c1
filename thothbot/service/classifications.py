"""The classifier's cache: a model's answer kept under the key of what decided it, for a while.

``thothbot/llm.py`` asks here before it asks the model and saves here what the model said, so
the same ticket text, tier and labels on the same model are answered once. Answers older than
``DEFAULT_TTL`` are ignored on read and deleted by retention (``service/retention.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from thothbot.store import Database

DEFAULT_TTL = timedelta(days=30)


class ClassificationCache:
    """(label, reason) by cache key (``classify.cache_key``), each read or write one unit."""

    def __init__(self, store: Database) -> None:
        self._store = store

    async def get(self, key: str, now: datetime, ttl: timedelta) -> tuple[str, str] | None:
        """The (label, reason) saved under ``key`` less than ``ttl`` before ``now``, if any."""
        return await self._store.run(lambda tx: tx.cached_classification(key, now, ttl))

    async def put(self, key: str, label: str, reason: str, at: datetime) -> None:
        await self._store.run(lambda tx: tx.cache_classification(key, label, reason, at))
