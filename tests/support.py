"""Helpers that several test modules share: a desk on a real file, the CLI in process."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thothbot.cli import main
from thothbot.core.models import Effect
from thothbot.service import Desk, RecordingSink
from thothbot.store import Store


class Harness:
    """A desk on a database file that a test can close and reopen (a bot restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sink = RecordingSink()
        self.desk: Desk

    async def start(self) -> Desk:
        self.desk = Desk(await Store.open(self.path), self.sink)
        return self.desk

    async def start_with_rules(self, guild_id: str, rules: list[dict[str, Any]]) -> Desk:
        """Start, then save ``rules``, which must be valid as they stand."""
        desk = await self.start()
        saved = await desk.save_rules(guild_id, json.dumps(rules))
        assert saved.saved
        assert not saved.validation.problems
        return desk

    async def restart(self) -> Desk:
        await self.desk.store.close()
        return await self.start()

    def take(self) -> list[Effect]:
        """The effects published since the last call."""
        effects = list(self.sink.effects)
        self.sink.effects.clear()
        return effects


@dataclass
class Run:
    """What one ``thothbot`` command printed and returned."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def thothbot(*argv: str) -> Run:
    """Run the CLI in this process, capturing its output."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())
