"""The outbox worker: escalations to #ops (through the bot or a channel webhook) and fan-out.

Deliveries are rows the Desk saved with the escalation itself. This worker sends the due ones,
oldest first, and records each outcome: sent, retried later with backoff (honouring 429
Retry-After, retrying 5xx and timeouts) or given up. A process killed at any moment loses
none: what was not recorded as sent is sent again after a restart, and a repeat to the bot's
#ops channel carries the same nonce, which Discord answers with the first message instead of
posting a second. Channel webhooks take about 30 posts a minute, so each has a limiter, and a
burst above it becomes one summary post.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

import aiohttp

from thothbot.core import delivery
from thothbot.core.delivery import OpsPost
from thothbot.core.errors import TicketNotFound
from thothbot.core.models import Ticket
from thothbot.keys import signature
from thothbot.napping import nap, utc_now
from thothbot.service import Desk
from thothbot.store import DeliveryRow, Tx

log = logging.getLogger(__name__)

BACKOFF = (2.0, 5.0, 15.0, 60.0, 300.0, 900.0)  # seconds, by attempt; the last one repeats
MAX_ATTEMPTS = 20  # about four hours of tries
NO_BOT_WAIT = timedelta(seconds=30)  # ops posts wait for a bot to run
BOT_CONNECTING_WAIT = timedelta(seconds=1)  # or to finish connecting
MAX_LANES = 8  # destinations delivered to at once
OUTCOMES = ("sent", "summarized", "retried", "failed")


class Later(Exception):
    """The destination cannot take it now; try again (after ``after`` seconds, if known)."""

    def __init__(self, message: str, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


class Refused(Exception):
    """The destination refused it for good (a deleted webhook, a 4xx): give up."""


class OpsChannel(Protocol):
    """The bot's side: post an escalation in the server's ops channel with a Claim button."""

    @property
    def ready(self) -> bool: ...

    async def post(self, ticket: Ticket, post: OpsPost, *, reason: str, nonce: str) -> str: ...


class Deliveries:
    """Sends what the outbox holds; ``run`` until cancelled, ``wake`` when something is due."""

    def __init__(
        self,
        desk: Desk,
        *,
        ops: OpsChannel | None = None,
        clock: Callable[[], datetime] = utc_now,
        timeout: float = 10.0,
    ) -> None:
        self.desk = desk
        self.store = desk.store
        self.ops = ops
        self.clock = clock
        self.timeout = timeout
        self.outcomes: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
        self._wake = asyncio.Event()
        self._lanes = asyncio.Semaphore(MAX_LANES)
        self._session: aiohttp.ClientSession | None = None
        desk.on_outbox = self.wake

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                try:
                    await self.send_due()
                    upcoming = await self.store.run(lambda tx: tx.next_delivery_at())
                except Exception:
                    log.exception("the delivery worker failed; retrying")
                    upcoming = None
                await nap(self._wake, upcoming, self.clock())
        finally:
            if self._session is not None:
                await self._session.close()

    async def send_due(self) -> int:
        """Send every delivery due now; how many were handled."""
        handled = 0
        while True:
            due = await self.store.run(partial(Tx.due_deliveries, now=self.clock()))
            if not due:
                return handled
            # One lane per server and destination, in order within it, lanes side by side:
            # a destination that times out does not hold up the others.
            lanes: dict[tuple[str, str], list[DeliveryRow]] = {}
            for row in due:
                lanes.setdefault((row.guild_id, row.destination), []).append(row)
            await asyncio.gather(*(self._lane(rows) for rows in lanes.values()))
            handled += len(due)

    async def _lane(self, rows: Sequence[DeliveryRow]) -> None:
        async with self._lanes:
            for n, row in enumerate(rows):
                down_until = await self._deliver(row)
                if down_until is not None:
                    # The destination is down: the rest of its lane waits with the first, as
                    # it would have failed the same way (not counted as tries).
                    rest = [r.id for r in rows[n + 1 :]]
                    if rest:
                        await self.store.run(partial(Tx.postpone, ids=rest, until=down_until))
                    return

    async def pending(self) -> int:
        counts = await self.store.run(lambda tx: tx.delivery_counts())
        return counts.get("pending", 0)

    # One delivery

    async def _deliver(self, row: DeliveryRow) -> datetime | None:
        """Send one delivery and record the outcome; when the destination could not take it
        for now, the moment to try it again."""
        destination = await self._destination(row)
        if destination is None:
            await self._failed(row, "its destination is no longer in the settings", permanent=True)
            return None
        try:
            ticket = await self.desk.ticket(row.ticket_id)
        except TicketNotFound:
            await self._failed(row, "the ticket no longer exists", permanent=True)
            return None
        try:
            if destination["kind"] == "discord_webhook":
                await self._to_webhook(row, destination, ticket)
                return None
            if destination["kind"] == "ops":
                message_id = await self._to_ops(row, ticket)
            else:
                message_id = await self._to_endpoint(row, destination, ticket)
        except Later as later:
            return await self._failed(row, str(later), after=later.after)
        except Refused as refused:
            await self._failed(row, str(refused), permanent=True)
        except (TimeoutError, aiohttp.ClientError) as error:
            return await self._failed(row, f"{type(error).__name__}: {error}")
        except Exception as error:  # a bug or bad data must not hold up every later delivery
            log.exception("delivery %s failed unexpectedly", row.id)
            await self._failed(row, f"{type(error).__name__}: {error}")
        else:
            if message_id is not None:
                await self._sent([row.id], message_id)
        return None

    async def _destination(self, row: DeliveryRow) -> dict[str, Any] | None:
        """Where a delivery goes, its URL and secret looked up (unsealed) in the server's
        settings now: the outbox row only names the destination."""
        ref = json.loads(row.destination)
        if ref.get("kind") == delivery.OPS:
            return dict(ref)
        config = await self.desk.config(row.guild_id)
        return delivery.find_destination(config.settings, ref)

    async def render(self, ticket: Ticket, reason: str) -> OpsPost:
        """The #ops post for an escalated ticket, as it stands now."""
        config = await self.desk.config(ticket.guild_id)
        source = await self.store.run(lambda tx: tx.source_event(ticket))
        type_ = config.settings.types.get(ticket.type_id) if ticket.type_id else None
        return delivery.ops_post(
            ticket,
            config.settings,
            reason,
            event_name=source[0] if source else None,
            payload=source[1] if source else None,
            claimed_by=ticket.claimed_by,
            type_label=type_.label if type_ else None,
            link=f"<#{ticket.channel_id}>" if ticket.channel_id else None,
        )

    async def _to_ops(self, row: DeliveryRow, ticket: Ticket) -> str | None:
        if self.ops is None or not self.ops.ready:
            # Not an attempt: the bot is not running (the ingress alone) or not connected yet.
            retry = self.clock() + (NO_BOT_WAIT if self.ops is None else BOT_CONNECTING_WAIT)
            await self.store.run(lambda tx: tx.postpone([row.id], retry))
            return None
        post = await self.render(ticket, row.reason)
        return await self.ops.post(ticket, post, reason=row.reason, nonce=nonce(row.id))

    async def _to_endpoint(
        self, row: DeliveryRow, destination: dict[str, Any], ticket: Ticket
    ) -> str:
        """A generic HTTP endpoint, signed as Standard Webhooks; its webhook-id stays the same
        on every retry, so the receiver can drop repeats."""
        body = json.dumps(delivery.webhook_event(ticket, row.reason, self.clock())).encode()
        message_id = f"msg_thoth_{row.id}"
        timestamp = str(int(self.clock().timestamp()))
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": signature(destination["secret"], message_id, timestamp, body),
        }
        await self._http(destination["url"], body, headers)
        return message_id

    async def _to_webhook(
        self, row: DeliveryRow, destination: dict[str, Any], ticket: Ticket
    ) -> None:
        """A Discord channel webhook: within its rate limit one post each, else a summary."""
        now = self.clock()
        key = row.destination
        sent, waiting = await self.store.run(
            lambda tx: (tx.sent_since(key, now - delivery.WINDOW), tx.waiting_deliveries(key))
        )
        if row.id not in {w.id for w in waiting}:
            return  # folded into a summary earlier in this batch
        step, until = delivery.plan(sent, len(waiting), now)
        if step == "wait":
            assert until is not None
            await self.store.run(lambda tx: tx.postpone([w.id for w in waiting], until))
            return
        if step == "send":
            post = await self.render(ticket, row.reason)
            message_id = await self._webhook(destination["url"], post.body())
            await self._sent([row.id], message_id)
            return
        tickets = [await self.desk.ticket(w.ticket_id) for w in waiting]
        message_id = await self._webhook(
            destination["url"],
            {"embeds": [delivery.summary(tickets).to_dict()], "allowed_mentions": {"parse": []}},
        )
        await self._sent([w.id for w in waiting], message_id, summary=True)

    async def _webhook(self, url: str, body: dict[str, Any]) -> str:
        answer = await self._http(
            url + ("&" if "?" in url else "?") + "wait=true",
            json.dumps(body).encode(),
            {"content-type": "application/json"},
        )
        return str(answer.get("id", ""))

    async def _http(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._session.post(url, data=body, headers=headers) as response:
            text = await response.text()
            if response.status == 429:
                raise Later("429 Too Many Requests", _retry_after(response.headers, text))
            if response.status >= 500:
                raise Later(f"{response.status} from the destination")
            if response.status >= 400:
                raise Refused(f"{response.status}: {text[:200]}")
            try:
                answer = json.loads(text) if text else {}
            except ValueError:
                answer = {}
            return answer if isinstance(answer, dict) else {}

    # Outcomes

    async def _sent(self, ids: Sequence[int], message_id: str, *, summary: bool = False) -> None:
        """Record a post; a summary stands for all ``ids``: the first counts as the one post
        sent (for the rate limit), the rest as summarized, in one transaction."""
        at = self.clock()
        first, *rest = ids

        def unit(tx: Tx) -> None:
            tx.delivered([first], at, message_id)
            tx.delivered(rest, at, message_id, "summarized")

        await self.store.run(unit)
        self.outcomes["sent"] += 1
        self.outcomes["summarized"] += len(rest)

    async def _failed(
        self, row: DeliveryRow, error: str, *, after: float | None = None, permanent: bool = False
    ) -> datetime | None:
        attempt = row.attempts + 1
        retry_at = None
        if not permanent and attempt < MAX_ATTEMPTS:
            wait = BACKOFF[min(attempt, len(BACKOFF)) - 1] if after is None else max(after, 1.0)
            retry_at = self.clock() + timedelta(seconds=wait)
        log.warning(
            "delivery %s of ticket %s failed (try %s): %s%s",
            row.id, row.ticket_id, attempt, error, "" if retry_at else "; giving up",
        )  # fmt: skip
        await self.store.run(lambda tx: tx.delivery_failed(row.id, error, retry_at))
        self.outcomes["retried" if retry_at else "failed"] += 1
        return retry_at


def nonce(delivery_id: int) -> str:
    """The same for every try of one delivery (Discord allows 25 characters)."""
    return f"thoth-d{delivery_id}"


def _retry_after(headers: Any, text: str) -> float | None:
    with contextlib.suppress(ValueError, TypeError):
        return float(headers.get("Retry-After"))
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        return float(json.loads(text)["retry_after"])
    return None
