"""The SQLite unit of work: every aggregate's methods on one connection, and sealing at rest,
which spans them (settings, API keys, the outbox)."""

from __future__ import annotations

import json

from thothbot import sealing
from thothbot.core.masking import map_secrets, reference, secret_fields
from thothbot.store.channels import SqliteChannels
from thothbot.store.classifications import SqliteClassifications
from thothbot.store.guilds import SqliteGuilds
from thothbot.store.ingress import SqliteIngress
from thothbot.store.outbox import SqliteOutbox
from thothbot.store.tickets import SqliteTickets


class SqliteTx(
    SqliteGuilds, SqliteChannels, SqliteTickets, SqliteOutbox, SqliteIngress, SqliteClassifications
):
    """A ``Tx`` on SQLite: synchronous access to the database inside one unit of work (it runs
    on the database thread)."""

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
