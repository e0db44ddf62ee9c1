"""A close's steps are independent: one destination failing holds back none of the others, and
it is retried until it works, once."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.e2e.desk import Live, live_desk
from thothbot.config import Config
from thothbot.core.errors import InvalidInput
from thothbot.sandbox import Sandbox


async def test_a_failing_log_channel_holds_back_nothing_and_is_retried(live: Live) -> None:
    w, sandbox = live.world, live.sandbox
    channel = await live.open_ticket()
    sandbox.fail_next("POST", rf"^/channels/{w.log}/messages$", status=403, count=1000)
    await live.slash(w.customer, "ticket close", channel=channel)
    await sandbox.wait_for(lambda: sandbox.channel(channel) is None)
    dms = sandbox.dm_messages(w.customer)
    assert [m["content"][:14] for m in dms] == ["Your ticket #1", "How did we do?"]
    assert live.messages(w.log) == []
    with sqlite3.connect(live.db_path) as db:
        logged, error = db.execute("SELECT logged, error FROM closings").fetchone()
    assert logged is None
    assert "403" in error

    sandbox.rest.failures.clear()  # an admin fixes the log channel's permissions
    live.clock.offset += timedelta(minutes=10)
    assert live.bot is not None
    live.bot.closings.wake.set()  # the clock jumped: look at the stored moments again
    await sandbox.wait_for(lambda: live.messages(w.log))
    with sqlite3.connect(live.db_path) as db:
        await sandbox.wait_for(
            lambda: db.execute("SELECT finished_at FROM closings").fetchone()[0] is not None
        )
    posts = [m["content"] for m in live.messages(w.log)]
    assert posts == ["Transcript of ticket #1 (Charged twice)"]
    assert len(sandbox.dm_messages(w.customer)) == 2  # nothing sent twice


def test_the_close_delay_comes_from_the_environment() -> None:
    assert Config.from_env({}).close_delay == 10.0
    assert Config.from_env({"THOTH_CLOSE_DELAY": " 0.5 "}).close_delay == 0.5
    for raw in ("soon", "-1", "nan", "90000"):
        with pytest.raises(InvalidInput, match=f"THOTH_CLOSE_DELAY must be .* not '{raw}'"):
            Config.from_env({"THOTH_CLOSE_DELAY": raw})


HOUR = 3600.0  # the loops' longest nap in this test: without a wake-up they would not look again


@pytest.fixture
async def patient(discord: Sandbox, tmp_path: Path) -> AsyncIterator[Live]:
    """The configured bot, whose background loops nap up to an hour unless woken."""
    async for desk in live_desk(discord, tmp_path, bot={"longest": HOUR}):
        yield desk


async def test_a_close_wakes_the_closings_loop_at_once(patient: Live) -> None:
    live, w, sandbox = patient, patient.world, patient.sandbox
    channel = await live.open_ticket()
    assert live.bot is not None
    # Nothing is left to close and nothing woke the loop: it naps, for an hour.
    await sandbox.wait_for(lambda: bot_naps(live))
    assert live.messages(w.log) == []

    await live.slash(w.customer, "ticket close", channel=channel)

    # Woken by the desk's notifier once the close is committed: the transcript is posted, and
    # the channel deleted when its stored moment comes.
    await sandbox.wait_for(lambda: live.messages(w.log))
    await sandbox.wait_for(lambda: sandbox.channel(channel) is None)
    posts = [m["content"] for m in live.messages(w.log)]
    assert posts == ["Transcript of ticket #1 (Charged twice)"]


def bot_naps(live: Live) -> bool:
    assert live.bot is not None
    return not live.bot.closings.wake.is_set()
