"""The composition root: what ``build`` makes from a ``Config``, and the order it closes in."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from thothbot.application import bot_desk, build
from thothbot.bot.client import ThothBot
from thothbot.config import Config
from thothbot.store import Store

# What ``build`` imports for the servers, the model client and the bot, and nothing else needs.
LIBRARIES = frozenset({"aiohttp", "discord", "openai"})


def libraries_loaded_by(statement: str) -> set[str]:
    """Which of LIBRARIES a fresh interpreter holds in ``sys.modules`` after ``statement``."""
    probe = f"import sys; {statement}; print(*{{m.partition('.')[0] for m in sys.modules}})"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split()) & LIBRARIES


@pytest.mark.parametrize("module", ["thothbot.simulate", "thothbot.cli", "thothbot.keys"])
def test_simulate_and_keys_start_without_servers_model_client_or_discord(module: str) -> None:
    # ``thothbot simulate`` and ``thothbot keys`` use the composition root's services alone:
    # loading aiohttp, discord.py and openai would cost them about 35 MB before any work.
    assert libraries_loaded_by(f"import {module}") == set()


def test_the_probe_sees_the_libraries_the_servers_load() -> None:
    # Positive control: what ``build`` imports for the servers and the model client does load them.
    assert libraries_loaded_by("import thothbot.health, thothbot.llm") == LIBRARIES


def config_for(tmp_path: Path) -> Config:
    return Config.from_env({"THOTH_DB_PATH": str(tmp_path / "thoth.db"), "THOTH_INGRESS_PORT": "0"})


async def test_background_loops_stop_before_the_store_closes(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    read = asyncio.Event()

    async def reading() -> None:
        while True:
            try:
                await app.store.run(lambda tx: tx.api_keys())
                read.set()
            except Exception as error:  # a closed database, had the store closed first
                failures.append(error)
            await asyncio.sleep(0)

    async with build(config_for(tmp_path)) as app:
        loop = app.spawn(reading(), name="reading")
        await read.wait()  # positive control: the loop does reach the database
    assert loop.cancelled()
    assert failures == []
    with pytest.raises(ValueError, match="closed"):  # the store refuses once closed
        await app.store.run(lambda tx: tx.api_keys())


async def test_the_desk_and_its_loops_share_one_change_notifier(tmp_path: Path) -> None:
    async with build(config_for(tmp_path)) as app:
        assert app.desk.changes is app.changes
        assert app.desk.outbox  # escalations are saved for the delivery worker


async def test_the_bot_renders_what_its_desk_publishes(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "thoth.db")
    try:
        services = bot_desk(store)
        bot = ThothBot(services)
        # Effects wait in the queue the bot renders; escalations go through the outbox.
        assert services.desk.sink is services.effects
        assert bot.desk is services.desk
        assert services.desk.outbox
    finally:
        await store.close()
