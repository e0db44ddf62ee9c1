"""Time for background work: the clock, and sleeping until a stored moment or a wake-up."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

LONGEST = 60.0  # seconds; a safety net should a wake-up be missed or the clock jump


def utc_now() -> datetime:
    """The real clock; tests pass their own."""
    return datetime.now(UTC)


async def nap(
    wake: asyncio.Event, until: datetime | None, now: datetime, longest: float = LONGEST
) -> None:
    """Sleep until ``until`` (at most ``longest`` seconds), or until ``wake`` is set.

    Callers clear ``wake`` before they read what decides ``until``, so a wake-up that comes
    while they work is not lost. ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11
    ``wait_for`` can swallow a cancellation that lands as the event is set, and a loop that
    never ends keeps its bot from closing.
    """
    seconds = longest if until is None else min(longest, max(0.0, (until - now).total_seconds()))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
