"""The retention loop: what the desk keeps only for a while is deleted every few minutes, in
whichever process runs (``thothbot run`` or ``thothbot ingress``; both at once is harmless,
deletes are idempotent). The periods and the pruning itself are ``service/retention.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from thothbot.napping import nap, utc_now
from thothbot.service.retention import Pruned, Pruner

log = logging.getLogger(__name__)

PRUNE_EVERY = 600.0  # seconds between passes


class Maintenance:
    """Deletes what is past its retention, now (``prune``) or every few minutes (``run``)."""

    def __init__(
        self,
        pruner: Pruner,
        *,
        clock: Callable[[], datetime] = utc_now,
        every: float = PRUNE_EVERY,
    ) -> None:
        self.pruner = pruner
        self.clock = clock
        self.every = every
        self._wake = asyncio.Event()  # never set: the loop only sleeps its period

    async def prune(self, now: datetime | None = None) -> Pruned:
        """Delete every expired row as of ``now`` (the clock by default)."""
        return await self.pruner.prune(now or self.clock())

    async def run(self) -> None:
        """Prune at start, then every ``every`` seconds, until cancelled; a failed pass is
        logged and tried again at the next one."""
        while True:
            try:
                pruned = await self.prune()
                if pruned:
                    log.info("retention: deleted %s", pruned)
            except Exception:
                log.exception("retention: pruning failed, trying again in %g s", self.every)
            now = self.clock()
            await nap(self._wake, now + timedelta(seconds=self.every), now, self.every)
