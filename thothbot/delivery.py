"""The outbox worker: escalations to #ops (through the bot or a channel webhook) and fan-out.

Deliveries are rows the Desk saved with the escalation itself. This worker sends the due ones,
oldest first, and records each outcome: sent, retried later with backoff (honouring 429
Retry-After; every other answer but 2xx is retried too, as Standard Webhooks asks, redirects
included, which are never followed) or given up. A destination answering 410 Gone is disabled
until its server saves its settings again, and the server's admins are told in #ops.

Nothing lost, nothing doubled: a process killed at any moment loses none, since what was not
recorded as sent is sent again after a restart. Before each post to Discord (the bot's #ops
channel or a channel webhook) the worker commits an "attempting" mark with the post's marker,
which the post carries in its embed footer; a row found still marked was maybe accepted, so
the worker reads the channel's recent messages for that marker before posting again (Discord
forgets a nonce after minutes). In the bot's process the desk commits that mark itself for an
#ops post, in the unit that escalates, and hands the row over (``service.outbox.Handoff``): the
worker posts it without reading it again and records the outcome in one unit. An http
destination gets the same body and ``webhook-id`` on every try, so the receiver drops repeats.
Channel webhooks take about 30 posts a minute, so each has a limiter, and a burst above it
becomes one summary post. Every address is checked by the outbound guard
(``thothbot/outbound.py``) when the connection is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp

from thothbot.changes import Topic
from thothbot.core import delivery
from thothbot.core.delivery import DeliveryRow, OpsPost
from thothbot.core.destinations import (
    BUILT_IN,
    Addressed,
    DeliveryOutcome,
    DeliveryStatus,
    Destination,
    DestinationKind,
    DiscordWebhook,
    HttpEndpoint,
    Ops,
    OpsNotice,
    OutboxRef,
)
from thothbot.core.errors import TicketNotFound
from thothbot.core.models import Ticket
from thothbot.keys import signature
from thothbot.napping import nap, utc_now
from thothbot.outbound import Guard, OutboundRefused
from thothbot.service import Desk, Escalation, GuildConfig
from thothbot.service.outbox import Handoff, OpsMessage, Outbox, Rerouted

log = logging.getLogger(__name__)

BACKOFF = (2.0, 5.0, 15.0, 60.0, 300.0, 900.0)  # seconds, by attempt; the last one repeats
MAX_ATTEMPTS = 20  # about four hours of tries
NO_BOT_WAIT = timedelta(seconds=30)  # ops posts wait for a bot to run
BOT_CONNECTING_WAIT = timedelta(seconds=1)  # or to finish connecting
DUE_BATCH = 100  # outbox rows read at once
MAX_LANES = 8  # destinations delivered to at once
OUTCOMES = tuple(DeliveryOutcome)
BODY_CAP = 64 * 1024  # bytes of an answer read; the rest is dropped with the connection
LOOK_BACK = timedelta(minutes=2)  # before a maybe-accepted try, where its post is looked for
NOTICE = OutboxRef(DestinationKind.OPS_NOTICE).to_json()  # an outbox row for the admins
OPS = OutboxRef(DestinationKind.OPS).to_json()  # an outbox row for the bot's #ops channel


class Later(Exception):
    """The destination cannot take it now; try again (after ``after`` seconds, if known)."""

    def __init__(self, message: str, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


class Refused(Exception):
    """The destination refused it for good (Discord found the post malformed): give up."""


class Gone(Exception):
    """The destination is gone (410, or a deleted Discord webhook): disable it, tell admins."""


class OpsChannel(Protocol):
    """The bot's side: post an escalation in the server's ops channel with a Claim button,
    find a post again by its marker, and tell the server's admins something."""

    @property
    def ready(self) -> bool: ...

    async def post(
        self, ticket: Ticket, post: OpsPost, *, reason: str, nonce: str, channel_id: str | None
    ) -> tuple[str, str]:
        """Post in ``channel_id``, the server's #ops as the worker read it (None: not set up):
        (channel id, message id) of the post, which the worker records with the delivery."""
        ...

    async def find(
        self, guild_id: str, channel_id: str | None, marker: str, since: datetime,
        *, webhook_id: str | None = None,
    ) -> tuple[str, str] | None:  # fmt: skip
        """(channel id, message id) of a recent post carrying ``marker`` in the channel (None:
        the server's #ops), by the bot, or by the webhook ``webhook_id``; None if not there or
        the bot cannot read the channel."""
        ...

    async def notice(self, guild_id: str, text: str, *, nonce: str) -> None: ...


