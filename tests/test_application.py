"""The composition root: what ``build`` makes from a ``Config``, and the order it closes in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from thothbot.application import bot_desk, build
from thothbot.bot.client import ThothBot
from thothbot.config import Config
from thothbot.store import Store


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
