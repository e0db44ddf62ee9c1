"""The bot: discord.py wiring around the desk, and how to start it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from thothbot.bot.closing import Closer
from thothbot.bot.commands import Admin, Tickets
from thothbot.bot.effects import BotOps, DiscordEffects, EffectQueue
from thothbot.bot.flows import Flows
from thothbot.bot.items import DYNAMIC_ITEMS
from thothbot.bot.opening import Opener
from thothbot.bot.render import NO_PINGS
from thothbot.bot.timers import ClosingsLoop, SlaChecker
from thothbot.changes import Topic
from thothbot.delivery import Deliveries
from thothbot.napping import LONGEST, utc_now
from thothbot.service import Channels, Desk
from thothbot.service.outbox import Handoff, Outbox

log = logging.getLogger(__name__)

CLOSE_GRACE = 5.0  # seconds for background tasks to end once cancelled


def point_at(api_url: str, gateway_url: str) -> None:
    """Send discord.py's REST calls and first gateway connection to these URLs (a proxy, or the
    sandbox). discord.py reads both from class attributes, so this is process-wide."""
    discord.http.Route.BASE = api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class ThothTree(app_commands.CommandTree["ThothBot"]):
    async def on_error(
        self, interaction: discord.Interaction[ThothBot], error: app_commands.AppCommandError
    ) -> None:
        await interaction.client.flows.fail(interaction, error)


@dataclass(frozen=True, slots=True)
class BotDesk:
    """The services the bot is built with (``thothbot.application.bot_desk`` makes them): the
    desk, whose effects wait in ``effects`` for the bot to render them and whose escalations
    reach #ops through the outbox (the desk hands its #ops posts over in ``handoff``), and what
    the bot keeps of its channels."""

    desk: Desk
    channels: Channels
    effects: EffectQueue
    outbox: Outbox
    handoff: Handoff | None


class ThothBot(commands.Bot):
    def __init__(
        self,
        services: BotDesk,
        *,
        guild_ids: Iterable[int] = (),
        clock: Callable[[], datetime] = utc_now,
        close_delay: float = 10.0,
        longest: float = LONGEST,
        **options: Any,
    ) -> None:
        """``longest``: the background loops' longest nap, a safety net should a wake-up from
        the desk's change notifier be missed."""
        intents = discord.Intents.default()
        intents.members = True  # staff pools come from role members
        intents.message_content = True  # message_contains rules and saved answers read messages
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=NO_PINGS,
            tree_cls=ThothTree,
            help_command=None,
            **options,
        )
        desk, channels = services.desk, services.channels
        self.desk = desk
        self.guild_ids = tuple(guild_ids)
        self.now = clock
        self.deliveries = Deliveries(
            desk, services.outbox, ops=BotOps(self, desk), handoff=services.handoff, clock=clock
        )
        self.effects = DiscordEffects(self, services.effects, desk, channels, self.deliveries)
        self.opener = Opener(self, desk, channels, self.effects)
        self.flows = Flows(desk, channels, self.opener, clock, close_delay)
        self.sla = SlaChecker(desk, clock, longest=longest)
        closer = Closer(self, desk, channels, clock)
        wake = desk.changes.wake_on(Topic.CLOSINGS)
        self.closings = ClosingsLoop(
            channels, closer, clock, wake, ready=self.wait_until_ready, longest=longest
        )
        self._tasks: set[asyncio.Task[Any]] = set()

    async def setup_hook(self) -> None:
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        await self.add_cog(Tickets(self, self.flows, self.desk, self.now))
        await self.add_cog(Admin(self, self.flows, self.desk, self.now))
        if self.guild_ids:
            for guild_id in self.guild_ids:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        for loop in (
            self.effects.run(),
            self.deliveries.run(),
            self.sla.run(),
            self.closings.run(),
        ):
            self.spawn(loop)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` in the background, keeping a reference and logging its failure."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        # Bounded: a task that does not end must not keep the bot from closing.
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=CLOSE_GRACE)
            for task in stuck:
                log.error("background task %s did not stop in %g s", task.get_name(), CLOSE_GRACE)
        await super().close()

    # Discord's events

    async def on_ready(self) -> None:
        self.deliveries.wake()  # what waited for the bot to connect

    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self.flows.sync_roster(guild)
        # Openings a crash interrupted: finished, or removed with a word to the customer.
        self.spawn(self.opener.recover(guild))

    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        if before.roles != after.roles:
            await self.flows.sync_roster(after.guild)
