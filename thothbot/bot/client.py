"""The bot: discord.py wiring around the desk, and how to start it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
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
from thothbot.bot.timers import Timers
from thothbot.core.models import Ticket
from thothbot.delivery import Deliveries
from thothbot.napping import utc_now
from thothbot.service import Desk, GuildConfig

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


class ThothBot(commands.Bot):
    def __init__(
        self,
        desk: Desk,
        *,
        guild_ids: Iterable[int] = (),
        clock: Callable[[], datetime] = utc_now,
        close_delay: float = 10.0,
        **options: Any,
    ) -> None:
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
        if not isinstance(desk.sink, EffectQueue) or not desk.outbox:
            # Escalations reach #ops through the durable outbox, other effects through the
            # queue this bot renders: a desk built otherwise would lose them.
            raise TypeError("the bot needs a desk built for it (thothbot.application.bot_desk)")
        self.desk = desk
        self.effects = DiscordEffects(self, desk.sink)
        self.deliveries = Deliveries(desk, ops=BotOps(self), clock=clock)
        self.guild_ids = tuple(guild_ids)
        self.now = clock
        self.close_delay = close_delay
        self.flows = Flows(self)
        self.timers = Timers(self)
        self.closer = Closer(self)
        self.opener = Opener(self)
        self._tasks: set[asyncio.Task[Any]] = set()

    async def setup_hook(self) -> None:
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        await self.add_cog(Tickets(self))
        await self.add_cog(Admin(self))
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
            self.timers.run_sla(),
            self.timers.run_closings(),
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

    # Discord lookups the flows share

    async def text_channel(self, channel_id: str | None) -> discord.TextChannel | None:
        if channel_id is None:
            return None
        channel = self.get_channel(int(channel_id))
        if channel is None:
            try:
                channel = await self.fetch_channel(int(channel_id))
            except (discord.NotFound, discord.Forbidden):
                return None
        return channel if isinstance(channel, discord.TextChannel) else None

    async def user_by_id(self, user_id: str) -> discord.User | None:
        user = self.get_user(int(user_id))
        if user is None:
            try:
                user = await self.fetch_user(int(user_id))
            except discord.NotFound:
                return None
        return user

    @staticmethod
    def type_label(config: GuildConfig, ticket: Ticket) -> str | None:
        ticket_type = config.settings.types.get(ticket.type_id) if ticket.type_id else None
        return ticket_type.label if ticket_type is not None else None

    # Staff roles

    async def sync_roster(self, guild_id: str) -> None:
        """Store who holds the server's staff roles, for round robin and staff checks."""
        guild = self.get_guild(int(guild_id))
        if guild is None:
            return
        config = await self.desk.config(guild_id)
        roles = {t.staff_role for t in config.settings.types.values() if t.staff_role}
        if config.setup is not None:
            roles.add(config.setup.staff_role_id)
        roster = {}
        for role_id in roles:
            role = guild.get_role(int(role_id))
            roster[role_id] = [str(m.id) for m in role.members] if role is not None else []
        await self.desk.save_roster(guild_id, roster, self.now())

    async def on_ready(self) -> None:
        self.deliveries.wake()  # what waited for the bot to connect

    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self.sync_roster(str(guild.id))
        # Openings a crash interrupted: finished, or removed with a word to the customer.
        self.spawn(self.opener.recover(guild))

    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        if before.roles != after.roles:
            await self.sync_roster(str(after.guild.id))
