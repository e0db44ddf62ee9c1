"""Starting the bot for real: store, desk, classifier, the ingress when keys exist, then Discord."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TextIO

import discord

from thothbot.bot.client import ThothBot, point_at
from thothbot.config import Config
from thothbot.core.errors import InvalidInput
from thothbot.ingress import addresses, start_ingress
from thothbot.llm import UrgencyClassifier
from thothbot.maintenance import Maintenance
from thothbot.outbound import Guard
from thothbot.service import Desk
from thothbot.store import Store

log = logging.getLogger(__name__)


async def run(config: Config, out: TextIO) -> None:
    """Run the bot (and the ingress, when any API key exists) until stopped."""
    if config.discord_token is None:
        raise InvalidInput(
            "DISCORD_TOKEN is not set: put your bot's token from the Discord developer portal"
            " in .env (see .env.example), or try `make demo`, which needs none."
        )
    point_at(config.discord_api_url, config.discord_gateway_url)
    store = await Store.open(config.db_path, secret_key=config.secret_key)
    classifier = UrgencyClassifier.from_config(config, store)
    desk = Desk(store)
    desk.outbound = Guard.from_config(config)
    bot = ThothBot(
        desk, classifier=classifier, guild_ids=config.guild_ids, close_delay=config.close_delay
    )
    runner = None
    # Retention runs with the bot whether or not the ingress does.
    maintenance = asyncio.create_task(Maintenance(store).run(), name="maintenance")
    try:
        if await store.run(lambda tx: any(k.revoked_at is None for k in tx.api_keys())):
            runner = await start_ingress(desk, store, config, classifier=classifier)
            out.write(f"thothbot ingress listening on {', '.join(addresses(runner))}\n")
            out.flush()
        try:
            await bot.start(config.discord_token.get_secret_value())
        except discord.LoginFailure:
            raise InvalidInput(
                "Discord refused DISCORD_TOKEN: copy the token again from the Bot page of your"
                " application in the developer portal (Reset Token if unsure)."
            ) from None
        except discord.PrivilegedIntentsRequired:
            raise InvalidInput(
                "Discord refused the bot's intents: on the Bot page of the developer portal,"
                " turn on Server Members Intent and Message Content Intent."
            ) from None
    finally:
        maintenance.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await maintenance
        if not bot.is_closed():
            await bot.close()
        if runner is not None:
            await runner.cleanup()
        await classifier.close()
        await store.close()
