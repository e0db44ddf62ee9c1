"""The worker: pending events become tickets, oldest first, one lane per server.

Events are opened through the desk (so the server's rules run) in order of arrival per
server, ``OPEN_BATCH`` to a unit of work (one at a time when a batch fails), with their urgency
unknown (the triage loop labels them, ``thothbot.triage``), and marked 'done' (or 'failed',
with the error, when the desk refuses one) several per transaction. It wakes on the change
notifier when an accepted event is committed, and at start takes whatever a previous process
left pending; a ticket such an event may already have opened is found again by what it was
opened with (``Intake.opened_by``), so it is never opened twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import ValidationError

from thothbot.core.errors import DomainError
from thothbot.core.ingress import IngressEventRow
from thothbot.core.models import TicketSource
from thothbot.ingress.events import EVENTS, SupportTicketCreated, _path
from thothbot.ingress.metrics import Metrics
from thothbot.ingress.settings import IngressSettings
from thothbot.service import ApiTicket, Desk, Finish, Intake, StoreFault

log = logging.getLogger(__name__)

WORK_BATCH = 100  # pending events the worker takes from the database at a time
# Tickets opened in one unit of work: fewer commits and thread hops, while a request's commit
# waits behind at most one such unit.
OPEN_BATCH = 20
MAX_ATTEMPTS = 3  # unexpected failures on one event (not the database's) before it is failed
STOP_GRACE = 5.0  # seconds the worker has on shutdown to finish the tickets it is opening
NO_SUBJECT = "(no subject)"


class Worker:
    """The worker's work: a part of ``Ingress``, which holds the state (and wakes it)."""

    desk: Desk
    intake: Intake
    settings: IngressSettings
    metrics: Metrics
    _wake: asyncio.Event
    _stopping: bool
    _draining: asyncio.Lock
    _retry_at: float | None
    _resting: dict[str, float]
    _untried: set[str]
    _attempts: Counter[str]

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
                pending = await self.intake.pending(len(resting) + WORK_BATCH)
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
        finished: list[Finish] = []
        if suspects:
            # Tried before, or left by a process that may have stopped between opening the
            # ticket and marking the event: a ticket found is not opened again.
            opened = await self.intake.opened_by(suspects)
            found = [
                Finish(row.event_id, "done", ticket_id)
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

    async def _lane(self, rows: list[IngressEventRow]) -> list[Finish]:
        """One server's events in order of arrival: opened OPEN_BATCH at a time in one unit
        of work (one at a time when a batch fails, so only the failing event is held back),
        and marked together."""
        unmarked: list[Finish] = []
        for start in range(0, len(rows), OPEN_BATCH):
            if self._stopping:
                break
            batch: list[tuple[IngressEventRow, SupportTicketCreated]] = []
            for row in rows[start : start + OPEN_BATCH]:
                event = _stored_event(row)
                if isinstance(event, str):
                    log.warning("event %s cannot become a ticket: %s", row.event_id, event)
                    unmarked.append(Finish(row.event_id, "failed", error=event))
                else:
                    batch.append((row, event))
            try:
                opened = await self.desk.open_tickets([_api_ticket(*item) for item in batch])
            except Exception:
                for row, event in batch:
                    if self._stopping:
                        break
                    finish = await self._open(row, event)
                    if finish is not None:
                        unmarked.append(finish)
                continue
            for (row, _), ticket in zip(batch, opened, strict=True):
                self._attempts.pop(row.event_id, None)
                unmarked.append(Finish(row.event_id, "done", ticket.id))
            self.metrics.tickets_opened += len(opened)
        return unmarked if unmarked and await self._mark(unmarked) else []

    async def _mark(self, finishes: list[Finish]) -> bool:
        """Record how processed events ended, in one transaction (shared with requests')."""
        try:
            await self.intake.finish(finishes)
        except Exception:
            # Their tickets are found again when they are next tried (``Intake.opened_by``).
            log.exception(
                "%d processed events could not be marked: they stay pending", len(finishes)
            )
            return False
        self.metrics.failed += sum(1 for finish in finishes if finish.status == "failed")
        return True

    async def _open(self, row: IngressEventRow, event: SupportTicketCreated) -> Finish | None:
        """Open the event's ticket: how the event ends, or None when it stays pending."""
        new = _api_ticket(row, event)
        try:
            ticket = await self.desk.open_ticket(
                new.guild_id,
                new.customer_id,
                new.subject,
                new.at,
                body=new.body,
                source=TicketSource.API,
                ref=new.ref,
            )
        except DomainError as error:
            log.warning("event %s refused by the desk: %s", row.event_id, error)
            return Finish(row.event_id, "failed", error=str(error))
        except StoreFault:
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
            return Finish(row.event_id, "failed", error=f"failed {attempts} times: {error!r}")
        self._attempts.pop(row.event_id, None)
        self.metrics.tickets_opened += 1
        return Finish(row.event_id, "done", ticket.id)

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
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _api_ticket(row: IngressEventRow, event: SupportTicketCreated) -> ApiTicket:
    return ApiTicket(
        row.guild_id,
        row.customer_id,
        event.subject.strip() or NO_SUBJECT,  # a long one is cut by the desk
        row.received_at,
        event.body,
        event.ticket_id,
    )


def _stored_event(row: IngressEventRow) -> SupportTicketCreated | str:
    """The stored event to open a ticket from, or why it cannot become one."""
    if row.name not in EVENTS:
        return f"unknown event {row.name!r}"
    try:
        return SupportTicketCreated.model_validate(row.payload)
    except ValidationError as error:
        problems = "; ".join(f"{_path(e['loc'])}: {e['msg']}" for e in error.errors())
        return f"the stored event does not match {row.name}: {problems}"
