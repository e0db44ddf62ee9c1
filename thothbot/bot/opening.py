"""Opening a ticket in Discord: its channel, its record and its card, never half-made.

The number is taken and the opening saved (``openings``) before the channel is created, and
the channel's topic names the opening. A crash anywhere in between leaves a row that the next
start finds, with the channel it names (if Discord made it): the opening is finished (the
ticket saved, the card posted, the customer pinged in the channel) or, when it cannot be, its
channel is removed and the customer told by DM. Either way no number is used twice, and one
that is given up is given back when no later ticket took the next.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import replace
from typing import Any

import discord

from thothbot.bot import render
from thothbot.bot.effects import DiscordEffects
from thothbot.bot.items import ticket_buttons
from thothbot.bot.lookup import user_by_id
from thothbot.core.channels import DiscordSetup, Opening
from thothbot.core.errors import ThothError
from thothbot.core.models import Ticket
from thothbot.service import Channels, Desk, GuildConfig

log = logging.getLogger(__name__)

CATEGORY_CAP = 50  # Discord's limit of channels in one category
MAX_CHANNELS = "CHANNEL_PARENT_MAX_CHANNELS"
CUSTOMER_ACCESS = discord.PermissionOverwrite(
    view_channel=True, send_messages=True, read_message_history=True, attach_files=True
)
BOT_ACCESS = discord.PermissionOverwrite(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    # Not Manage Roles: an overwrite may grant it only with Administrator; the bot's role has it.
    manage_channels=True,
    embed_links=True,
    attach_files=True,
)
_TOPIC = re.compile(r"\(thoth opening (\d+)\)$")


def topic(opening: Opening) -> str:
    """The channel's topic: people read the ticket's number, the bot finds its opening."""
    return f"Ticket #{opening.number} (thoth opening {opening.id})"


def opening_of(channel: discord.abc.GuildChannel) -> int | None:
    """The opening a channel's topic names, if the bot made it for one."""
    found = _TOPIC.search(getattr(channel, "topic", None) or "")
    return int(found[1]) if found is not None else None


