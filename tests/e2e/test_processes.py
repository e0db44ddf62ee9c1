"""Two processes on one database: what one commits, the other acts on at once.

`thothbot run` runs in its own process against the sandbox; this test's process opens tickets
on the same database file as `thothbot ingress` (or any other process) would. The bot's
delivery worker naps up to a minute between reads when nothing in its own process wakes it;
the bot follows other processes' commits (``Changes.follow``), so the escalation reaches #ops
in well under that.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.desk import message_text
from tests.e2e.test_crash_tickets import crashable
from tests.support import services_on
from thothbot.application import build_services
from thothbot.core.models import TicketSource
from thothbot.napping import LONGEST
from thothbot.sandbox import Sandbox
from thothbot.store import Store

ESCALATE_ALL = [{"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]}]
SOON = 10.0  # seconds: far below the nap of LONGEST a missed wake-up would cost

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")


async def open_elsewhere(db_path: Path, guild: str, subject: str, ref: str) -> None:
    """Open an API ticket from this process, as the ingress's worker would from its own: its
    escalation saved in the outbox for the bot's delivery worker."""
    store = await Store.open(db_path)
    try:
        await build_services(store).desk.open_ticket(
            guild, "customer-1", subject, datetime.now(UTC), source=TicketSource.API, ref=ref
        )
    finally:
        await store.close()


async def test_an_escalation_saved_by_another_process_reaches_ops_at_once(
    discord: Sandbox, tmp_path: Path
) -> None:
    assert SOON < LONGEST / 2
    desk = await crashable(discord, tmp_path, LOG_LEVEL="INFO")
    guild, ops = desk.world.guild, desk.world.ops
    async with services_on(desk.db_path) as services:
        await services.desk.save_rules(guild, json.dumps(ESCALATE_ALL))
    await open_elsewhere(desk.db_path, guild, "Waiting before the start", "EXT-1")

    def posted(subject: str) -> bool:
        return any(subject in message_text(m) for m in discord.messages(ops))

    async with desk.running():
        # Positive signal that the delivery worker made its first read and now naps.
        await discord.wait_for(lambda: posted("Waiting before the start"), timeout=60)

        began = asyncio.get_running_loop().time()
        await open_elsewhere(desk.db_path, guild, "Checkout is down", "EXT-2")
        await discord.wait_for(lambda: posted("Checkout is down"), timeout=SOON)
        took = asyncio.get_running_loop().time() - began

    assert took < SOON
    assert [posted("Waiting before the start"), posted("Checkout is down")] == [True, True]
