"""A ticket's life in its Discord channel, kept for the bot: openings (a number taken before
the channel exists), closings (transcripts, rating request, deletion, each step recorded once
done) and the #ops posts made about a ticket.

Each public method is one unit of work on the store, but for which ticket a channel is for,
read once and then remembered (``ticket_id_in``). The bot decides what to do in Discord; this
layer only keeps what it did, so a crash at any point is finished or undone after a
restart (bot/opening.py, bot/closing.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from thothbot.core.channels import Closing, Opening
from thothbot.core.models import Ticket
from thothbot.store import Database, Tx

# A transcript as kept: each message's files (name, bytes), in order.
TranscriptFiles = list[list[tuple[str, bytes]]]


# Ticket channels whose ticket is remembered in memory: a channel is made for one ticket and
# never serves another, so the entry stays true; the oldest go first past this many.
REMEMBERED = 10_000


class Channels:
    """Openings, closings, transcripts and #ops post records: what the bot keeps of its
    channels between a Discord call and the next."""

    def __init__(self, store: Database) -> None:
        self._store = store
        self._tickets: dict[str, int] = {}  # channel id -> its ticket's id, newest last

    # Which ticket a channel is for

    async def ticket_id_in(self, channel_id: str) -> int | None:
        """The id of the ticket this channel was made for (None if it is not a ticket's):
        read once, then remembered, so a command in a ticket's channel costs one unit of work
        (the command's own), not two."""
        ticket_id = self._tickets.get(channel_id)
        if ticket_id is None:
            ticket = await self._store.run(lambda tx: tx.ticket_by_channel(channel_id))
            if ticket is None:
                return None
            ticket_id = ticket.id
            self.note(channel_id, ticket_id)
        return ticket_id

    def note(self, channel_id: str, ticket_id: int) -> None:
        """Remember the ticket a channel was just made for (saved with it)."""
        self._tickets[channel_id] = ticket_id
        while len(self._tickets) > REMEMBERED:
            del self._tickets[next(iter(self._tickets))]

    # Openings

    async def openings(self, guild_id: str) -> list[Opening]:
        """The server's unfinished openings, oldest first (left by a crash, or under way)."""
        return await self._store.run(lambda tx: tx.openings(guild_id))

    async def opening(self, opening_id: int) -> Opening | None:
        return await self._store.run(lambda tx: tx.opening(opening_id))

    async def opening_done(self, opening_id: int) -> None:
        """The ticket is saved and its card posted: nothing is left to finish."""
        await self._store.run(lambda tx: tx.opening_done(opening_id))

    async def abandon_opening(self, opening: Opening) -> bool:
        """Forget an opening that will not become a ticket; whether its number was given back
        (it is not when a later ticket took the next one)."""
        return await self._store.run(lambda tx: tx.abandon_opening(opening))

    async def unused(self, channel_ids: Sequence[str]) -> set[str]:
        """Which of these channels no ticket uses."""
        return await self._store.run(
            lambda tx: {c for c in channel_ids if tx.ticket_by_channel(c) is None}
        )

    # Closings

    async def restart_closings(self, now: datetime) -> None:
        """After a restart every unfinished closing is worth a look at once."""
        await self._store.run(lambda tx: tx.closings_restart(now))

    async def closings_due(self, now: datetime) -> list[Closing]:
        return await self._store.run(lambda tx: tx.closings_due(now))

    async def next_closing_at(self) -> datetime | None:
        return await self._store.run(lambda tx: tx.next_closing_at())

    async def begin_closing(self, ticket_id: int, retry_at: datetime) -> Ticket | None:
        """Count an attempt before it acts (should it not end, the closing is due again at
        ``retry_at``) and return the closed ticket; None when it was removed since."""

        def unit(tx: Tx) -> Ticket | None:
            tx.begin_closing(ticket_id, retry_at)
            return tx.ticket(ticket_id)

        return await self._store.run(unit)

    async def step_done(self, ticket_id: int, step: str, outcome: str) -> None:
        """Record one step's outcome (``core.channels.CLOSING_STEPS``): it is not done again."""
        await self._store.run(lambda tx: tx.closing_step(ticket_id, step, outcome))

    async def save_transcript(
        self, ticket_id: int, parts: Sequence[Sequence[tuple[str, bytes]]], outcome: str
    ) -> None:
        """Keep the transcript read from the channel until the closing finishes, and record
        the read."""
        await self._store.run(lambda tx: tx.save_transcript(ticket_id, parts, outcome))

    async def transcript(self, ticket_id: int) -> TranscriptFiles:
        return await self._store.run(lambda tx: tx.transcript(ticket_id))

    async def finish_closing(self, ticket_id: int, at: datetime) -> None:
        """Nothing is left to do (or nothing can be: the ticket is gone)."""
        await self._store.run(lambda tx: tx.finish_closing(ticket_id, at))

    async def end_attempt(
        self, ticket_id: int, at: datetime, *, deleted: bool, next_at: datetime, error: str | None
    ) -> bool:
        """End an attempt: the closing is finished when every step is recorded and the channel
        is ``deleted``; otherwise it is due again at ``next_at`` (with ``error``, what failed).
        Whether it finished."""

        def unit(tx: Tx) -> bool:
            current = tx.closing(ticket_id)
            if current is None:
                raise LookupError(f"ticket {ticket_id} has no closing")
            steps = (current.read, current.logged, current.sent, current.asked)
            if deleted and all(outcome is not None for outcome in steps):
                tx.finish_closing(ticket_id, at)
                return True
            tx.closing_later(ticket_id, next_at, error)
            return False

        return await self._store.run(unit)

    # #ops posts

    async def ops_posts(self, ticket_id: int) -> list[tuple[str, str, str]]:
        """(channel id, message id, reason) of every #ops post about this ticket."""
        return await self._store.run(lambda tx: tx.ops_messages(ticket_id))
