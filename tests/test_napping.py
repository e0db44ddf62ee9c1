from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.support import T0
from thothbot.napping import nap


async def test_a_nap_ends_at_its_moment_or_when_woken() -> None:
    wake = asyncio.Event()
    await asyncio.wait_for(nap(wake, T0 + timedelta(seconds=0.01), T0), 1)
    await asyncio.wait_for(nap(wake, T0 - timedelta(days=1), T0), 1)  # already due
    sleeper = asyncio.create_task(nap(wake, None, T0))
    # Began after the sleeper and ended: had the sleeper a moment, it would have ended too.
    await asyncio.wait_for(nap(asyncio.Event(), T0 + timedelta(seconds=0.01), T0), 1)
    assert not sleeper.done()
    wake.set()
    await asyncio.wait_for(sleeper, 1)


async def test_a_loop_cancelled_as_it_is_woken_still_ends() -> None:
    """The race that kept a bot from closing: stop and a wake-up in the same instant."""
    wake = asyncio.Event()

    async def loop() -> None:
        while True:
            wake.clear()
            await nap(wake, None, T0)

    for _ in range(50):
        task = asyncio.create_task(loop())
        await asyncio.sleep(0)
        wake.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)
