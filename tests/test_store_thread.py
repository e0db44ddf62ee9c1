"""The database's own thread, on a real SQLite file: units run there one at a time, in order;
a failing unit fails only its caller, a cancelled caller leaves its unit to finish, and close
lets what was asked before it finish and then refuses in words."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from thothbot.store import Store, Tx


async def test_a_failing_unit_fails_its_caller_alone_and_leaves_nothing(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "thoth.db")

    def fails(tx: Tx) -> None:
        tx.reserve_number("guild-1")
        raise LookupError("no such thing")

    try:
        with pytest.raises(LookupError, match="no such thing"):
            await store.run(fails)
        assert await store.run(lambda tx: tx.reserve_number("guild-1")) == 1  # rolled back
    finally:
        await store.close()


async def test_a_cancelled_caller_leaves_its_unit_to_finish(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "thoth.db")
    started, release = threading.Event(), threading.Event()

    def slow(tx: Tx) -> int:
        number = tx.reserve_number("guild-1")
        started.set()
        release.wait()
        return number

    try:
        caller = asyncio.create_task(store.run(slow))
        await asyncio.to_thread(started.wait)  # the unit is on the database thread now
        caller.cancel()
        release.set()
        assert await store.run(lambda tx: tx.reserve_number("guild-1")) == 2  # 1 was committed
        assert caller.cancelled()
    finally:
        await store.close()


async def test_close_lets_queued_units_finish_then_refuses_in_words(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "thoth.db")
    units = [store.run(lambda tx: tx.reserve_number("g")) for _ in range(5)]
    *numbers, _ = await asyncio.gather(*units, store.close())  # close asked for after the five
    assert numbers == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="the database is closed"):
        await store.run(lambda tx: tx.reserve_number("g"))
    reopened = await Store.open(tmp_path / "thoth.db")
    try:
        assert await reopened.run(lambda tx: tx.reserve_number("g")) == 6
    finally:
        await reopened.close()
