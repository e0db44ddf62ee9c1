"""The bot's clocks: SLA breaches and closed tickets' steps (transcripts, rating, deletion),
both driven by stored times.

Each loop sleeps until the earliest stored moment (never a scan of every ticket) and is woken
early when something sooner is stored; after a restart it picks up from the database.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from thothbot.napping import nap

if TYPE_CHECKING:
    from thothbot.bot.client import ThothBot

log = logging.getLogger(__name__)


class Timers:
    def __init__(self, bot: ThothBot) -> None:
        self.bot = bot
        self._sla_wake = asyncio.Event()
        self._closing_wake = asyncio.Event()

    def poke(self) -> None:
        """Something may be due sooner than the loops think (a new ticket, a moved clock)."""
        self._sla_wake.set()
        self._closing_wake.set()

    async def run_sla(self) -> None:
        desk = self.bot.desk
        while True:
            self._sla_wake.clear()
            try:
                now = self.bot.now()
                upcoming = await desk.next_deadline()
                if upcoming is not None and upcoming <= now:
                    await desk.process_due(now)
                    continue
            except Exception:
                log.exception("the SLA checker failed; retrying")
                upcoming = None
            await nap(self._sla_wake, upcoming, self.bot.now())

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