class Opener:
    def __init__(
        self,
        client: discord.Client,
        desk: Desk,
        channels: Channels,
        effects: DiscordEffects,
    ) -> None:
        """``effects``: held while a card is posted, told to forget a ticket undone."""
        self.client = client
        self.desk = desk
        self.channels = channels
        self.effects = effects
        # Openings this process is working on right now: not leftovers of a crash.
        self.in_flight: set[int] = set()
        self._recovered: set[int] = set()

    async def open(
        self, guild: discord.Guild, config: GuildConfig, opening: Opening, customer: Any
    ) -> tuple[Ticket, discord.TextChannel]:
        """Make the channel, save the ticket, post its card; undo all of it on failure."""
        self.in_flight.add(opening.id)
        channel = None
        try:
            # A crash from here until the ticket is saved (with its channel) leaves the channel
            # for the restart to find by the opening's marker in its topic.
            channel = await self.create_channel(guild, config, opening, customer)
            ticket = await self.finish(opening, channel, config)
        except BaseException:
            await self.undo(opening, channel)
            raise
        finally:
            self.in_flight.discard(opening.id)
        return ticket, channel

    async def finish(
        self,
        opening: Opening,
        channel: discord.TextChannel,
        config: GuildConfig,
        *,
        late: bool = False,
    ) -> Ticket:
        """Save the ticket (unless it is saved) and post its card (unless it is there)."""
        async with self.effects.held():  # the card stays the channel's first message
            if opening.ticket_id is None:
                ticket = await self.desk.open_ticket(
                    opening.guild_id,
                    opening.customer_id,
                    opening.subject,
                    opening.created_at,
                    body=opening.body,
                    type_id=opening.type_id,
                    channel_id=str(channel.id),
                    number=opening.number,
                    opening=opening.id,
                )
                opening = replace(opening, ticket_id=ticket.id)
            else:
                ticket = await self.desk.ticket(opening.ticket_id)
            if not (late and await self._has_card(channel, ticket)):
                greeting = (
                    "your ticket is open (it took us a restart: sorry for the wait). Staff"
                    " will be with you here."
                    if late
                    else "staff will be with you here."
                )
                await channel.send(
                    f"<@{ticket.customer_id}>, {greeting}",
                    embed=render.ticket_card(ticket, render.type_label(config.settings, ticket)),
                    view=ticket_buttons(ticket.id),
                    allowed_mentions=discord.AllowedMentions(
                        users=[discord.Object(int(ticket.customer_id))], everyone=False, roles=False
                    ),
                )
        await self.channels.opening_done(opening.id)
        self.channels.note(str(channel.id), ticket.id)
        return ticket

    async def undo(self, opening: Opening, channel: discord.abc.GuildChannel | None) -> bool:
        """Remove what an opening made: its channel, its ticket, its number (when still the
        last). An opening whose channel could not be deleted stays for the next start."""
        if channel is not None:
            try:
                await channel.delete(reason="the ticket could not be opened")
            except discord.NotFound:
                pass
            except discord.HTTPException:
                log.warning(
                    "opening %s: its channel %s could not be removed", opening.id, channel.id
                )
                return False
        current = await self.channels.opening(opening.id)
        if current is not None and current.ticket_id is not None:
            self.effects.forget(current.ticket_id)
            await self.desk.discard(current.ticket_id)
        given_back = await self.channels.abandon_opening(opening)
        if not given_back:
            log.warning(
                "ticket number %s of guild %s was given up: a later ticket took the next",
                opening.number,
                opening.guild_id,
            )
        return True

    # After a restart

    async def recover(self, guild: discord.Guild) -> None:
        """Finish or remove the openings a previous process left behind in this server."""
        if guild.id in self._recovered:
            return
        self._recovered.add(guild.id)
        gid = str(guild.id)
        openings = await self.channels.openings(gid)
        marked = {opening_of(c): c for c in guild.text_channels if opening_of(c) is not None}
        for opening in openings:
            if opening.id in self.in_flight:
                continue
            channel = marked.get(opening.id)
            if channel is None and opening.channel_id is not None:
                found = guild.get_channel(int(opening.channel_id))
                channel = found if isinstance(found, discord.TextChannel) else None
            self.in_flight.add(opening.id)
            try:
                await self._recover(guild, opening, channel)
            except Exception:
                log.exception("opening %s could not be recovered", opening.id)
            finally:
                self.in_flight.discard(opening.id)
        pending = {o.id for o in openings} | self.in_flight
        await self._remove_strays(guild, [c for i, c in marked.items() if i not in pending])

    async def _remove_strays(
        self, guild: discord.Guild, channels: list[discord.TextChannel]
    ) -> None:
        """Remove ticket channels the bot made whose opening is not on record (a database
        restored from before it) and that no ticket uses: nothing could ever finish them."""
        unused = await self.channels.unused([str(c.id) for c in channels])
        for channel in channels:
            if str(channel.id) not in unused:
                continue
            log.warning("channel %s was opened for a ticket not on record; removing it", channel.id)
            try:
                await channel.delete(reason="the ticket it was made for is not on record")
            except discord.HTTPException:
                log.warning("channel %s could not be removed", channel.id)
                continue
            for target in channel.overwrites:  # the customer is the one member given access
                if isinstance(target, discord.Member) and not target.bot:
                    await self._tell(guild, target.id, None)

    async def _recover(
        self, guild: discord.Guild, opening: Opening, channel: discord.TextChannel | None
    ) -> None:
        config = await self.desk.config(opening.guild_id)
        customer = guild.get_member(int(opening.customer_id))
        gone = channel is None and opening.ticket_id is not None  # deleted by someone since
        if customer is not None and config.setup is not None and not gone:
            try:
                if channel is None:  # Discord never made it: make it now
                    channel = await self.create_channel(guild, config, opening, customer)
                ticket = await self.finish(opening, channel, config, late=True)
            except (ThothError, discord.HTTPException) as error:
                log.info("opening %s cannot be finished (%s); removing it", opening.id, error)
            else:
                log.info("opening %s finished after a restart as ticket %s", opening.id, ticket.id)
                return
        if await self.undo(opening, channel):
            await self._tell(guild, opening.customer_id, opening.subject)

    async def _tell(self, guild: discord.Guild, customer_id: object, subject: str | None) -> None:
        """Tell a customer by DM that their ticket could not be opened."""
        user = await user_by_id(self.client, str(customer_id))
        if user is None:
            return
        about = f" about \u201c{subject}\u201d" if subject else ""
        with contextlib.suppress(discord.HTTPException):
            await user.send(
                f"Your ticket{about} on {guild.name} could not be opened (the bot restarted"
                " while opening it). Please open it again.",
                allowed_mentions=render.NO_PINGS,
            )
            return
        log.info("customer %s takes no DMs; their unopened ticket was removed unannounced", user.id)

    async def _has_card(self, channel: discord.TextChannel, ticket: Ticket) -> bool:
        wanted = f"thoth:close:{ticket.id}"
        me = self.client.user
        async for message in channel.history(limit=20, oldest_first=True):
            if me is None or message.author.id != me.id:
                continue
            for row in message.components:
                if isinstance(row, discord.ActionRow) and any(
                    isinstance(child, discord.Button) and child.custom_id == wanted
                    for child in row.children
                ):
                    return True
        return False

    # The channel

    async def create_channel(
        self, guild: discord.Guild, config: GuildConfig, opening: Opening, customer: Any
    ) -> discord.TextChannel:
        setup = config.setup
        assert setup is not None  # checked before a number was taken
        overwrites: dict[Any, discord.PermissionOverwrite] = {
            guild.default_role: discord.PermissionOverwrite(view_channel=False),
            guild.me: BOT_ACCESS,
            customer: CUSTOMER_ACCESS,
        }
        type_id = opening.type_id
        ticket_type = config.settings.types.get(type_id) if type_id else None
        for role_id in (setup.staff_role_id, ticket_type.staff_role if ticket_type else None):
            role = guild.get_role(int(role_id)) if role_id else None
            if role is not None:
                overwrites[role] = CUSTOMER_ACCESS
        name = render.channel_name(opening.number)
        category = await self._category(guild, setup, full=False)
        try:
            return await guild.create_text_channel(
                name, category=category, overwrites=overwrites, topic=topic(opening)
            )
        except discord.HTTPException as error:
            if MAX_CHANNELS not in str(error.text):
                raise
        category = await self._category(guild, setup, full=True)
        return await guild.create_text_channel(
            name, category=category, overwrites=overwrites, topic=topic(opening)
        )

    async def _category(
        self, guild: discord.Guild, setup: DiscordSetup, *, full: bool
    ) -> discord.CategoryChannel:
        """The category that takes new tickets; a new one ("Tickets 2", ...) when it is full."""
        current = guild.get_channel(int(setup.categories[-1])) if setup.categories else None
        if (
            isinstance(current, discord.CategoryChannel)
            and not full
            and len(current.channels) < CATEGORY_CAP
        ):
            return current
        name = "Tickets" if not setup.categories else f"Tickets {len(setup.categories) + 1}"
        category = await guild.create_category(
            name,
            overwrites={
                guild.default_role: discord.PermissionOverwrite(view_channel=False),
                guild.me: BOT_ACCESS,
            },
        )
        updated = DiscordSetup(
            setup.guild_id,
            setup.staff_role_id,
            setup.ops_channel_id,
            setup.log_channel_id,
            (*setup.categories, str(category.id)),
        )
        await self.desk.save_setup(updated)
        return category
