"""The Discord face of the desk's effects: assignment notes, breaches, saved answers, and the
#ops channel the delivery worker posts escalations in.

Effects are queued and rendered by one worker in the order they happened, so no interaction
ever waits on Discord to hear about a rule's consequences. Escalations do not pass here: they
are in the outbox (``thothbot/delivery.py``), which survives a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import discord

from thothbot.bot import render
from thothbot.bot.items import claim_button
from thothbot.bot.lookup import text_channel
from thothbot.core.delivery import OpsPost, has_marker
from thothbot.core.models import AnswerReplied, Assigned, Effect, SlaBreached, Ticket
from thothbot.delivery import Deliveries, Later
from thothbot.service import Channels, Desk

LOOK_LIMIT = 200  # recent messages read when looking for a post after a crash

log = logging.getLogger(__name__)

STAFF_ACCESS = discord.PermissionOverwrite(
    view_channel=True, send_messages=True, read_message_history=True, attach_files=True
)


class EffectQueue:
    """The desk's ``EffectSink`` when the bot runs: effects wait here, in order, until
    ``DiscordEffects`` renders them. Made before the desk and the bot, so that neither has to
    be wired into the other after it is built."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, list[Effect]]] = asyncio.Queue()

    async def publish(self, guild_id: str, effects: Sequence[Effect]) -> None:
        self.queue.put_nowait((guild_id, list(effects)))


class DiscordEffects:
    """Renders the desk's effects in Discord, in order, off the interaction path."""

    def __init__(
        self,
        client: discord.Client,
        effects: EffectQueue,
        desk: Desk,
        channels: Channels,
        deliveries: Deliveries,
    ) -> None:
        """``deliveries`` renders a ticket's #ops post as it stands now, to refresh it."""
        self.client = client
        self.desk = desk
        self.channels = channels
        self.deliveries = deliveries
        self._queue = effects.queue
        self._holds = 0
        self._discarded: set[int] = set()
        self._free = asyncio.Event()
        self._free.set()

    def forget(self, ticket_id: int) -> None:
        """Drop what is still queued about a ticket that was discarded while being opened."""
        self._discarded.add(ticket_id)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Hold rendering while a ticket's channel gets its first message, so it stays first."""
        self._holds += 1
        self._free.clear()
        try:
            yield
        finally:
            self._holds -= 1
            if not self._holds:
                self._free.set()

    async def run(self) -> None:
        while True:
            guild_id, effects = await self._queue.get()
            try:
                await self._free.wait()
                for effect in effects:
                    if effect.ticket_id in self._discarded:
                        continue
                    try:
                        await self.render(guild_id, effect)
                    except Exception:
                        log.exception(
                            "could not show %s in guild %s", type(effect).__name__, guild_id
                        )
            finally:
                self._queue.task_done()

    async def settled(self) -> None:
        """Wait until every effect published so far is shown (the demo and tests)."""
        await self._queue.join()

    async def render(self, guild_id: str, effect: Effect) -> None:
        match effect:
            case Assigned():
                await self._assigned(guild_id, effect)
            case SlaBreached():
                await self._breached(guild_id, effect)
            case AnswerReplied():
                ticket = await self.desk.ticket(effect.ticket_id)
                channel = await text_channel(self.client, ticket.channel_id)
                if channel is not None:
                    await channel.send(effect.text, allowed_mentions=render.NO_PINGS)

    async def _assigned(self, guild_id: str, effect: Assigned) -> None:
        ticket = await self.desk.ticket(effect.ticket_id)
        channel = await text_channel(self.client, ticket.channel_id)
        if channel is not None:
            member = channel.guild.get_member(int(effect.assignee_id))
            if member is not None:
                await channel.set_permissions(member, overwrite=STAFF_ACCESS)
            how = "by round robin" if effect.rule_id else "by hand"
            await channel.send(
                f"<@{effect.assignee_id}> is now handling this ticket (assigned {how}).",
                allowed_mentions=discord.AllowedMentions(
                    users=[discord.Object(int(effect.assignee_id))],
                    everyone=False,
                    roles=False,
                ),
            )
        await self.refresh_ops(ticket)

    async def refresh_ops(self, ticket: Ticket) -> None:
        """Show the ticket's assignee and claimer on its #ops posts; a claimed post loses Claim."""
        posts = await self.channels.ops_posts(ticket.id)
        for channel_id, message_id, reason in posts:
            channel = await text_channel(self.client, channel_id)
            if channel is None:
                continue
            post = await self.deliveries.render(ticket, reason)
            await channel.get_partial_message(int(message_id)).edit(
                embed=discord.Embed.from_dict(post.embed.to_dict()),
                view=claim_button(ticket.id, claimed=ticket.claimed_by is not None),
            )

    async def _breached(self, guild_id: str, effect: SlaBreached) -> None:
        ticket = await self.desk.ticket(effect.ticket_id)
        config = await self.desk.config(guild_id)
        target = effect.target.value.replace("_", " ")
        line = (
            f"SLA breach: the {target} target of ticket {render.ticket_ref(ticket)}"
            f" passed at {render.when(effect.at)}."
        )
        for channel_id in (
            config.setup.ops_channel_id if config.setup else None,
            ticket.channel_id,
        ):
            channel = await text_channel(self.client, channel_id)
            if channel is not None:
                await channel.send(line, allowed_mentions=render.NO_PINGS)