class Deliveries:
    """Sends what the outbox holds; ``run`` until cancelled, ``wake`` when something is due."""

    def __init__(
        self,
        desk: Desk,
        outbox: Outbox,
        *,
        ops: OpsChannel | None = None,
        handoff: Handoff | None = None,
        clock: Callable[[], datetime] = utc_now,
        timeout: float = 10.0,
        guard: Guard | None = None,
    ) -> None:
        """``handoff``: the desk's #ops posts, handed over with what they need (with ``ops``
        only: the bot posts them); the worker opens it once it runs."""
        self.desk = desk
        self.outbox = outbox
        self.ops = ops
        self._handoff = handoff if ops is not None else None
        self.clock = clock
        self.timeout = timeout
        self._guard = guard
        self.outcomes: Counter[DeliveryOutcome] = Counter(dict.fromkeys(OUTCOMES, 0))
        # Woken by the desk's notifier once escalations are committed to the outbox or handed
        # over; ``_look`` tells the first from the second (only then is the outbox read).
        self._wake = desk.changes.wake_on(Topic.OUTBOX, Topic.HANDED)
        self._look = desk.changes.wake_on(Topic.OUTBOX)
        # When the next delivery is due, as the last outcome recorded said (None: unknown).
        self._next_due: tuple[datetime | None] | None = None
        self._lanes = asyncio.Semaphore(MAX_LANES)
        self._session: aiohttp.ClientSession | None = None

    @property
    def guard(self) -> Guard:
        """The desk's outbound guard (THOTH_OUTBOUND_ALLOW), else the strict one."""
        if self._guard is None:
            self._guard = self.desk.outbound or Guard()
        return self._guard

    def wake(self) -> None:
        self._look.set()
        self._wake.set()

    async def run(self) -> None:
        look = True  # at the start: what is due, and what a previous run held
        try:
            while True:
                self._wake.clear()
                try:
                    upcoming = await self._round(look)
                    failed = False
                except Exception:
                    log.exception("the delivery worker failed; retrying")
                    upcoming, failed = None, True
                await nap(self._wake, upcoming, self.clock())
                # Woken by handed rows alone, the outbox need not be read: their outcomes said
                # when the next delivery is due. A moment that came, or a save, reads it.
                look = failed or self._look.is_set() or not self._wake.is_set()
        finally:
            if self._handoff is not None:
                self._handoff.closed()
            if self._session is not None:
                await self._session.close()

    async def _round(self, look: bool) -> datetime | None:
        """One wake-up's work: what was handed over and (``look``) what is due; when the next
        delivery is due."""
        if not look:
            self._next_due = None
            if await self._send_handed() and self._next_due is not None:
                return self._next_due[0]
        await self.send_due()
        return await self.outbox.next_due()

    async def send_due(self) -> int:
        """Send what the desk handed over, then every delivery due now; how many were handled."""
        self._look.clear()
        handled = await self._send_handed()
        while True:
            now = self.clock()
            # The first read releases what a stopped worker held; then the desk may hold more.
            release = self._handoff is not None and not self._handoff.open
            due = await self.outbox.due(now, DUE_BATCH, release=release)
            if release:
                assert self._handoff is not None
                self._handoff.opened()
            if not due:
                return handled
            await self._lanes_of([(row, None) for row in due])
            handled += len(due)
            if len(due) < DUE_BATCH and not self._look.is_set():
                # All that was due is handled, and nothing was saved since (a save wakes us).
                return handled

    async def _send_handed(self) -> int:
        """Post what the desk handed over (rows held for this worker, read with it)."""
        handed = self._handoff.take() if self._handoff is not None else []
        await self._lanes_of([(h.row, h.view) for h in handed])
        return len(handed)

    async def _lanes_of(self, rows: Sequence[tuple[DeliveryRow, Escalation | None]]) -> None:
        """One lane per server and destination, in order within it, lanes side by side: a
        destination that times out does not hold up the others."""
        lanes: dict[tuple[str, str], list[tuple[DeliveryRow, Escalation | None]]] = {}
        for row, view in rows:
            lanes.setdefault((row.guild_id, row.destination), []).append((row, view))
        await asyncio.gather(*(self._lane(lane) for lane in lanes.values()))

    async def _lane(self, rows: Sequence[tuple[DeliveryRow, Escalation | None]]) -> None:
        async with self._lanes:
            for n, (row, view) in enumerate(rows):
                down_until = await self._deliver(row, view)
                if down_until is not None:
                    # The destination is down: the rest of its lane waits with the first, as
                    # it would have failed the same way (not counted as tries).
                    rest = rows[n + 1 :]
                    if rest:
                        await self._postpone(
                            [r.id for r, v in rest if v is None],
                            down_until,
                            held=[r.id for r, v in rest if v is not None],
                        )
                    return

    async def pending(self) -> int:
        counts = await self.outbox.counts()
        return counts.get(DeliveryStatus.PENDING, 0)

    # One delivery

    async def _deliver(self, row: DeliveryRow, handed: Escalation | None = None) -> datetime | None:
        """Send one delivery and record the outcome; when the destination could not take it
        for now, the moment to try it again. ``handed``: the desk held the row for this worker
        (its try marked, never made) and read this with it."""
        view = handed
        if view is None:
            # The ticket, its server's configuration and its source event, read once for it.
            try:
                view = await self.desk.escalation(row.ticket_id)
            except TicketNotFound:
                view = None
        config = view.config if view is not None else await self.desk.config(row.guild_id)
        destination = _destination(row, config)
        if destination is None:
            await self._failed(row, "its destination is no longer in the settings", permanent=True)
            return None
        if view is None:
            await self._failed(row, "the ticket no longer exists", permanent=True)
            return None
        ticket = view.ticket
        if isinstance(destination, Addressed):
            key = delivery.target(destination)
            disabled = await self.outbox.disabled(row.guild_id)
            if key in disabled:
                label, when, _ = disabled[key]
                why = f"{label} was disabled at {when.isoformat()} after it answered Gone"
                instead = await self._is_ops_webhook(row.guild_id, destination)
                await self._failed(row, why, permanent=True, to_ops=instead)
                return None
        # An #ops post fixes its id with its attempting mark, in one unit (``_to_ops``).
        row = await self._fixed(row, destination, ticket, save=not isinstance(destination, Ops))
        ops_post: tuple[str, str] | None = None  # (channel id, message id) of an #ops post
        try:
            match destination:
                case DiscordWebhook():
                    await self._to_webhook(row, destination, view)
                    return None
                case OpsNotice():
                    message_id = await self._notice(row)
                case Ops():
                    ops_post = await self._to_ops(row, view, held=handed is not None)
                    message_id = ops_post[1] if ops_post is not None else None
                case HttpEndpoint():
                    message_id = await self._to_endpoint(row, destination)
        except Later as later:
            return await self._failed(row, str(later), after=later.after)
        except Refused as refused:
            await self._failed(row, str(refused), permanent=True)
        except Gone as gone:
            # Only a destination reached at its URL answers Gone (the bot raises Later).
            assert isinstance(destination, Addressed)
            await self._gone(row, destination, str(gone))
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, OutboundRefused):
                await self._failed(row, f"refused: {error.os_error}", permanent=True)
                return None
            return await self._failed(row, f"{type(error).__name__}: {error}")
        except (TimeoutError, aiohttp.ClientError) as error:
            # No answer: the destination may have taken it, so the mark stays for a look.
            return await self._failed(row, f"{type(error).__name__}: {error}", settled=False)
        except Exception as error:  # a bug or bad data must not hold up every later delivery
            log.exception("delivery %s failed unexpectedly", row.id)
            await self._failed(row, f"{type(error).__name__}: {error}", settled=False)
        else:
            if message_id is not None:
                ops_message = OpsMessage(row.ticket_id, *ops_post, row.reason) if ops_post else None
                await self._sent([row.id], message_id, ops_message=ops_message)
        return None

    async def _fixed(
        self, row: DeliveryRow, destination: Destination, ticket: Ticket, *, save: bool = True
    ) -> DeliveryRow:
        """The row with its webhook-id (and an http destination's body) fixed for every try;
        without ``save``, the caller saves it before anything carrying it is sent."""
        if row.event_id is not None:
            return row
        event_id = delivery.new_event_id(self.clock(), secrets.token_bytes(10))
        body = None
        if isinstance(destination, HttpEndpoint):
            body = json.dumps(delivery.webhook_event(ticket, row.reason, self.clock()))
        if save:
            await self.outbox.fix_event(row.id, event_id, body)
        return dataclasses.replace(row, event_id=event_id, body=body)

    async def _is_ops_webhook(self, guild_id: str, destination: Addressed) -> bool:
        """Whether this destination is the server's ``ops_webhook`` (whose escalations go
        through the bot's #ops channel instead while it is disabled)."""
        hook = (await self.desk.config(guild_id)).settings.ops_webhook
        return hook is not None and DiscordWebhook(hook).reference == destination.reference

    async def _mark(
        self, ids: Sequence[int], marker: str | None, *, fixed: DeliveryRow | None = None
    ) -> None:
        """Commit that a post carrying ``marker`` is being tried for ``ids``, before trying it
        (None: settled, nothing to look for); with ``fixed``, that row's id is saved too."""
        at = self.clock() if marker is not None else None
        await self.outbox.attempting(ids, marker, at, fixed=fixed)

    async def render(
        self,
        ticket: Ticket,
        reason: str,
        marker: str | None = None,
        *,
        view: Escalation | None = None,
    ) -> OpsPost:
        """The #ops post for an escalated ticket, as it stands now (``view``: read already).
        The ticket as read with the view, not as ``ticket`` was read: a refresh of an #ops post
        must not show what changed since its caller read it (an urgency learned meanwhile)."""
        if view is None:
            view = await self.desk.escalation(ticket.id)
        ticket, config, source = view.ticket, view.config, view.source
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
            marker=marker,
        )

    async def _bot_ready(self, ids: Sequence[int], *, held: bool = False) -> bool:
        """Whether the bot can post or look now; if not, the rows wait (not counted as a try;
        ``held``: handed over and not tried, so their marks are cleared)."""
        if self.ops is not None and self.ops.ready:
            return True
        # Not an attempt: the bot is not running (the ingress alone) or not connected yet.
        retry = self.clock() + (NO_BOT_WAIT if self.ops is None else BOT_CONNECTING_WAIT)
        await self._postpone([] if held else ids, retry, held=ids if held else [])
        return False

    async def _postpone(
        self, ids: Sequence[int], until: datetime, *, held: Sequence[int] = ()
    ) -> None:
        self._next_due = (await self.outbox.postpone(ids, until, held=held),)

    async def _to_ops(
        self, row: DeliveryRow, view: Escalation, *, held: bool = False
    ) -> tuple[str, str] | None:
        """(channel id, message id) of the ticket's #ops post; None when the bot cannot now.
        ``held``: the desk marked the try in its own unit (durable before Discord is asked)
        and nothing was posted since, so there is nothing to look for or mark."""
        ticket = view.ticket
        if not await self._bot_ready([row.id], held=held):
            return None
        assert self.ops is not None
        assert row.event_id is not None
        if not held:
            if row.attempt is not None and row.attempting_at is not None:
                since = row.attempting_at - LOOK_BACK
                found = await self.ops.find(row.guild_id, None, row.attempt, since)
                if found is not None:
                    log.info("delivery %s was posted before a restart; not posting it again",
                             row.id)  # fmt: skip
                    return found
            await self._mark([row.id], row.event_id, fixed=row)
        post = await self.render(ticket, row.reason, row.event_id, view=view)
        setup = view.config.setup
        return await self.ops.post(
            ticket,
            post,
            reason=row.reason,
            nonce=nonce(row.id),
            channel_id=setup.ops_channel_id if setup else None,
        )

    async def _notice(self, row: DeliveryRow) -> str | None:
        """Tell the server's admins (a destination was disabled) in #ops, through the bot."""
        if not await self._bot_ready([row.id]):
            return None
        assert self.ops is not None
        await self.ops.notice(row.guild_id, row.reason, nonce=nonce(row.id))
        return "notice"

    async def _to_endpoint(self, row: DeliveryRow, destination: HttpEndpoint) -> str:
        """A generic HTTP endpoint, signed as Standard Webhooks: the same body and webhook-id
        on every try (a fresh timestamp and signature each), so the receiver can drop repeats."""
        assert row.event_id is not None
        assert row.body is not None
        body = row.body.encode()
        timestamp = str(int(self.clock().timestamp()))
        headers = {
            "content-type": "application/json",
            "webhook-id": row.event_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": signature(destination.secret, row.event_id, timestamp, body),
        }
        await self._http(destination.url, body, headers)
        return row.event_id

    async def _to_webhook(
        self, row: DeliveryRow, destination: DiscordWebhook, view: Escalation
    ) -> None:
        """A Discord channel webhook: within its rate limit one post each, else a summary."""
        ticket = view.ticket
        url = destination.url
        why = self.guard.discord_webhook_problem(url)
        if why is not None:
            raise Refused(f"the webhook address {why}")
        now = self.clock()
        key = row.destination
        waiting = await self.outbox.waiting(key)
        if row.id not in {w.id for w in waiting}:
            return  # folded into a summary earlier in this batch
        if any(w.attempt is not None for w in waiting):
            if not await self._reconcile(row.guild_id, url, waiting):
                return
            waiting = await self.outbox.waiting(key)
            if row.id not in {w.id for w in waiting}:
                return  # it had been posted before the restart
        sent = await self.outbox.sent_since(key, now - delivery.WINDOW)
        step, until = delivery.plan(sent, len(waiting), now)
        if step == "wait":
            assert until is not None
            await self._postpone([w.id for w in waiting], until)
            return
        if step == "send":
            assert row.event_id is not None
            post = await self.render(ticket, row.reason, row.event_id, view=view)
            await self._mark([row.id], row.event_id)
            message_id = await self._webhook(url, post.body())
            await self._sent([row.id], message_id)
            return
        first = await self._fixed(waiting[0], destination, ticket)
        assert first.event_id is not None
        tickets = [await self.desk.ticket(w.ticket_id) for w in waiting]
        embed = delivery.summary(tickets, first.event_id)
        ids = [w.id for w in waiting]
        await self._mark(ids, first.event_id)
        try:
            message_id = await self._webhook(
                url, {"embeds": [embed.to_dict()], "allowed_mentions": {"parse": []}}
            )
        except (Later, Refused, Gone):
            await self._mark(ids, None)  # answered: the summary was not posted
            raise
        await self._sent(ids, message_id, summary=True)

    async def _reconcile(self, guild_id: str, url: str, waiting: Sequence[DeliveryRow]) -> bool:
        """Rows whose post was maybe accepted before a crash or a timeout: look for each post
        in the webhook's channel through the bot, record the ones found as sent, and let the
        rest be posted again. False when the rows must wait for the bot to connect."""
        tried: dict[str, list[DeliveryRow]] = {}
        for w in waiting:
            if w.attempt is not None:
                tried.setdefault(w.attempt, []).append(w)
        if self.ops is None:
            # The ingress alone has no bot to read the channel: post again rather than lose it.
            log.warning(
                "deliveries %s were maybe posted already; no bot runs to look, so they are"
                " posted again", [w.id for rows in tried.values() for w in rows],
            )  # fmt: skip
        elif not await self._bot_ready([w.id for w in waiting]):
            return False
        else:
            hook = await self._http(url, None, {}, method="GET", discord=True)
            channel_id, webhook_id = str(hook.get("channel_id", "")), str(hook.get("id", ""))
            for marker, rows in tried.items():
                since = min(r.attempting_at or self.clock() for r in rows) - LOOK_BACK
                found = await self.ops.find(
                    guild_id, channel_id, marker, since, webhook_id=webhook_id
                )
                if found is not None:
                    log.info("deliveries %s were posted before; not posting them again",
                             [r.id for r in rows])  # fmt: skip
                    await self._sent([r.id for r in rows], found[1], summary=len(rows) > 1)
        await self._mark([w.id for rows in tried.values() for w in rows], None)
        return True

    async def _webhook(self, url: str, body: dict[str, Any]) -> str:
        answer = await self._http(
            url + ("&" if "?" in url else "?") + "wait=true",
            json.dumps(body).encode(),
            {"content-type": "application/json"},
            discord=True,
        )
        return str(answer.get("id", ""))

    async def _http(
        self,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        *,
        method: str = "POST",
        discord: bool = False,
    ) -> dict[str, Any]:
        """One request: redirects are not followed (a 3xx is a failed try, so a signed body
        never goes where the destination points), and at most BODY_CAP bytes of the answer
        are read before the connection is dropped."""
        why = self.guard.literal_problem(url)
        if why is not None:
            raise Refused(f"refused: {why}")
        if self._session is None:
            self._session = self.guard.session(self.timeout)
        async with self._session.request(
            method, url, data=body, headers=headers, allow_redirects=False
        ) as response:
            text = await _capped(response)
            status = response.status
            if 200 <= status < 300:
                try:
                    answer = json.loads(text) if text else {}
                except ValueError:
                    answer = {}
                return answer if isinstance(answer, dict) else {}
            if status == 410 or (discord and status == 404):
                raise Gone(f"{status}: the destination says it is gone")
            if status == 429:
                raise Later("429 Too Many Requests", _retry_after(response.headers, text))
            if 300 <= status < 400:
                raise Later(f"{status}: a redirect, which is not followed")
            if discord and 400 <= status < 500:
                raise Refused(f"{status}: {text[:200]}")  # Discord found the post malformed
            raise Later(f"{status} from the destination: {text[:200]}")

    # Outcomes

    async def _sent(
        self,
        ids: Sequence[int],
        message_id: str,
        *,
        summary: bool = False,
        ops_message: OpsMessage | None = None,
    ) -> None:
        """Record a post; a summary stands for all ``ids``: the first counts as the one post
        sent (for the rate limit), the rest as summarized, in one transaction. An #ops post
        (``ops_message``: ticket, channel, message, reason) is remembered with it, so a claim
        can update it."""
        self._next_due = (
            await self.outbox.sent(ids, self.clock(), message_id, ops_message=ops_message),
        )
        self.outcomes[DeliveryOutcome.SENT] += 1
        self.outcomes[DeliveryOutcome.SUMMARIZED] += len(ids) - 1

    async def _failed(
        self,
        row: DeliveryRow,
        error: str,
        *,
        after: float | None = None,
        permanent: bool = False,
        settled: bool = True,
        to_ops: bool = False,
    ) -> datetime | None:
        """Record a failed try; ``settled`` when an answer came, so nothing was posted (no
        answer keeps the attempting mark, and the next try looks first); ``to_ops``: the bot
        posts it in #ops instead."""
        attempt = row.attempts + 1
        retry_at = None
        if not permanent and attempt < MAX_ATTEMPTS:
            wait = BACKOFF[min(attempt, len(BACKOFF)) - 1] if after is None else max(after, 1.0)
            retry_at = self.clock() + timedelta(seconds=wait)
        log.warning(
            "delivery %s of ticket %s failed (try %s): %s%s",
            row.id, row.ticket_id, attempt, error, "" if retry_at else "; giving up",
        )  # fmt: skip

        instead = (
            Rerouted(row.guild_id, row.ticket_id, OPS, row.reason, self.clock()) if to_ops else None
        )
        self._next_due = (
            await self.outbox.failed(row.id, error, retry_at, settled=settled, instead=instead),
        )
        self.outcomes[DeliveryOutcome.RETRIED if retry_at else DeliveryOutcome.FAILED] += 1
        if to_ops:
            self.wake()
        return retry_at

    async def _gone(self, row: DeliveryRow, destination: Addressed, error: str) -> None:
        """A destination said it is gone: this delivery stops, the destination is disabled
        until the server's settings are saved again, and the admins are told in #ops."""
        label = delivery.target_label(destination)
        at = self.clock()
        instead = await self._is_ops_webhook(row.guild_id, destination)
        text = (
            f"Escalations are no longer sent to {label}: it answered that it is gone ({error})."
            " Fix or remove it in the settings; saving the settings again turns it back on."
            + (" Until then they are posted here." if instead else "")
        )
        log.warning("guild %s: %s disabled after delivery %s: %s",
                    row.guild_id, label, row.id, error)  # fmt: skip

        await self.outbox.gone(
            row.id,
            error,
            target=delivery.target(destination),
            label=label,
            at=at,
            notice=Rerouted(row.guild_id, row.ticket_id, NOTICE, text, at),
            # the escalation still reaches #ops, through the bot
            instead=Rerouted(row.guild_id, row.ticket_id, OPS, row.reason, at) if instead else None,
        )
        self.outcomes[DeliveryOutcome.FAILED] += 1
        self.wake()


def _destination(row: DeliveryRow, config: GuildConfig) -> Destination | None:
    """Where a delivery goes, its URL and secret looked up (unsealed) in the server's settings
    as they are now: the outbox row only names the destination."""
    ref = OutboxRef.from_json(row.destination)
    if ref.ref is None:  # the bot's own: nothing to look up
        return BUILT_IN.get(ref.kind)
    return delivery.find_destination(config.settings, ref)


def nonce(delivery_id: int) -> str:
    """The same for every try of one delivery (Discord allows 25 characters)."""
    return f"thoth-d{delivery_id}"


async def _capped(response: aiohttp.ClientResponse) -> str:
    """The answer's first BODY_CAP bytes; a longer answer's connection is dropped, not read."""
    data = bytearray()
    async for chunk in response.content.iter_chunked(16 * 1024):
        data += chunk
        if len(data) >= BODY_CAP:
            response.close()
            break
    return bytes(data[:BODY_CAP]).decode("utf-8", "replace")


def _retry_after(headers: Any, text: str) -> float | None:
    with contextlib.suppress(ValueError, TypeError):
        return float(headers.get("Retry-After"))
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        return float(json.loads(text)["retry_after"])
    return None
