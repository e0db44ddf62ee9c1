"""One change notifier: after a commit the desk says what changed, and every background loop
that cares about it wakes (the outbox worker, the SLA checker, closed tickets' steps, the
ingress worker, the triage loop), whichever adapter made the change.

A loop asks for its wake-up once (``wake_on``), clears it before it reads what decides its
next moment and naps on it (``napping.nap``), so a change that comes while it works is not
lost. Nothing here touches the database: the notifier only carries "look again".

Other processes on the same database (``thothbot ingress`` beside ``thothbot run``, a
``thothbot keys`` command) commit too: ``follow`` asks the store every ``FOLLOW_EVERY``
seconds whether one did, and wakes every stored topic when so, so a ticket the ingress process
opened reaches #ops from the bot's process at once rather than at its loop's next minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum

log = logging.getLogger(__name__)

FOLLOW_EVERY = 0.1  # seconds between asking whether another process committed


class Topic(StrEnum):
    OUTBOX = "outbox"  # deliveries were put in the outbox
    HANDED = "handed"  # #ops deliveries were handed to this process's worker (``Handoff``)
    DEADLINES = "deadlines"  # an SLA deadline was stored (a ticket opened, a clock moved)
    CLOSINGS = "closings"  # a ticket was closed with steps left to do in Discord
    INGRESS = "ingress"  # an event was accepted and waits to become a ticket
    URGENCY = "urgency"  # a ticket opened without its urgency: the triage loop labels it


class Changes:
    """Who wakes on what: ``changed(topic)`` after a commit sets every wake-up on that topic."""

    def __init__(self) -> None:
        self._wakes: dict[Topic, list[asyncio.Event]] = {}

    def wake_on(self, *topics: Topic) -> asyncio.Event:
        """A wake-up set whenever one of ``topics`` changes; for one loop to nap on."""
        wake = asyncio.Event()
        for topic in topics:
            self._wakes.setdefault(topic, []).append(wake)
        return wake

    def changed(self, topic: Topic) -> None:
        for wake in self._wakes.get(topic, ()):
            wake.set()

    async def follow(
        self, changed_elsewhere: Callable[[], Awaitable[bool]], every: float = FOLLOW_EVERY
    ) -> None:
        """Wake every loop that reads the database whenever ``changed_elsewhere`` (the store's
        ``Database.changed_elsewhere``) says another process committed; asked every ``every``
        seconds, until cancelled. The loops read what changed themselves: a spurious wake-up
        costs one read each."""
        while True:
            await asyncio.sleep(every)
            try:
                elsewhere = await changed_elsewhere()
            except Exception:
                log.debug("could not ask whether another process committed", exc_info=True)
                continue
            if elsewhere:
                for topic in STORED:
                    self.changed(topic)


# What another process's commit may have changed: all but the in-process handoff.
STORED = tuple(topic for topic in Topic if topic is not Topic.HANDED)
