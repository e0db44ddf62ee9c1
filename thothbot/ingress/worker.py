"""The worker: pending events become tickets, oldest first, one lane per server.

Events are classified concurrently (the classifier bounds its calls), opened through
``Desk.open_ticket`` (so the server's rules run) in order of arrival per server, and marked
'done' (or 'failed', with the error, when the desk refuses one) several per transaction. It is
woken by each accepted event, and at start takes whatever a previous process left pending; a
ticket such an event may already have opened is found again by what it was opened with
(``_opened_by``), so it is never opened twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from aiohttp import web
from pydantic import ValidationError

from thothbot.core.classify import Classification, TicketText
from thothbot.core.errors import DomainError
from thothbot.core.ingress import IngressEventRow
from thothbot.core.models import TicketSource
from thothbot.core.settings import Classifier as ClassifierSettings
from thothbot.ingress.events import EVENTS, SupportTicketCreated, _path
from thothbot.ingress.metrics import Metrics
from thothbot.ingress.settings import IngressSettings
from thothbot.service import Desk
from thothbot.store import Database, Tx
from thothbot.store.group_commit import GroupCommit

log = logging.getLogger(__name__)

T = TypeVar("T")

WORK_BATCH = 100  # pending events the worker takes from the database at a time
MAX_ATTEMPTS = 3  # unexpected failures on one event (not the database's) before it is failed
STOP_GRACE = 5.0  # seconds the worker has on shutdown to finish the tickets it is opening
NO_SUBJECT = "(no subject)"


class Classifier(Protocol):
    """Urgency for a ticket under a server's classifier settings (``llm.UrgencyClassifier``)."""

    async def classify(
        self, ticket: TicketText, settings: ClassifierSettings | None = None
    ) -> Classification: ...


