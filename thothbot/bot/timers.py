"""The bot's clocks: SLA breaches and closed channels' deletion, both driven by stored times.

Each loop sleeps until the earliest stored moment (never a scan of every ticket) and is woken
early when something sooner is stored; after a restart it picks up from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING

import discord

from thothbot.napping import nap

if TYPE_CHECKING:
    from thothbot.bot.client import ThothBot

log = logging.getLogger(__name__)


class Timers:
    def __init__(self, bot: ThothBot) -> None:
        self.bot = bot
        self._sla_wake = asyncio.Event()
        self._deletion_wake = asyncio.Event()

    def poke(self) -> None:
        """Something may be due sooner than the loops think (a new ticket, a moved clock)."""
        self._sla_wake.set()
        self._deletion_wake.set()

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

    async def delete_later(self, channel_id: str, due: datetime) -> None:
        await self.bot.desk.store.run(lambda tx: tx.schedule_channel_deletion(channel_id, due))
        self._deletion_wake.set()

    async def run_deletions(self) -> None:
        store = self.bot.desk.store
        while True:
            self._deletion_wake.clear()
            upcoming = None
            try:
                for channel_id, due in await store.run(lambda tx: tx.channel_deletions()):
                    if due > self.bot.now():
                        upcoming = due
                        break
                    await self._delete(channel_id)
            except Exception:
                log.exception("deleting closed ticket channels failed; retrying")
            await nap(self._deletion_wake, upcoming, self.bot.now())

    async def _delete(self, channel_id: str) -> None:
        # Already gone (deleted by hand, or before a restart) is as good as deleted.
        with contextlib.suppress(discord.NotFound):
            await self.bot.http.delete_channel(int(channel_id), reason="ticket closed")
        await self.bot.desk.store.run(lambda tx: tx.channel_deleted(channel_id))
