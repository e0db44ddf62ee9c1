from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import T0, Harness, at
from thothbot.application import Services
from thothbot.service import Desk

__all__ = ["T0", "at"]  # still importable from here, where they used to live


@pytest.fixture
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """A desk on a database file, set up as the test's module says: its ``RULES`` (which must be
    valid as they stand) and ``SETTINGS`` saved for its guild ``G`` when it has them, and
    escalations going through the outbox when its ``OUTBOX`` is true."""
    module = request.module
    h = Harness(tmp_path / "data" / "thoth.db", outbox=getattr(module, "OUTBOX", False))
    rules = getattr(module, "RULES", None)
    desk = await (h.start() if rules is None else h.start_with_rules(module.G, rules))
    if (settings := getattr(module, "SETTINGS", None)) is not None:
        await desk.save_settings(module.G, json.dumps(settings), T0)
    yield h
    await h.close()


@pytest.fixture
def desk(harness: Harness) -> Desk:
    return harness.desk


@pytest.fixture
def services(harness: Harness) -> Services:
    """Every service over the harness's database, the desk among them."""
    return harness.services
