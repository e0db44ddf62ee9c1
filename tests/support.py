"""Helpers that several test modules share: a desk on a real file, the CLI in process."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from thothbot.application import Services, build_services, services_of
from thothbot.cli import main
from thothbot.config import Config
from thothbot.core.classify import TicketText
from thothbot.core.models import Effect, Ticket
from thothbot.outbound import Guard
from thothbot.service import Desk, RecordingSink
from thothbot.store import Store

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday


def at(minutes: float) -> datetime:
    """A moment ``minutes`` after T0."""
    return T0 + timedelta(minutes=minutes)


def ticket(number: int = 1, **changes: Any) -> Ticket:
    """Ticket ``number`` as the core sees it: customer U1's ticket about "Help" in guild "g",
    opened at T0, its id the same as its number; ``changes`` set any field, the id too."""
    fields: dict[str, Any] = {
        "id": number, "guild_id": "g", "number": number, "customer_id": "U1", "subject": "Help",
        "created_at": T0,
    }  # fmt: skip
    return Ticket(**(fields | changes))


def ticket_text(subject: str, body: str = "", **extra: Any) -> TicketText:
    """What the classifier reads of a ticket; ``extra``: the other fields an event may carry."""
    return TicketText.model_validate({"subject": subject, "body": body} | extra)


class Harness:
    """The services on a database file, wired by the composition root (``build_services``),
    that a test can close and reopen (a bot restart), effects recorded."""

    def __init__(self, path: Path, *, outbox: bool = False) -> None:
        self.path = path
        self.outbox = outbox
        self.sink = RecordingSink()
        self.services: Services
        self.desk: Desk

    async def start(self, *, outbound: Guard | None = None) -> Desk:
        """Open the database; with ``outbound``, destinations are checked when saved."""
        store = await Store.open(self.path)
        self.services = build_services(store, sink=self.sink, outbox=self.outbox, outbound=outbound)
        self.desk = self.services.desk
        return self.desk

    async def start_with_rules(self, guild_id: str, rules: list[dict[str, Any]]) -> Desk:
        """Start, then save ``rules``, which must be valid as they stand."""
        desk = await self.start()
        saved = await desk.save_rules(guild_id, json.dumps(rules))
        assert saved.saved
        assert not saved.validation.problems
        return desk

    async def restart(self, *, outbound: Guard | None = None) -> Desk:
        await self.close()
        return await self.start(outbound=outbound)

    async def close(self) -> None:
        await self.desk.store.close()

    def take(self) -> list[Effect]:
        """The effects published since the last call."""
        effects = list(self.sink.effects)
        self.sink.effects.clear()
        return effects


@contextlib.asynccontextmanager
async def services_on(path: Path, secret_key: SecretStr | None = None) -> AsyncIterator[Services]:
    """The services over the database file at ``path`` as a one-shot command opens them
    (``services_of``), its secrets sealed by ``secret_key`` (THOTH_SECRET_KEY), else by the key
    file beside it; closed after the block. For a test that sets up a database before a
    ``thothbot`` process, or a restarted ingress, opens it."""
    async with services_of(Config(db_path=str(path), secret_key=secret_key)) as services:
        yield services


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
