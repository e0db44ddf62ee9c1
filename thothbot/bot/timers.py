"""The bot's clocks: SLA breaches and closed tickets' steps (transcripts, rating, deletion),
both driven by stored times.

Each loop sleeps until the earliest stored moment (never a scan of every ticket) and is woken
early when something sooner is stored; after a restart it picks up from the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from thothbot.changes import Topic
from thothbot.napping import LONGEST, nap

if TYPE_CHECKING:
    from thothbot.bot.client import ThothBot
    from thothbot.service import Desk

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


class Timers:
    def __init__(self, bot: ThothBot) -> None:
        self.bot = bot
        self.sla = SlaChecker(bot.desk, bot.now)
        self._closing_wake = asyncio.Event()

    def poke(self) -> None:
        """Something may be due sooner than the loops think (a new ticket, a moved clock)."""
        self.sla.wake.set()
        self._closing_wake.set()

    async def run_sla(self) -> None:
        await self.sla.run()

    async def run_closings(self) -> None:
        """Work closed tickets' pending steps, each when it is due (after a restart: at once)."""
        await self.bot.wait_until_ready()
        store = self.bot.desk.store
        await store.run(lambda tx: tx.closings_restart(self.bot.now()))
        while True:
            self._closing_wake.clear()
            upcoming = None
            try:
                for closing in await store.run(lambda tx: tx.closings_due(self.bot.now())):
                    await self.bot.closer.work(closing)
                upcoming = await store.run(lambda tx: tx.next_closing_at())
            except Exception:
                log.exception("working closed tickets failed; retrying")
            await nap(self._closing_wake, upcoming, self.bot.now())
