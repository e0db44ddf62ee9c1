"""The bot's clocks: SLA breaches and closed tickets' steps (transcripts, rating, deletion),
both driven by stored times.

Each loop sleeps until the earliest stored moment (never a scan of every ticket) and is woken
early by the desk's change notifier when something sooner is stored; after a restart it picks
up from the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from thothbot.changes import Topic
from thothbot.napping import LONGEST, nap

if TYPE_CHECKING:
    from thothbot.bot.closing import Closer
    from thothbot.service import Channels, Desk

log = logging.getLogger(__name__)


class SlaChecker:
    """Fires SLA breaches when their deadlines come: naps until the earliest stored deadline,
    and wakes early when the desk announces a new one (a ticket opened by any adapter)."""

    def __init__(
        self, desk: Desk, clock: Callable[[], datetime], *, longest: float = LONGEST
    ) -> None:
        self.desk = desk
        self.clock = clock
        self.longest = longest  # the nap's cap: a safety net should a wake-up be missed
        self.wake = desk.changes.wake_on(Topic.DEADLINES)

    async def run(self) -> None:
        desk = self.desk
        while True:
            self.wake.clear()
            try:
                now = self.clock()
                upcoming = await desk.next_deadline()
                if upcoming is not None and upcoming <= now:
                    await desk.process_due(now)
                    continue
            except Exception:
                log.exception("the SLA checker failed; retrying")
                upcoming = None
            await nap(self.wake, upcoming, self.clock(), self.longest)


class ClosingsLoop:
    """Works closed tickets' pending steps, each when it is due: naps until the earliest
    stored moment, and wakes early when the desk announces a close (``Topic.CLOSINGS``, on
    ``wake``). After a restart every unfinished closing is due at once."""

    def __init__(
        self,
        channels: Channels,
        closer: Closer,
        clock: Callable[[], datetime],
        wake: asyncio.Event,
        *,
        ready: Callable[[], Awaitable[None]],
        longest: float = LONGEST,
    ) -> None:
        """``ready``: waits until the bot is connected (the steps are done in Discord)."""
        self.channels = channels
        self.closer = closer
        self.clock = clock
        self.wake = wake
        self.ready = ready
        self.longest = longest

    async def run(self) -> None:
        await self.ready()
        await self.channels.restart_closings(self.clock())
        while True:
            self.wake.clear()
            upcoming = None
            try:
                for closing in await self.channels.closings_due(self.clock()):
                    await self.closer.work(closing)
                upcoming = await self.channels.next_closing_at()
            except Exception:
                log.exception("working closed tickets failed; retrying")
            await nap(self.wake, upcoming, self.clock(), self.longest)
