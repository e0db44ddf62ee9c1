"""Triage: the one place a ticket's urgency becomes known, for Discord and ingress tickets alike.

Nobody waits on the model: a ticket opens with what is known at once, and the desk announces
it (``Topic.URGENCY``). This loop wakes, reads the open tickets whose urgency is not known yet
from the database (so after a restart it finds those it had not finished), asks the
classifier about them, at most ``concurrency`` at a time, and records each label with
``Desk.set_urgency``, which runs the rules that depend on urgency then. A model that fails or
stalls leaves the decision to the keyword heuristic (inside ``llm.UrgencyClassifier``), and so
does a label the server does not know; a ticket the desk cannot label now (the database is
busy) is tried again ``retry_after`` seconds later, not in a loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from thothbot.changes import Topic
from thothbot.core.classify import Classification, Source, TicketText, heuristic
from thothbot.core.errors import DomainError, TicketNotFound
from thothbot.core.settings import Classifier as ClassifierSettings
from thothbot.napping import nap, utc_now
from thothbot.service import Desk, Unlabelled

log = logging.getLogger(__name__)

CONCURRENCY = 32  # tickets labelled at once (the classifier bounds its model calls to 4)
RETRY_AFTER = 5.0  # seconds before a ticket the desk could not label is tried again


class Classifier(Protocol):
    """Urgency for a ticket under a server's classifier settings (``llm.UrgencyClassifier``)."""

    async def classify(
        self, ticket: TicketText, settings: ClassifierSettings | None = None
    ) -> Classification: ...


class Triage:
    """Labels tickets opened without their urgency, whenever the desk says one opened."""

    def __init__(
        self,
        desk: Desk,
        classifier: Classifier,
        *,
        concurrency: int = CONCURRENCY,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.desk = desk
        self.classifier = classifier
        self.concurrency = concurrency
        self.retry_after = retry_after
        self.clock = clock
        # Labels recorded since start, by who decided (``/metrics``).
        self.classified: Counter[str] = Counter(dict.fromkeys(Source, 0))
        self._wake = desk.changes.wake_on(Topic.URGENCY)
        self._labelling: dict[int, asyncio.Task[None]] = {}  # tickets being labelled now
        self._full = False  # the last read filled the room: more may wait for it
        self._resting: dict[int, datetime] = {}  # tickets the desk could not label: when to retry

    async def run(self) -> None:
        """Label what is waiting (what a previous run left first), then again whenever a
        ticket opens without its urgency, a label leaves room for one that waited, or a retry
        is due; until cancelled, which cancels the labels in flight (found again later)."""
        try:
            while True:
                self._wake.clear()
                try:
                    await self._take_waiting()
                except Exception:
                    # The database did not answer: what waits is read again later.
                    log.exception("triage failed: retrying in %g s", self.retry_after)
                    await asyncio.sleep(self.retry_after)
                    continue
                await nap(self._wake, min(self._resting.values(), default=None), self.clock())
        finally:
            for task in self._labelling.values():
                task.cancel()

    async def _take_waiting(self) -> None:
        """Start labelling the oldest tickets waiting, as many as there is room for."""
        room = self.concurrency - len(self._labelling)
        if room <= 0:
            return
        now = self.clock()
        self._resting = {k: at for k, at in self._resting.items() if at > now}
        skip = self._labelling.keys() | self._resting.keys()
        found = await self.desk.unlabelled(room + len(skip))
        waiting = [t for t in found if t.ticket_id not in skip]
        self._full = len(waiting) >= room
        for ticket in waiting[:room]:
            task = asyncio.create_task(self._label(ticket), name=f"triage-{ticket.ticket_id}")
            self._labelling[ticket.ticket_id] = task
            task.add_done_callback(functools.partial(self._labelled, ticket.ticket_id))

    def _labelled(self, ticket_id: int, task: asyncio.Task[None]) -> None:
        del self._labelling[ticket_id]
        if self._full:
            self._wake.set()  # room for the next that waited

    async def _label(self, ticket: Unlabelled) -> None:
        """Classify one ticket and record its label; on a failure, rest it for a while."""
        try:
            result = await self.classifier.classify(ticket.text, ticket.settings)
            try:
                await self.desk.set_urgency(ticket.ticket_id, result.label, self.clock())
            except TicketNotFound:
                return  # removed since it was read (a Discord channel that failed)
            except DomainError:
                # A label this server does not have: the heuristic picks one of its own.
                log.warning("ticket %s: label outside the server's labels", ticket.ticket_id)
                result = heuristic(ticket.text, ticket.settings.labels)
                await self.desk.set_urgency(ticket.ticket_id, result.label, self.clock())
        except Exception:
            log.exception("ticket %s stays unlabelled for now", ticket.ticket_id)
            self._resting[ticket.ticket_id] = self.clock() + timedelta(seconds=self.retry_after)
            return
        self.classified[result.source] += 1
        log.info(
            "ticket %s of server %s: urgency %s (%s)",
            ticket.ticket_id,
            ticket.guild_id,
            result.label,
            result.source.value,
            extra={"ticket_id": ticket.ticket_id, "guild_id": ticket.guild_id},
        )
