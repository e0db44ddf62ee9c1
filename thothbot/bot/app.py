"""Starting the bot for real: the application (``thothbot.application.build``), the health
server (with the ingress's routes when an API key exists), then Discord, until SIGTERM or
Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TextIO

import aiohttp
import discord

from thothbot import application, health
from thothbot.bot.client import ThothBot, point_at
from thothbot.config import Config, StartupFailure
from thothbot.core.errors import InvalidInput
from thothbot.ingress import Ingress, IngressSettings, addresses

log = logging.getLogger(__name__)


async def run(config: Config, out: TextIO) -> None:
    """Run the bot (and the ingress, when any API key exists) until stopped by a signal."""
    if config.discord_token is None:
        raise InvalidInput(
            "DISCORD_TOKEN is not set: put your bot's token from the Discord developer portal"
            " in .env (see .env.example), or try `make demo`, which needs none."
        )
    token = config.discord_token.get_secret_value()
    # No voice here: discord.py's two "voice will NOT be supported" warnings on every start
    # would only teach operators to skip warnings.
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False
    point_at(config.discord_api_url, config.discord_gateway_url)
    async with application.build(config, bot=True) as app:
        assert app.bot is not None  # built with bot=True
        assert app.rest is not None
        await _serve(app, app.bot, app.rest, token)
    log.info("stopped")


async def _serve(
    app: application.Application, bot: ThothBot, rest: health.RestCounter, token: str
) -> None:
    config = app.config
    gateway = health.GatewayWatch(bot)
    tasks: list[asyncio.Task[Any]] = []
    # Retention runs with the bot whether or not the ingress does.
    app.spawn(app.maintenance.run(), name="maintenance")
    try:
        ingress = None
        if await app.serves_ingress():
            settings = IngressSettings.from_config(config)
            ingress = Ingress(
                app.desk, app.services.intake, settings, classified=app.triage.classified
            )
        monitor = health.Health(app.services.probe, gateway=gateway, rest=rest, ingress=ingress)
        runner = await health.start(monitor, config)
        # Closed before the bot: no new events, and the ingress's worker finishes the tickets
        # it is opening. Then Discord: background loops are cancelled (a unit already handed
        # to the database still commits), the gateway closes; the store last.
        app.on_close(runner.cleanup)
        urls = addresses(runner)
        stopping = asyncio.create_task(application.stop_signal(), name="stop-signal")
        connecting = asyncio.create_task(_connect(bot, token, config), name="discord")
        tasks = [stopping, connecting]
        tasks.append(asyncio.create_task(_say_ready(gateway, bot, urls, ingress is not None)))
        await asyncio.wait((stopping, connecting), return_when=asyncio.FIRST_COMPLETED)
        if stopping.done():
            log.info(
                "%s received: stopping (work under way finishes; the outbox keeps what is not"
                " delivered yet)",
                stopping.result(),
            )
        else:
            connecting.result()  # the reason it ended, if any
    finally:
        # bot.start() is cancelled before bot.close(): left running, discord.py's connect loop
        # took the closed socket for a dropped one and resumed the session (seen against the
        # sandbox), so the process left a session open instead of ending it.
        for task in tasks:
            task.cancel()


async def _connect(bot: ThothBot, token: str, config: Config) -> None:
    """Log in and stay connected; what keeps the bot from starting, in one line."""
    try:
        await bot.start(token)
    except discord.LoginFailure:
        raise StartupFailure(
            "Discord refused DISCORD_TOKEN: copy the token again from the Bot page of your"
            " application in the developer portal (Reset Token if unsure)."
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise StartupFailure(
            "Discord refused the bot's intents: on the Bot page of the developer portal,"
            " turn on Server Members Intent and Message Content Intent."
        ) from None
    except (aiohttp.ClientConnectionError, OSError) as error:
        raise StartupFailure(
            f"cannot reach Discord at {config.discord_api_url} ({_why(error)}): check the"
            " network, a proxy or firewall in the way, and THOTH_DISCORD_API_URL."
        ) from None
    except discord.HTTPException as error:
        raise StartupFailure(
            f"Discord answered {error.status} while the bot logged in: try again later"
            " (https://discordstatus.com shows outages)."
        ) from None


def _why(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientConnectorError) and error.os_error.strerror:
        return error.os_error.strerror.lower()
    return str(error) or type(error).__name__


async def _say_ready(
    gateway: health.GatewayWatch, bot: ThothBot, urls: list[str], ingress: bool
) -> None:
    """One line once the bot is in: who it is, where, and what else runs."""
    await gateway.first_ready.wait()
    servers = len(bot.guilds)
    where = ", ".join(urls)
    ingress_part = (
        f"the ingress on {where}" if ingress else "no ingress (no API key: thothbot keys create)"
    )
    log.info(
        "ready: logged in as %s (id %s) in %d server%s; %s; health on %s",
        bot.user,
        bot.user.id if bot.user is not None else "?",
        servers,
        "" if servers == 1 else "s",
        ingress_part,
        health.health_url(urls),
    )
