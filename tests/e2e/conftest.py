from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.desk import Live, live_desk
from thothbot.sandbox import Sandbox
from thothbot.sandbox.testing import pointed_at


@pytest.fixture
async def discord() -> AsyncIterator[Sandbox]:
    """The local Discord, with discord.py pointed at it."""
    async with pointed_at(Sandbox()) as sandbox:
        yield sandbox


@pytest.fixture
async def live(discord: Sandbox, tmp_path: Path) -> AsyncIterator[Live]:
    """The bot on a server set up with the example rules and settings, both staff on duty."""
    async for desk in live_desk(discord, tmp_path):
        yield desk


@pytest.fixture
async def bare(discord: Sandbox, tmp_path: Path) -> AsyncIterator[Live]:
    """The bot on a server nobody has set up yet."""
    async for desk in live_desk(discord, tmp_path, configured=False):
        yield desk


@pytest.fixture
async def no_dms(discord: Sandbox, tmp_path: Path) -> AsyncIterator[Live]:
    """The configured bot, with a customer who takes no direct messages."""
    async for desk in live_desk(discord, tmp_path, customer_dms_open=False):
        yield desk
