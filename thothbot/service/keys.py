"""API keys for the HTTP ingress, as the operator manages them (``thothbot keys``).

The keys and secrets are made in ``thothbot/keys.py``; this service saves, lists, revokes and
rotates them, each one unit of work.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from thothbot.core.ingress import ApiKeyRow
from thothbot.store import Database


class Keys:
    """The ingress's API keys and their webhook signing secrets."""

    def __init__(self, store: Database) -> None:
        self._store = store

    async def create(self, row: ApiKeyRow) -> None:
        """Save a new key (its hash; the signing secret sealed)."""
        await self._store.run(lambda tx: tx.insert_api_key(row))

    async def listed(self, guild_id: str | None = None) -> list[ApiKeyRow]:
        """Every key (of one server, when given), oldest first, revoked ones included."""
        return await self._store.run(lambda tx: tx.api_keys(guild_id))

    async def revoke(self, key_id: str, at: datetime) -> ApiKeyRow | None:
        """Revoke a key (a revoked key keeps its first revocation time); None if unknown."""
        return await self._store.run(lambda tx: tx.revoke_api_key(key_id, at))

    async def rotate(
        self, key_id: str, secret: str, at: datetime, overlap: timedelta
    ) -> ApiKeyRow | None:
        """Make ``secret`` the key's signing secret, the previous one verifying for ``overlap``;
        None if the key is unknown, a revoked key returned unchanged."""
        return await self._store.run(
            lambda tx: tx.rotate_webhook_secret(key_id, secret, at, overlap)
        )
