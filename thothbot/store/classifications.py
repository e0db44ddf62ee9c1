"""The classifier's cache: a model's (label, reason) for a text, kept for a while."""

from __future__ import annotations

from datetime import datetime, timedelta

from thothbot.store.base import SqliteBase, ts


class SqliteClassifications(SqliteBase):
    """The classifier cache, inside one unit of work."""

    def cached_classification(
        self, key: str, now: datetime, ttl: timedelta
    ) -> tuple[str, str] | None:
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
        cursor = self._conn.execute(
            "DELETE FROM classifier_cache WHERE key IN (SELECT key FROM classifier_cache"
            " WHERE created_at <= ? LIMIT ?)",
            (ts(now - ttl), -1 if limit is None else limit),
        )
        return cursor.rowcount
