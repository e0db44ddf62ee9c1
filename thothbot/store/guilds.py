"""Servers' configuration: rules, settings (secrets sealed), the revision that keeps caches
fresh, the Discord setup, the staff roster and saved answers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from thothbot import sealing
from thothbot.core.answers import SavedAnswer
from thothbot.core.channels import DiscordSetup
from thothbot.core.masking import map_secrets
from thothbot.core.rules import Rule, rules_json
from thothbot.store.base import SqliteBase, ts
from thothbot.store.interfaces import GuildRow


class SqliteGuilds(SqliteBase):
    """A server's configuration, inside one unit of work."""

    # Rules and settings

    def guild(self, guild_id: str) -> GuildRow:
        row = self._one(
            "SELECT rules, settings, revision FROM guilds WHERE guild_id = ?", (guild_id,)
        )
        if row is None:
            self._conn.execute("INSERT INTO guilds (guild_id) VALUES (?)", (guild_id,))
            return GuildRow(guild_id, "[]", "{}", 0)
        return GuildRow(guild_id, row[0], self._open_settings(guild_id, row[1]), row[2])

    def _open_settings(self, guild_id: str, text: str) -> str:
        """The stored settings with their secrets unsealed (they are stored sealed)."""
        if sealing.SEALED not in text:
            return text
        context = f"settings:{guild_id}"
        document = map_secrets(json.loads(text), lambda _, v: self._sealer.open(v, context))
        return json.dumps(document, ensure_ascii=False)

    def revision(self, guild_id: str) -> int:
        """The server's settings revision (cheap: read before every unit to keep caches fresh;
        in a batch, once until this connection changes it)."""
        if self._batch is not None and guild_id in self._batch.revisions:
            return self._batch.revisions[guild_id]
        row = self._one("SELECT revision FROM guilds WHERE guild_id = ?", (guild_id,))
        revision: int = row[0] if row is not None else self.guild(guild_id).revision
        if self._batch is not None:
            self._batch.revisions[guild_id] = revision
        return revision

    def _revised(self, guild_id: str) -> None:
        if self._batch is not None:
            self._batch.revisions.pop(guild_id, None)

    def save_rules(self, guild_id: str, rules: Sequence[Rule]) -> None:
        self._known_guild(guild_id)
        self._conn.execute(
            "UPDATE guilds SET rules = ?, revision = revision + 1 WHERE guild_id = ?",
            (json.dumps(rules_json(rules), ensure_ascii=False), guild_id),
        )
        self._revised(guild_id)

    def save_settings(self, guild_id: str, document: Mapping[str, Any]) -> None:
        self._known_guild(guild_id)
        context = f"settings:{guild_id}"
        sealed = map_secrets(document, lambda _, v: self._sealer.seal(v, context))
        self._conn.execute(
            "UPDATE guilds SET settings = ?, revision = revision + 1 WHERE guild_id = ?",
            (json.dumps(sealed, ensure_ascii=False), guild_id),
        )
        self._revised(guild_id)

    def _bump(self, guild_id: str) -> None:
        self._conn.execute(
            "UPDATE guilds SET revision = revision + 1 WHERE guild_id = ?", (guild_id,)
        )
        self._revised(guild_id)

    # Discord setup and staff roster

    def discord_setup(self, guild_id: str) -> DiscordSetup | None:
        row = self._one(
            "SELECT staff_role_id, ops_channel_id, log_channel_id, categories"
            " FROM discord_setup WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return None
        return DiscordSetup(guild_id, row[0], row[1], row[2], tuple(json.loads(row[3])))

    def save_discord_setup(self, setup: DiscordSetup) -> None:
        self.guild(setup.guild_id)
        self._conn.execute(
            "INSERT OR REPLACE INTO discord_setup"
            " (guild_id, staff_role_id, ops_channel_id, log_channel_id, categories)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                setup.guild_id,
                setup.staff_role_id,
                setup.ops_channel_id,
                setup.log_channel_id,
                json.dumps(list(setup.categories)),
            ),
        )
        self._bump(setup.guild_id)

    def roster(self, guild_id: str) -> dict[str, list[str]]:
        roster: dict[str, list[str]] = {}
        for role_id, user_id in self._all(
            "SELECT role_id, user_id FROM role_members WHERE guild_id = ?"
            " ORDER BY role_id, user_id",
            (guild_id,),
        ):
            roster.setdefault(role_id, []).append(user_id)
        return roster

    def save_roster(self, guild_id: str, roster: Mapping[str, Iterable[str]]) -> bool:
        new = {role: sorted(set(members)) for role, members in roster.items()}
        if self.roster(guild_id) == {role: members for role, members in new.items() if members}:
            return False
        self._conn.execute("DELETE FROM role_members WHERE guild_id = ?", (guild_id,))
        self._many(
            "INSERT INTO role_members (guild_id, role_id, user_id) VALUES (?, ?, ?)",
            [(guild_id, role, user) for role, members in new.items() for user in members],
        )
        self.guild(guild_id)
        self._bump(guild_id)
        return True

    # Saved answers

    def answers(self, guild_id: str) -> list[SavedAnswer]:
        return [
            SavedAnswer(row[0], tuple(json.loads(row[1])), row[2])
            for row in self._all(
                "SELECT id, triggers, text FROM saved_answers WHERE guild_id = ? ORDER BY id",
                (guild_id,),
            )
        ]

    def insert_answer(
        self, guild_id: str, triggers: Iterable[str], text: str, by: str, at: datetime
    ) -> int:
        cursor = self._conn.execute(
            "INSERT INTO saved_answers (guild_id, triggers, text, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (guild_id, json.dumps(list(triggers), ensure_ascii=False), text, by, ts(at)),
        )
        self._bump(guild_id)  # answers are cached with the server's config
        return cast(int, cursor.lastrowid)

    def delete_answer(self, guild_id: str, answer_id: int) -> bool:
        cursor = self._conn.execute(
            "DELETE FROM saved_answers WHERE guild_id = ? AND id = ?", (guild_id, answer_id)
        )
        self._bump(guild_id)
        return cursor.rowcount > 0
