"""A closed ticket's steps in Discord, each done once even across a crash.

The close saves its steps as pending in the same transaction (``closings``); this worker does
them in order and records each one as it is done: read the channel's history into a transcript
kept in the database, post it to the log channel, send it to the customer by DM, ask for the
rating (in the channel when DMs are closed), and delete the channel once its time has come and
the steps that need the channel are done.

A crash after Discord took a post and before it was recorded would post it twice on the next
attempt. So an attempt after an unfinished one looks first: the destination's recent messages
carry a marker of the ticket and the step (the transcript files' descriptions, the rating
buttons' custom ids), and what is already there is recorded, not posted again. Discord's
nonces are no help here: it forgets them after a few minutes.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import discord

from thothbot.bot import render
from thothbot.bot.items import rating_buttons
from thothbot.bot.lookup import text_channel, user_by_id
from thothbot.bot.transcript import (
    MAX_PARTS,
    TranscriptHeader,
    TranscriptMessage,
    message_size,
    transcript_parts,
)
from thothbot.core.channels import Closing
from thothbot.core.models import Ticket
from thothbot.service import Channels, Desk, TranscriptFiles

log = logging.getLogger(__name__)

# What a bot may upload in one message to a server without boosts, and to a DM.
UPLOAD_LIMIT = 10 * 1024 * 1024
LOOK_BACK = 200  # recent messages searched for a post an unfinished attempt may have made
MAX_ATTEMPTS = 12  # with the backoff below, about an hour and a half of trying
_MARKER = re.compile(r"\(thoth (\d+):(\d+)\)$")


def backoff(attempts: int) -> timedelta:
    """How long after an attempt that did not finish the next one comes."""
    return timedelta(seconds=min(600, 5 * 2**attempts))


def marker(ticket: Ticket, part: int, parts: int) -> str:
    """A transcript file's description: says what it is, and names the ticket and part."""
    where = f"(thoth {ticket.id}:{part})"
    return f"Transcript of ticket #{ticket.number}, part {part} of {parts} {where}"


def marked_part(message: discord.Message, ticket_id: int) -> int | None:
    """The transcript part of this ticket a message carries, if any."""
    for attachment in message.attachments:
        found = _MARKER.search(attachment.description or "")
        if found is not None and int(found[1]) == ticket_id:
            return int(found[2])
    return None


def asks_rating(message: discord.Message, ticket_id: int) -> bool:
    prefix = f"thoth:rate:{ticket_id}:"
    return any(
        isinstance(child, discord.Button) and (child.custom_id or "").startswith(prefix)
        for row in message.components
        if isinstance(row, discord.ActionRow)
        for child in row.children
    )