class BotOps:
    """How the delivery worker reaches a server's ops channel: through the bot, with a Claim
    button, remembering the post so a claim can update it."""

    def __init__(self, client: discord.Client, desk: Desk) -> None:
        self.client = client
        self.desk = desk

    @property
    def ready(self) -> bool:
        return self.client.is_ready()

    async def post(
        self, ticket: Ticket, post: OpsPost, *, reason: str, nonce: str, channel_id: str | None
    ) -> tuple[str, str]:
        ops = await text_channel(self.client, channel_id)
        if ops is None:
            raise Later("the server has no ops channel (an admin runs /setup)", after=300)
        pings = post.allowed_mentions
        try:
            message = await ops.send(
                post.content or None,
                embed=discord.Embed.from_dict(post.embed.to_dict()),
                view=claim_button(ticket.id, claimed=ticket.claimed_by is not None),
                allowed_mentions=discord.AllowedMentions(
                    everyone=False,
                    roles=[discord.Object(int(r)) for r in pings.get("roles", [])],
                    users=[discord.Object(int(u)) for u in pings.get("users", [])],
                ),
                nonce=nonce,  # a repeat after a crash gets the first post back, not a second
            )
        except discord.HTTPException as error:
            # Discord.py already retried 429s and 5xx; permissions may be fixed by an admin.
            raise Later(f"Discord answered {error.status} ({error.code}): {error.text}") from error
        return str(ops.id), str(message.id)  # the worker records it with the delivery

    async def find(
        self, guild_id: str, channel_id: str | None, marker: str, since: datetime,
        *, webhook_id: str | None = None,
    ) -> tuple[str, str] | None:  # fmt: skip
        if channel_id is None:
            config = await self.desk.config(guild_id)
            channel_id = config.setup.ops_channel_id if config.setup else None
        channel = await text_channel(self.client, channel_id)
        if channel is None or not channel.permissions_for(channel.guild.me).read_message_history:
            log.warning(
                "cannot read channel %s to look for a post that was maybe sent before a crash;"
                " it will be posted again (give the bot Read Message History there)",
                channel_id,
            )
            return None
        try:
            async for message in channel.history(limit=LOOK_LIMIT, after=since):
                if webhook_id is not None:
                    if str(message.webhook_id) != webhook_id:
                        continue
                elif self.client.user is None or message.author.id != self.client.user.id:
                    continue
                if any(has_marker(embed.footer.text, marker) for embed in message.embeds):
                    return str(channel.id), str(message.id)
        except discord.HTTPException as error:
            raise Later(f"could not read channel {channel_id}: {error.status}") from error
        return None

    async def notice(self, guild_id: str, text: str, *, nonce: str) -> None:
        config = await self.desk.config(guild_id)
        ops = await text_channel(self.client, config.setup.ops_channel_id if config.setup else None)
        if ops is None:
            raise Later("the server has no ops channel (an admin runs /setup)", after=300)
        try:
            await ops.send(text, allowed_mentions=render.NO_PINGS, nonce=nonce)
        except discord.HTTPException as error:
            raise Later(f"Discord answered {error.status} ({error.code}): {error.text}") from error
