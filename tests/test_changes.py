"""The change notifier over the real components: a ticket the ingress opens (over real HTTP,
on a real database file) wakes the SLA checker at once, not after its nap's cap."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from tests.support import services_on
from tests.test_ingress import G, _serve, eventually
from thothbot.bot.timers import SlaChecker
from thothbot.changes import Changes, Topic
from thothbot.core.models import SlaBreached
from thothbot.service import RecordingSink

HOUR = 3600.0  # the checker's cap in this test: without a wake-up it would not look again


async def test_a_ticket_opened_by_the_ingress_wakes_the_sla_checker(tmp_path: Path) -> None:
    async with _serve(tmp_path) as server:
        desk = server.desk
        opened_at = server.now[0]
        await desk.save_settings(G, json.dumps({"sla": {"first_response_minutes": 1}}), opened_at)
        # The checker's clock is past the ticket's 1-minute deadline; the ingress's is not.
        checker = SlaChecker(desk, lambda: opened_at + timedelta(minutes=2), longest=HOUR)
        looking = asyncio.create_task(checker.run())
        try:
            # Positive control: with no ticket the checker has nothing due and naps.
            await eventually(lambda: not checker.wake.is_set())
            assert isinstance(desk.sink, RecordingSink)
            assert not [e for e in desk.sink.effects if isinstance(e, SlaBreached)]

            assert (await server.event()).status == 202
            await server.settled()

            # Woken by the desk's notifier: it sees the deadline has passed and fires.
            await eventually(lambda: any(isinstance(e, SlaBreached) for e in desk.sink.effects))
        finally:
            looking.cancel()


# Other processes: another connection to the same file stands for one (SQLite cannot tell).


async def test_the_store_says_when_another_connection_committed(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    async with services_on(path) as here, services_on(path) as there:
        assert not await here.store.changed_elsewhere()  # the first call has nothing to compare
        await there.desk.save_rules(G, json.dumps([]))
        assert await here.store.changed_elsewhere()
        assert not await here.store.changed_elsewhere()  # said once
        await here.desk.save_rules(G, json.dumps([]))
        assert not await here.store.changed_elsewhere()  # its own commit is not another's


async def test_a_commit_of_another_process_wakes_the_loops_here(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    async with services_on(path) as here, services_on(path) as there:
        changes = Changes()
        wake = changes.wake_on(Topic.OUTBOX)
        handed = changes.wake_on(Topic.HANDED)
        asked = 0

        async def changed_elsewhere() -> bool:
            nonlocal asked
            asked += 1
            return await here.store.changed_elsewhere()

        following = asyncio.create_task(changes.follow(changed_elsewhere, every=0.01))
        try:
            await eventually(lambda: asked >= 2)
            await here.desk.save_rules(G, json.dumps([]))  # this process's own commit
            seen = asked
            await eventually(lambda: asked >= seen + 2)  # asked again since: still asleep
            assert not wake.is_set()

            await there.desk.save_rules(G, json.dumps([]))

            await eventually(wake.is_set)
            assert not handed.is_set()  # the handoff is this process's own, never stored
        finally:
            following.cancel()
