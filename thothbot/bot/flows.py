"""What each command and button does, between Discord and the desk.

Every flow acknowledges its interaction first (Discord allows 3 seconds), then asks the desk,
which decides; the flow only does the Discord side: channels, permissions, files, replies.
Errors reach the user as one short ephemeral line and the log, never as silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import discord

from thothbot.bot import render
from thothbot.bot.closing import UPLOAD_LIMIT
from thothbot.bot.items import Interaction, JsonModal, rating_buttons
from thothbot.bot.opening import Opener
from thothbot.core.errors import DomainError, InvalidTransition, SettingsInvalid, ThothError
from thothbot.core.models import Ticket
from thothbot.core.rules import MAX_INPUT_BYTES, rules_json
from thothbot.service import Channels, CloseSteps, Desk, GuildConfig, StoreFault

log = logging.getLogger(__name__)

MISSING_PERMISSIONS = 50013
NEEDED = (
    "view_channel",
    "send_messages",
    "manage_channels",
    "manage_roles",
    "embed_links",
    "attach_files",
    "read_message_history",
)


NOT_A_TICKET_CHANNEL = "This is not a ticket channel: use it inside a ticket."


class Flows:
    def __init__(
        self,
        desk: Desk,
        channels: Channels,
        opener: Opener,
        clock: Callable[[], datetime],
        close_delay: float,
    ) -> None:
        """``close_delay``: seconds a closed ticket's channel stays, for the rating."""
        self.desk = desk
        self.channels = channels
        self.opener = opener
        self.now = clock
        self.close_delay = close_delay
        # One lock per customer opening a ticket; gone once nobody holds or awaits it.
        self._locks: weakref.WeakValueDictionary[tuple[int, int], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    # Answering

    async def reply(
        self,
        interaction: Interaction,
        content: str | None = None,
        *,
        embed: discord.Embed | None = None,
        files: list[discord.File] | None = None,
        ephemeral: bool = True,
    ) -> None:
        if content is not None and len(content) > 2000:
            files = [*(files or []), discord.File(io.BytesIO(content.encode()), "report.txt")]
            content = content[:1900].rsplit("\n", 1)[0]
            if content.count("```") % 2:  # cut inside a code block: close it
                content += "\n```"
            content += "\n... (the whole text is attached)"
        kwargs: dict[str, Any] = {"allowed_mentions": render.NO_PINGS, "ephemeral": ephemeral}
        if embed is not None:
            kwargs["embed"] = embed
        if files:
            kwargs["files"] = files
        if interaction.response.is_done():
            await interaction.followup.send(content or "", **kwargs)
        else:
            await interaction.response.send_message(content, **kwargs)

    async def fail(self, interaction: Interaction, error: BaseException) -> None:
        """Tell the user what went wrong in one line; log what they do not need to see."""
        if isinstance(error, discord.app_commands.CommandInvokeError):
            error = error.original
        if isinstance(error, ThothError):
            text = str(error)
        elif isinstance(error, discord.Forbidden) and error.code == MISSING_PERMISSIONS:
            text = (
                "I am missing a Discord permission for that. An admin can give my role View"
                " Channels, Send Messages, Manage Channels, Manage Roles, Embed Links, Attach"
                " Files and Read Message History (or run /setup to see what is missing)."
            )
        elif isinstance(error, discord.app_commands.CheckFailure):
            text = str(error) or "You cannot use this command here."
        elif isinstance(error, StoreFault):  # locked past the wait, full, read-only, damaged
            log.error("interaction %s: %s", interaction.id, error, exc_info=error)
            text = (
                "The database could not take that just now, and nothing was changed: please"
                " try again in a moment."
            )
        else:
            log.error("interaction %s failed", interaction.id, exc_info=error)
            text = "Something went wrong on our side; it has been logged. Please try again."
        try:
            await self.reply(interaction, text)
        except discord.HTTPException:
            log.warning("could not tell user %s about an error", interaction.user.id)

    @contextlib.asynccontextmanager
    async def guarded(self, interaction: Interaction) -> AsyncIterator[None]:
        try:
            yield
        except Exception as error:
            await self.fail(interaction, error)

    async def defer(self, interaction: Interaction, *, ephemeral: bool = True) -> None:
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)

    # Where things are

    def guild_id(self, interaction: Interaction) -> str:
        if interaction.guild_id is None:
            raise DomainError("This works in a server, not in direct messages.")
        return str(interaction.guild_id)

    async def ticket_here(self, interaction: Interaction) -> Ticket:
        ticket = await self.desk.ticket_by_channel(str(interaction.channel_id))
        if ticket is None:
            raise DomainError(NOT_A_TICKET_CHANNEL)
        return ticket

    async def ticket_id_here(self, interaction: Interaction) -> int:
        """The id of this channel's ticket, for a command that acts on it by id."""
        ticket_id = await self.channels.ticket_id_in(str(interaction.channel_id))
        if ticket_id is None:
            raise DomainError(NOT_A_TICKET_CHANNEL)
        return ticket_id

    async def require_staff(self, interaction: Interaction) -> GuildConfig:
        config = await self.desk.config(self.guild_id(interaction))
        if not config.settings.is_staff(str(interaction.user.id)):
            raise DomainError("Only staff can do that.")
        return config

    async def sync_roster(self, guild: discord.Guild | None) -> None:
        """Store who holds the server's staff roles, for round robin and staff checks."""
        if guild is None:
            return
        guild_id = str(guild.id)
        config = await self.desk.config(guild_id)
        roles = {t.staff_role for t in config.settings.types.values() if t.staff_role}
        if config.setup is not None:
            roles.add(config.setup.staff_role_id)
        roster = {}
        for role_id in roles:
            role = guild.get_role(int(role_id))
            roster[role_id] = [str(m.id) for m in role.members] if role is not None else []
        await self.desk.save_roster(guild_id, roster, self.now())

    # Opening

    async def open(
        self, interaction: Interaction, subject: str, type_id: str | None, description: str
    ) -> None:
        async with self.guarded(interaction):
            await self.defer(interaction)
            guild = interaction.guild
            gid = self.guild_id(interaction)
            assert guild is not None
            user = interaction.user
            lock = self._locks.setdefault((guild.id, user.id), asyncio.Lock())
            async with lock:  # a double click waits here, then finds the first ticket
                config, begun = await self.desk.begin_opening(
                    gid, str(user.id), subject, self.now(), body=description, type_id=type_id
                )
                if isinstance(begun, Ticket):
                    await self.reply(
                        interaction, f"You opened {render.ticket_ref(begun)} about this just now."
                    )
                    return
                _, channel = await self.opener.open(guild, config, begun, user)
            await self.reply(interaction, f"Your ticket is open: {channel.mention}")

    # Working a ticket

    async def claim(self, interaction: Interaction, ticket_id: int | None = None) -> None:
        async with self.guarded(interaction):
            await self.defer(interaction)
            if ticket_id is None:
                ticket_id = await self.ticket_id_here(interaction)
            try:
                ticket, effects = await self.desk.claim(
                    ticket_id, str(interaction.user.id), self.now()
                )
            except InvalidTransition:
                ticket = await self.desk.ticket(ticket_id)
                if ticket.claimed_by is None:
                    raise
                raise InvalidTransition(
                    f"{render.ticket_ref(ticket)} was already claimed by <@{ticket.claimed_by}>."
                ) from None
            if not effects:
                await self.reply(interaction, f"{render.ticket_ref(ticket)} is already yours.")
            else:
                await self.reply(interaction, f"You claimed {render.ticket_ref(ticket)}.")

    async def escalate(
        self, interaction: Interaction, ticket_id: int | None, reason: str | None
    ) -> None:
        async with self.guarded(interaction):
            await self.defer(interaction)
            if ticket_id is None:
                ticket_id = await self.ticket_id_here(interaction)
            await self.desk.escalate(ticket_id, str(interaction.user.id), self.now(), reason)
            await self.reply(interaction, "Escalated: the ops channel has it now.")

    async def assign(self, interaction: Interaction, member: discord.abc.User) -> None:
        async with self.guarded(interaction):
            await self.defer(interaction)
            ticket = await self.ticket_here(interaction)
            await self.desk.assign(ticket.id, str(member.id), str(interaction.user.id), self.now())
            await self.reply(interaction, f"Assigned to {member.mention}.")

    async def tag(self, interaction: Interaction, tag: str, *, add: bool) -> None:
        async with self.guarded(interaction):
            ticket = await self.ticket_here(interaction)
            ticket = await self.desk.tag(ticket.id, tag, str(interaction.user.id), add=add)
            await self.reply(interaction, f"Tags: {', '.join(ticket.tags) or 'none'}.")

    async def info(self, interaction: Interaction) -> None:
        async with self.guarded(interaction):
            ticket = await self.ticket_here(interaction)
            config = await self.desk.config(ticket.guild_id)
            clocks = await self.desk.clocks(ticket.id)
            label = render.type_label(config.settings, ticket)
            await self.reply(interaction, embed=render.info(ticket, label, clocks))

    # Closing and rating

    async def close(
        self, interaction: Interaction, ticket_id: int | None, reason: str | None
    ) -> None:
        async with self.guarded(interaction):
            if ticket_id is None:  # before deferring, so "not a ticket channel" stays private
                ticket_id = await self.ticket_id_here(interaction)
            await self.defer(interaction, ephemeral=False)
            by = interaction.user
            delay = self.close_delay
            # The transcripts, the rating request and the deletion are saved with the close
            # and done by the closing worker (bot/closing.py), across restarts too.
            steps = CloseSteps(
                closed_by_name=by.display_name,
                reason=reason,
                upload_limit=min(interaction.filesize_limit, UPLOAD_LIMIT),
                delete_after=timedelta(seconds=delay),
            )
            await self.desk.close(ticket_id, str(by.id), self.now(), steps=steps)
            await self.reply(
                interaction,
                f"Closed by {by.mention}{f': {reason}' if reason else ''}."
                f" This channel will be deleted in {delay:g} seconds.",
                ephemeral=False,
            )

    async def rate(self, interaction: Interaction, ticket_id: int, rating: int) -> None:
        async with self.guarded(interaction):
            await self.desk.rate(ticket_id, str(interaction.user.id), rating, self.now())
            await interaction.response.edit_message(
                content=f"Thank you: you rated this ticket {rating} out of 5.",
                view=rating_buttons(ticket_id, disabled=True),
            )

    # Settings

    async def save_document(self, interaction: Interaction, kind: str, raw: bytes) -> None:
        """Save pasted or attached rules (``kind`` "rules") or settings, and report as the CLI."""
        async with self.guarded(interaction):
            await self.defer(interaction)
            gid = self.guild_id(interaction)
            if kind == "rules":
                saved = await self.desk.save_rules(gid, raw)
                lines = render.rule_problems(saved.validation.problems)
                if saved.saved:
                    count = len(saved.validation.rules)
                    heading = f"Saved {count} rule{'s' if count != 1 else ''}."
                else:
                    heading = saved.reason or "Nothing was saved; your current rules are kept."
                await self.reply(interaction, render.problems(lines, heading))
                return
            try:
                result = await self.desk.save_settings(gid, raw, self.now())
            except SettingsInvalid as error:
                lines = [f"{path or '(top)'}: {message}" for path, message in error.problems]
                await self.reply(
                    interaction,
                    render.problems(lines, "Nothing was saved; your settings are kept."),
                )
                return
            await self.sync_roster(interaction.guild)
            lines = [f"warning: {path}: {message}" for path, message in result.warnings]
            await self.reply(interaction, render.problems(lines, "Saved the settings."))

    async def document_from(
        self, interaction: Interaction, kind: str, file: discord.Attachment | None
    ) -> None:
        """``/settings automation|routing``: the attached file, or a modal with the current text."""
        async with self.guarded(interaction):
            if file is not None:
                if file.size > MAX_INPUT_BYTES:
                    raise DomainError(
                        f"{file.filename} is {file.size:,} bytes; the limit is"
                        f" {MAX_INPUT_BYTES:,}. Nothing was saved."
                    )
                await self.defer(interaction)
                await self.save_document(interaction, kind, await file.read())
                return
            current = await self.export_text(self.guild_id(interaction), kind)
            if len(current) > 4000:
                raise DomainError(
                    f"The current {kind} are {len(current):,} characters, more than a Discord"
                    " text box holds (4,000). Export them, edit the file and attach it to this"
                    " command instead."
                )
            title = "Automation rules" if kind == "rules" else "Routing and SLA settings"
            await interaction.response.send_modal(JsonModal(title, kind, current))

    async def export_text(self, guild_id: str, kind: str) -> str:
        if kind == "rules":
            document: Any = rules_json((await self.desk.config(guild_id)).rules)
        else:  # secrets masked; pasted back unchanged, they keep the stored ones
            document = await self.desk.settings_export(guild_id)
        return json.dumps(document, indent=2, ensure_ascii=False)

    async def export(self, interaction: Interaction, kind: str) -> None:
        async with self.guarded(interaction):
            text = await self.export_text(self.guild_id(interaction), kind)
            name = "rules.json" if kind == "rules" else "settings.json"
            await self.reply(
                interaction,
                f"The current {kind}; attach the file to /settings to import it again.",
                files=[discord.File(io.BytesIO(text.encode()), name)],
            )

    # Saved answers

    async def add_answer(self, interaction: Interaction, triggers: str, text: str) -> None:
        async with self.guarded(interaction):
            await self.require_staff(interaction)
            answer = await self.desk.add_answer(
                self.guild_id(interaction), triggers, text, str(interaction.user.id), self.now()
            )
            await self.reply(
                interaction,
                f"Saved answer {answer.id}: the bot replies with it once per ticket when a"
                f" customer writes {', '.join(repr(p) for p in answer.triggers)}.",
            )