class Worker:
    """The worker's work: a part of ``Ingress``, which holds the state (and wakes it)."""

    desk: Desk
    store: Database
    settings: IngressSettings
    classifier: Classifier | None
    metrics: Metrics
    commits: GroupCommit
    _wake: asyncio.Event
    _stopping: bool
    _draining: asyncio.Lock
    _retry_at: float | None
    _resting: dict[str, float]
    _untried: set[str]
    _attempts: Counter[str]
    _jobs: set[asyncio.Task[Any]]

    async def process_pending(self) -> int:
        """Turn the pending events into tickets, oldest first; how many were finished.

        The worker runs this whenever it is woken. An event that fails for a passing reason
        (the database is busy) stays pending and is tried again ``retry_after`` seconds later,
        not in a loop now; an event the desk refuses is marked 'failed' with the reason.
        """
        loop = asyncio.get_running_loop()
        async with self._draining:
            finished = 0
            while not self._stopping:
                now = loop.time()
                resting = self._resting = {k: t for k, t in self._resting.items() if t > now}
                pending = await self.store.run(_pending(len(resting) + WORK_BATCH))
                rows = [row for row in pending if row.event_id not in resting]
                if not rows:
                    break
                done, left = await self._work_on(rows)
                finished += done
                resting.update(dict.fromkeys(left, loop.time() + self.settings.retry_after))
            self._retry_at = min(self._resting.values(), default=None)
            return finished

    async def _work_on(self, rows: list[IngressEventRow]) -> tuple[int, set[str]]:
        """Process pending events, oldest first: how many were finished, the ids of the rest."""
        ids = {row.event_id for row in rows}
        suspects = [row for row in rows if row.event_id not in self._untried]
        self._untried -= ids
        finished: list[_Finish] = []
        if suspects:
            # Tried before, or left by a process that may have stopped between opening the
            # ticket and marking the event: a ticket found is not opened again.
            opened = await self.store.run(lambda tx: [_opened_by(row)(tx) for row in suspects])
            found = [
                _Finish(row.event_id, "done", ticket_id)
                for row, ticket_id in zip(suspects, opened, strict=True)
                if ticket_id is not None
            ]
            for finish in found:
                self._attempts.pop(finish.event_id, None)
            if found and await self._mark(found):
                finished.extend(found)
            skip = {finish.event_id for finish in found}
            rows = [row for row in rows if row.event_id not in skip]
        lanes: dict[str, list[IngressEventRow]] = {}
        for row in rows:
            lanes.setdefault(row.guild_id, []).append(row)
        for lane in await asyncio.gather(*(self._lane(lane) for lane in lanes.values())):
            finished.extend(lane)
        return len(finished), ids - {finish.event_id for finish in finished}

    async def _lane(self, rows: list[IngressEventRow]) -> list[_Finish]:
        """One server's events in order of arrival: classified together, opened in turn, and
        marked several at a time (at the end, or before waiting for a classification)."""
        guild_id = rows[0].guild_id
        events = [_stored_event(row) for row in rows]
        jobs: list[asyncio.Task[str | None] | None] = [None] * len(rows)
        marked: list[_Finish] = []
        unmarked: list[_Finish] = []

        async def mark() -> None:
            if unmarked and await self._mark(unmarked):
                marked.extend(unmarked)
            unmarked.clear()

        try:
            if self.classifier is not None and any(not isinstance(e, str) for e in events):
                settings = (await self.desk.config(guild_id)).settings.classifier
                jobs = [
                    None if isinstance(e, str) else self._job(self._urgency(guild_id, e, settings))
                    for e in events
                ]
            for row, event, job in zip(rows, events, jobs, strict=True):
                if self._stopping:
                    break
                if isinstance(event, str):
                    log.warning("event %s cannot become a ticket: %s", row.event_id, event)
                    unmarked.append(_Finish(row.event_id, "failed", error=event))
                    continue
                urgency = None
                if job is not None:
                    if not job.done():
                        await mark()  # what is done so far should not wait for the classifier
                    await asyncio.wait({job})
                    if job.cancelled() or self._stopping:
                        break
                    urgency = job.result()
                finish = await self._open(row, event, urgency)
                if finish is not None:
                    unmarked.append(finish)
        except Exception:
            # The server's settings could not be read: its events stay pending.
            log.exception("events of server %s stay pending", guild_id)
        finally:
            for job in jobs:
                if job is not None:
                    job.cancel()
        await mark()
        return marked

    async def _mark(self, finishes: list[_Finish]) -> bool:
        """Record how processed events ended, in one transaction (shared with requests')."""
        try:
            await self.commits.run(_finishing(finishes))
        except Exception:
            # Their tickets are found again when they are next tried (``_opened_by``).
            log.exception(
                "%d processed events could not be marked: they stay pending", len(finishes)
            )
            return False
        self.metrics.failed += sum(1 for finish in finishes if finish.status == "failed")
        return True

    async def _open(
        self, row: IngressEventRow, event: SupportTicketCreated, urgency: str | None
    ) -> _Finish | None:
        """Open the event's ticket: how the event ends, or None when it stays pending."""
        try:
            ticket = await self.desk.open_ticket(
                row.guild_id,
                _customer(row),
                event.subject.strip() or NO_SUBJECT,  # a long one is cut by the desk
                row.received_at,
                body=event.body,
                source=TicketSource.API,
                ref=event.ticket_id,
                urgency=urgency,
            )
        except DomainError as error:
            log.warning("event %s refused by the desk: %s", row.event_id, error)
            return _Finish(row.event_id, "failed", error=str(error))
        except sqlite3.Error:
            # The database's trouble, not the event's: tried again later, however often.
            log.exception("event %s stays pending", row.event_id)
            return None
        except Exception as error:
            self._attempts[row.event_id] += 1
            attempts = self._attempts[row.event_id]
            if attempts < MAX_ATTEMPTS:
                log.exception("event %s stays pending (attempt %d)", row.event_id, attempts)
                return None
            log.exception("event %s failed %d times: giving up", row.event_id, attempts)
            del self._attempts[row.event_id]
            return _Finish(row.event_id, "failed", error=f"failed {attempts} times: {error!r}")
        self._attempts.pop(row.event_id, None)
        self.metrics.tickets_opened += 1
        return _Finish(row.event_id, "done", ticket.id)

    async def _urgency(
        self, guild_id: str, event: SupportTicketCreated, settings: ClassifierSettings
    ) -> str | None:
        """The event's urgency under the server's labels, or None without a classifier."""
        if self.classifier is None:
            return None
        ticket = TicketText(
            subject=event.subject.strip() or NO_SUBJECT,
            body=event.body,
            customer_tier=event.customer_tier,
            channel=event.channel,
        )
        try:
            result = await self.classifier.classify(ticket, settings)
        except Exception:
            log.exception("classifier failed on an event of server %s", guild_id)
            return None
        self.metrics.classified[result.source] += 1
        return result.label

    def _job(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A classification in the background, cancelled if the worker stops."""
        job = asyncio.create_task(work)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return job

    async def _work(self) -> None:
        """The worker: process pending events whenever woken (or a retry is due), until stopped."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            wait = None if self._retry_at is None else max(0.0, self._retry_at - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            if self._stopping:
                break
            self._wake.clear()
            try:
                await self.process_pending()
            except Exception:
                log.exception(
                    "the ingress worker failed: retrying in %g s", self.settings.retry_after
                )
                self._retry_at = loop.time() + self.settings.retry_after

    async def _working(self, app: web.Application) -> AsyncIterator[None]:
        """Run the worker while the app runs; on shutdown, let it finish the tickets it opens."""
        self._stopping = False
        self._wake.set()  # whatever is pending from before the start
        task = asyncio.create_task(self._work(), name="ingress-worker")
        yield
        self._stopping = True
        self._wake.set()
        for job in list(self._jobs):
            job.cancel()  # a classification saves nothing: done again after the restart
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True, slots=True)
class _Finish:
    """How a processed event ends: 'done' with its ticket, or 'failed' with the reason."""

    event_id: str
    status: Literal["done", "failed"]
    ticket_id: int | None = None
    error: str | None = None


def _stored_event(row: IngressEventRow) -> SupportTicketCreated | str:
    """The stored event to open a ticket from, or why it cannot become one."""
    if row.name not in EVENTS:
        return f"unknown event {row.name!r}"
    try:
        return SupportTicketCreated.model_validate(row.payload)
    except ValidationError as error:
        problems = "; ".join(f"{_path(e['loc'])}: {e['msg']}" for e in error.errors())
        return f"the stored event does not match {row.name}: {problems}"


def _pending(limit: int) -> Callable[[Tx], list[IngressEventRow]]:
    return lambda tx: tx.pending_ingress_events(limit)


def _finishing(finishes: list[_Finish]) -> Callable[[Tx], None]:
    """A unit marking processed events, in one transaction."""

    def unit(tx: Tx) -> None:
        for f in finishes:
            tx.finish_ingress_event(f.event_id, f.status, f.ticket_id, f.error)

    return unit


def _opened_by(row: IngressEventRow) -> Callable[[Tx], int | None]:
    """A unit finding the ticket ``row`` already opened, if a crash came before marking it."""

    def unit(tx: Tx) -> int | None:
        ref = row.payload.get("ticket_id")
        if not isinstance(ref, str):
            return None
        return tx.api_ticket(row.guild_id, _customer(row), ref, row.received_at)

    return unit


def _customer(row: IngressEventRow) -> str:
    # The sender stands for the customer: events carry no customer id of ours.
    return f"api:{row.key_id}"