class Closer:
    def __init__(
        self,
        client: discord.Client,
        desk: Desk,
        channels: Channels,
        clock: Callable[[], datetime],
    ) -> None:
        self.client = client
        self.desk = desk
        self.channels = channels
        self.now = clock

    async def work(self, closing: Closing) -> None:
        """Do what is left of one closing, recording each step; on trouble, try again later."""
        channels = self.channels
        c = closing
        retry_at = self.now() + backoff(c.attempts)
        ticket = await channels.begin_closing(c.ticket_id, retry_at)
        # An earlier attempt that did not finish may have posted without recording it.
        unsure = c.attempts > 0
        if ticket is None:  # removed since (by an operator): nothing left to show
            await channels.finish_closing(c.ticket_id, self.now())
            return
        problems: list[str] = []

        async def step(
            name: str, done: str | None, action: Callable[[], Awaitable[str]]
        ) -> str | None:
            if done is not None:
                return done
            try:
                outcome = await action()
            except Exception as error:
                log.warning(
                    "ticket %s: the %s step failed: %s", c.ticket_id, name, _describe(error)
                )
                problems.append(f"{name}: {_describe(error)}")
                if c.attempts + 1 < MAX_ATTEMPTS:
                    return None
                outcome = f"gave up: {_describe(error)}"
            await channels.step_done(c.ticket_id, name, outcome)
            return outcome

        read = await step("read", c.read, lambda: self._read(c, ticket))
        files: TranscriptFiles = []
        if read is not None:
            files = await channels.transcript(c.ticket_id)
        if read is not None:
            await step("logged", c.logged, lambda: self._log(c, ticket, files, unsure))
        sent = c.sent
        if read is not None:
            sent = await step("sent", c.sent, lambda: self._send(c, ticket, files, unsure))
        asked = c.asked
        if sent is not None:
            asked = await step("asked", c.asked, lambda: self._ask(c, ticket, sent, unsure))
        now = self.now()
        deleted = c.deleted
        if read is not None and asked is not None and now >= c.delete_at:
            deleted = await step("deleted", c.deleted, lambda: self._delete(c))
        if problems:
            error: str | None = "; ".join(problems)
            # A failing destination does not hold back the deletion once it may happen.
            ready = deleted is None and read is not None and asked is not None
            later = min(retry_at, c.delete_at) if ready else retry_at
        else:  # at most the deletion is left, and its time has not come
            error, later = None, c.delete_at
        finished = await channels.end_attempt(
            c.ticket_id, self.now(), deleted=deleted is not None, next_at=later, error=error
        )
        if finished:
            log.info("ticket %s: closing finished", c.ticket_id)

    # The steps: each returns its outcome, or raises to be tried again later

    async def _read(self, c: Closing, ticket: Ticket) -> str:
        """Read the channel's history into the transcript, kept until the closing finishes."""
        channel = await text_channel(self.client, c.channel_id)
        if channel is None:
            await self.channels.save_transcript(c.ticket_id, [], "channel gone")
            return "channel gone"
        cap = c.upload_limit * MAX_PARTS  # more could never be sent: stop reading there
        messages: list[TranscriptMessage] = []
        size, cut = 0, False
        async for m in channel.history(limit=None, oldest_first=True):
            message = TranscriptMessage(
                author_id=str(m.author.id),
                author_name=m.author.display_name,
                at=m.created_at,
                content=m.clean_content,
                attachments=tuple(a.filename for a in m.attachments),
                is_bot=m.author.bot,
                embeds=tuple("\n".join(filter(None, [e.title, e.description])) for e in m.embeds),
            )
            size += message_size(message)
            if size > cap:
                cut = True
                break
            messages.append(message)
        customer = await user_by_id(self.client, ticket.customer_id)
        header = TranscriptHeader(
            guild_name=channel.guild.name,
            channel_name=channel.name,
            ticket_number=ticket.number,
            subject=ticket.subject,
            customer_name=customer.display_name if customer else ticket.customer_id,
            opened_at=ticket.created_at,
            closed_at=ticket.closed_at or c.closed_at,
            closed_by=c.closed_by_name,
            reason=c.reason,
        )
        parts = transcript_parts(header, messages, c.upload_limit, cut=cut)
        outcome = f"{len(messages)} messages in {len(parts)} part(s){', cut' if cut else ''}"
        await self.channels.save_transcript(c.ticket_id, parts, outcome)
        return outcome

    async def _log(self, c: Closing, ticket: Ticket, files: TranscriptFiles, unsure: bool) -> str:
        if not files:
            return "no transcript"
        config = await self.desk.config(c.guild_id)
        channel = await text_channel(
            self.client, config.setup.log_channel_id if config.setup else None
        )
        if channel is None:
            return "no log channel"
        text = f"Transcript of ticket #{ticket.number} ({ticket.subject})"
        await self._post(channel, c, ticket, files, text, unsure=unsure)
        return "posted"

    async def _send(self, c: Closing, ticket: Ticket, files: TranscriptFiles, unsure: bool) -> str:
        customer = await user_by_id(self.client, ticket.customer_id)
        if customer is None:
            return "no customer"
        if not files:
            return "no transcript"
        guild = self.client.get_guild(int(c.guild_id))
        where = f" on {guild.name}" if guild is not None else ""
        text = (
            f"Your ticket #{ticket.number} ({ticket.subject}){where} was closed."
            " Here is its transcript."
        )
        try:
            dm = customer.dm_channel or await customer.create_dm()
            await self._post(dm, c, ticket, files, text, unsure=unsure)
        except discord.Forbidden:
            log.info("customer %s takes no DMs; the rating is asked in the channel", customer.id)
            return "dms closed"
        return "sent"

    async def _ask(self, c: Closing, ticket: Ticket, sent: str, unsure: bool) -> str:
        customer = await user_by_id(self.client, ticket.customer_id)
        if customer is not None and sent != "dms closed":
            try:
                dm = customer.dm_channel or await customer.create_dm()
                if unsure and await self._asked_in(dm, c):
                    return "dm"
                await dm.send(
                    "How did we do? Rate your support from 1 (bad) to 5 (great).",
                    view=rating_buttons(ticket.id),
                )
                return "dm"
            except discord.Forbidden:
                log.info("customer %s takes no DMs; asking in the channel", customer.id)
        channel = await text_channel(self.client, c.channel_id)
        if channel is None:
            return "channel gone"
        if unsure and await self._asked_in(channel, c):
            return "channel"
        await channel.send(
            f"<@{ticket.customer_id}>, how did we do? Rate your support from 1 (bad) to 5"
            " (great) before this channel closes.",
            view=rating_buttons(ticket.id),
            allowed_mentions=discord.AllowedMentions(
                users=[discord.Object(int(ticket.customer_id))], everyone=False, roles=False
            ),
        )
        return "channel"

    async def _delete(self, c: Closing) -> str:
        if c.channel_id is None:
            return "no channel"
        try:
            await self.client.http.delete_channel(int(c.channel_id), reason="ticket closed")
        except discord.NotFound:
            return "already gone"  # deleted by hand, or before a restart: as good as deleted
        return "deleted"

    # Posting once

    async def _post(
        self,
        channel: discord.abc.Messageable,
        c: Closing,
        ticket: Ticket,
        files: TranscriptFiles,
        text: str,
        *,
        unsure: bool,
    ) -> None:
        """Post each part of the transcript that is not in ``channel`` already."""
        there: set[int] = set()
        if unsure:
            for message in await self._recent(channel, c.closed_at):
                part = marked_part(message, ticket.id)
                if part is not None:
                    there.add(part)
        count = len(files)
        for index, part_files in enumerate(files, start=1):
            if index in there:
                log.info("ticket %s: transcript part %s is already posted", ticket.id, index)
                continue
            await channel.send(
                text if count == 1 else f"{text} (part {index} of {count})",
                files=[
                    discord.File(io.BytesIO(data), name, description=marker(ticket, index, count))
                    for name, data in part_files
                ],
                allowed_mentions=render.NO_PINGS,
            )

    async def _asked_in(self, channel: discord.abc.Messageable, c: Closing) -> bool:
        return any(asks_rating(m, c.ticket_id) for m in await self._recent(channel, c.closed_at))

    async def _recent(
        self, channel: discord.abc.Messageable, since: datetime
    ) -> list[discord.Message]:
        """The bot's messages in ``channel`` since a little before ``since``."""
        me = self.client.user
        after = since - timedelta(minutes=1)
        return [
            m
            async for m in channel.history(limit=LOOK_BACK, after=after)
            if me is not None and m.author.id == me.id
        ]


def _describe(error: Exception) -> str:
    if isinstance(error, discord.HTTPException):
        return f"Discord answered {error.status} ({error.code}): {error.text}"
    return f"{type(error).__name__}: {error}"
