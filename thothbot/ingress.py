"""HTTP ingress: authenticated, signed, idempotent event intake (aiohttp.web).

``POST /v1/events/{name}``      ``Authorization: Bearer thk_...``, optional ``Idempotency-Key``
``POST /v1/webhooks/{key_id}``  a Standard Webhooks delivery signed with the key's ``whsec_``
``GET /healthz``, ``GET /metrics`` (Prometheus text)

A request is only authenticated, checked and stored: it is answered 202 once the event and its
idempotency record are committed (through ``GroupCommit``), with status 'pending', and nothing
else happens on its way. A background worker, started and stopped with the app, turns pending
events into tickets: oldest first, classified concurrently (the classifier bounds its calls),
opened through ``Desk.open_ticket`` (so the server's rules run) in order of arrival per server,
and marked 'done' (or 'failed', with the error, when the desk refuses one) several per
transaction. It is woken by each accepted event, and at start takes whatever a previous process
left pending; a ticket such an event may already have opened is found again by what it was
opened with (``_opened_by``), so it is never opened twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import ipaddress
import json
import logging
import math
import secrets
import signal
import sqlite3
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TextIO, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thothbot import keys
from thothbot.config import Config, StartupFailure
from thothbot.core.classify import Channel, Classification, Source, TicketText, Tier
from thothbot.core.destinations import DeliveryStatus
from thothbot.core.errors import DomainError
from thothbot.core.models import Effect, TicketSource
from thothbot.core.settings import Classifier as ClassifierSettings
from thothbot.delivery import Deliveries
from thothbot.maintenance import IDEMPOTENCY_TTL
from thothbot.napping import utc_now
from thothbot.service import Desk
from thothbot.store import ApiKeyRow, IdempotencyRecord, IngressEventRow, Store, Tx

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BODY = 256 * 1024
MAX_REQUEST_KEY = 255
TIMESTAMP_TOLERANCE = timedelta(minutes=5)
NO_SUBJECT = "(no subject)"
WORK_BATCH = 100  # pending events the worker takes from the database at a time
RETRY_AFTER = 5.0  # seconds before events left pending by a failure are tried again
MAX_ATTEMPTS = 3  # unexpected failures on one event (not the database's) before it is failed
STOP_GRACE = 5.0  # seconds the worker has on shutdown to finish the tickets it is opening
# Seconds requests under way have on shutdown. aiohttp reads nothing more from a connection once
# shutting down, so a body still arriving never completes: without a bound it would hold the
# stop for aiohttp's 60 s, past `docker stop`'s 10. Its sender gets no answer and sends it again.
REQUEST_GRACE = 3.0
# Cached keys are read again after this long, so a `keys rotate` (or revoke) made by another
# process takes effect here within it: a rotated-out secret stops soon after its overlap.
KEY_CACHE_SECONDS = 30.0
HEAD_TIMEOUT = 10.0  # seconds a connection has to send a whole request head (idle included)
BODY_TIMEOUT = 30.0  # seconds a request has to send its whole body once its head arrived
AUTH_FAILURES = 10  # failed authentications allowed per client address within AUTH_WINDOW
AUTH_WINDOW = 60.0  # seconds
# Addresses the failure throttle remembers at most: the least recently failing are forgotten.
AUTH_ADDRESSES = 10_000
# Seconds a refused request's unread body is still read (and dropped) before the connection is
# closed: long enough for a client to see the answer rather than a reset, short enough that a
# slow sender cannot keep the connection by it.
LINGER = 2.0


class SupportTicketCreated(BaseModel):
    """``support.ticket.created``: a ticket opened in another system. Unknown fields are kept."""

    model_config = ConfigDict(extra="allow")

    ticket_id: str = Field(min_length=1, max_length=255)
    subject: str
    body: str
    customer_tier: Tier
    channel: Channel


EVENTS: dict[str, type[BaseModel]] = {"support.ticket.created": SupportTicketCreated}


class Classifier(Protocol):
    """Urgency for a ticket under a server's classifier settings (``llm.UrgencyClassifier``)."""

    async def classify(
        self, ticket: TicketText, settings: ClassifierSettings | None = None
    ) -> Classification: ...


REJECTION_REASONS = (
    "unauthorized",
    "bad_signature",
    "stale_timestamp",
    "rate_limited",
    "too_large",
    "unknown_event",
    "invalid_json",
    "invalid_event",
    "bad_request",
    "idempotency_mismatch",
    "auth_throttled",
    "unsupported_media_type",
    "timeout",
)


@dataclass(frozen=True, slots=True)
class IngressSettings:
    rate: float = 50.0  # requests per second per API key, sustained
    burst: int = 100  # requests per API key allowed at once
    max_body: int = MAX_BODY
    idempotency_ttl: timedelta = IDEMPOTENCY_TTL
    tolerance: timedelta = TIMESTAMP_TOLERANCE
    retry_after: float = RETRY_AFTER  # seconds before a failed attempt at an event is repeated
    head_timeout: float = HEAD_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    auth_failures: int = AUTH_FAILURES
    auth_window: float = AUTH_WINDOW

    @classmethod
    def from_config(cls, config: Config) -> IngressSettings:
        return cls(
            rate=config.ingress_rate,
            burst=config.ingress_burst,
            head_timeout=config.ingress_head_timeout,
            body_timeout=config.ingress_body_timeout,
            auth_failures=config.ingress_auth_failures,
            auth_window=config.ingress_auth_window,
        )

    def server_options(self) -> dict[str, Any]:
        """Options of aiohttp's server (``web.AppRunner``) that bound a connection's time.

        aiohttp arms its keep-alive timer when a connection is made and again after each
        answer, and closes the connection if the timer fires while it is still waiting for a
        complete request head; bytes arriving do not re-arm it. So ``keepalive_timeout`` is the
        deadline for a request head, a slow one (slowloris) as much as an idle connection.
        The body has its own deadline, in ``Ingress._body``.
        """
        return {"keepalive_timeout": self.head_timeout, "lingering_time": LINGER}


class RateLimiter:
    """A token bucket per API key, in memory: nothing the desk needs after a restart."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """Spend a token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


class FailureThrottle:
    """Failed authentications per client address over a sliding window, in memory (a restart
    forgets them, which costs an attacker nothing they did not have). At most ``capacity``
    addresses are remembered, the least recently failing forgotten first, so a flood from many
    addresses cannot grow the table without bound."""

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = AUTH_ADDRESSES,
    ) -> None:
        self.limit = limit
        self.window = window
        self.capacity = capacity
        self._clock = clock
        # address -> when its latest failures happened (at most ``limit``), oldest first
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def fail(self, address: str) -> float:
        """Note a failed authentication: 0.0 while the address was under the limit, else the
        seconds until its oldest failure in the window is forgotten (its Retry-After)."""
        now = self._clock()
        times = self._failures.pop(address, None)
        if times is None:
            times = deque(maxlen=self.limit)
        while times and times[0] <= now - self.window:
            times.popleft()
        over = len(times) >= self.limit
        times.append(now)
        self._failures[address] = times
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)
        if not over:
            return 0.0
        return max(0.0, times[0] + self.window - now) if times else self.window


def client_address(remote: str | None) -> str:
    """Who failed, for the throttle: the peer's address, or its /64 for IPv6, since one host
    commonly holds a whole /64 and could otherwise change address at every attempt."""
    if remote is None:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # an IPv4 client on a dual-stack socket
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class Metrics:
    """Counters since start (and the queue's depth), rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter(dict.fromkeys(EVENTS, 0))
        self.rejected: Counter[str] = Counter(dict.fromkeys(REJECTION_REASONS, 0))
        self.replayed = 0
        self.classified: Counter[str] = Counter(dict.fromkeys(Source, 0))
        self.tickets_opened = 0
        self.failed = 0

    def render(self, pending: int | None = None, stored: StoredCounts | None = None) -> str:
        """The metrics; ``pending`` (the queue's depth) and ``stored`` (what the database
        counts) are left out when they could not be read."""
        lines: list[str] = []

        def metric(
            name: str, help_text: str, samples: Sequence[tuple[str, int]], kind: str = "counter"
        ) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {value}" for labels, value in samples)

        metric(
            "thothbot_ingress_events_accepted_total",
            "Events stored and answered 202, by event name.",
            [(f'{{event="{_label(k)}"}}', v) for k, v in sorted(self.accepted.items())],
        )
        metric(
            "thothbot_ingress_events_rejected_total",
            "Requests refused, by reason.",
            [(f'{{reason="{_label(k)}"}}', v) for k, v in sorted(self.rejected.items())],
        )
        metric(
            "thothbot_ingress_idempotent_replays_total",
            "Repeated requests answered with their first answer.",
            [("", self.replayed)],
        )
        metric(
            "thothbot_ingress_classifications_total",
            "Urgency classifications of events, by who decided: llm, cache or heuristic.",
            [(f'{{source="{k}"}}', v) for k, v in sorted(self.classified.items())],
        )
        metric(
            "thothbot_ingress_tickets_opened_total",
            "Tickets opened from events.",
            [("", self.tickets_opened)],
        )
        metric(
            "thothbot_ingress_events_failed_total",
            "Stored events that could not become a ticket (the desk refused them, or they"
            " failed every attempt).",
            [("", self.failed)],
        )
        if pending is not None:
            metric(
                "thothbot_ingress_events_pending",
                "Events accepted and not yet turned into a ticket (the worker's queue).",
                [("", pending)],
                "gauge",
            )
        if stored is not None:
            metric(
                "thothbot_deliveries",
                "Escalation deliveries in the outbox by status: sent, summarized, failed, and"
                " pending (the delivery queue).",
                [
                    (f'{{status="{status}"}}', stored.deliveries.get(status, 0))
                    for status in sorted(DeliveryStatus)
                ],
                "gauge",
            )
            metric(
                "thothbot_sla_breaches_total",
                "SLA targets breached, over every server and ticket.",
                [("", stored.breaches)],
            )
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class StoredCounts:
    deliveries: dict[str, int]
    breaches: int


METRICS_HEADERS = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


async def stored_metrics(
    metrics: Metrics,
    run: Callable[[Callable[[Tx], Any]], Awaitable[Any]],
    within: float | None = None,
) -> str:
    """``metrics`` rendered with what the database counts (left out if it does not answer)."""
    pending: int | None = None
    stored: StoredCounts | None = None
    try:
        pending, stored = await asyncio.wait_for(
            run(
                lambda tx: (
                    tx.count_pending_ingress_events(),
                    StoredCounts(tx.delivery_counts(), tx.breach_count()),
                )
            ),
            within,
        )
    except TimeoutError:
        log.warning("metrics: the database did not answer within %g s", within)
    except Exception:
        log.exception("metrics: the stored counts could not be read")
    return metrics.render(pending, stored)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Rejected(Exception):
    """A request refused with a JSON ``{"error": ...}`` answer; ``reason`` labels the metric."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.headers = headers or {}
        self.close = close  # end the connection after this answer
        self.extra = extra


def _unauthorized(message: str, reason: str = "unauthorized", *, bearer: bool = True) -> Rejected:
    headers = {"WWW-Authenticate": "Bearer"} if bearer else {}
    return Rejected(401, reason, message, headers=headers)


@dataclass(frozen=True, slots=True)
class _Request:
    """A request that passed authentication and the checks that need no database."""

    key: ApiKeyRow
    name: str
    payload: dict[str, Any]
    event: BaseModel
    via: Literal["api", "webhook"]
    request_key: str | None
    request_hash: str


class GroupCommit:
    """Small units queued while a transaction is in flight share the next one.

    Under load many requests pay for one thread hop and one commit; alone, a unit runs at once
    as with ``Store.run``. A unit that raises is retried alone, so it fails only its caller.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def run(self, unit: Callable[[Tx], T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((unit, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="ingress-group-commit")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self._store.run(_together([unit for unit, _ in batch]))
            except Exception as error:
                if len(batch) == 1:
                    _settle(batch[0][1], error=error)
                    continue
                for unit, future in batch:
                    try:
                        _settle(future, await self._store.run(unit))
                    except Exception as alone:
                        _settle(future, error=alone)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)


def _together(units: list[Callable[[Tx], Any]]) -> Callable[[Tx], list[Any]]:
    return lambda tx: [unit(tx) for unit in units]


def _settle(
    future: asyncio.Future[Any], result: Any = None, error: Exception | None = None
) -> None:
    if future.done():  # its request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class LogSink:
    """Effects when no Discord bot runs next to the ingress: logged (ids only), not delivered."""

    async def publish(self, guild_id: str, effects: Sequence[Effect]) -> None:
        for effect in effects:
            log.info(
                "server %s: %s on ticket %s", guild_id, type(effect).__name__, effect.ticket_id
            )


class Ingress:
    """The request handlers and the work behind them; ``app()`` wires them into aiohttp."""

    def __init__(
        self,
        desk: Desk,
        store: Store | None = None,
        settings: IngressSettings | None = None,
        *,
        classifier: Classifier | None = None,
        now: Callable[[], datetime] = utc_now,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desk = desk
        self.store = store or desk.store
        self.settings = settings or IngressSettings()
        self.classifier = classifier
        self.metrics = Metrics()
        self.limiter = RateLimiter(self.settings.rate, self.settings.burst, clock)
        self.throttle = FailureThrottle(
            self.settings.auth_failures, self.settings.auth_window, clock
        )
        self.commits = GroupCommit(self.store)
        self._keys: dict[str, ApiKeyRow] = {}
        self._keys_read: dict[str, float] = {}  # when each cached key was read (``clock``)
        self._clock = clock
        self._now = now
        self._last_received: datetime | None = None
        # The worker's state: woken by each accepted event (and at start, for what is pending).
        self._wake = asyncio.Event()
        self._wake.set()
        self._stopping = False
        self._draining = asyncio.Lock()
        self._retry_at: float | None = None
        self._resting: dict[str, float] = {}  # events left pending by a failure: when to retry
        # Events accepted by this process and not tried yet: no ticket of theirs can exist, so
        # the worker skips the search for one (``_opened_by``) that any other event gets.
        self._untried: set[str] = set()
        self._attempts: Counter[str] = Counter()
        self._jobs: set[asyncio.Task[Any]] = set()

    def app(self, *, health: bool = True) -> web.Application:
        """The ingress's routes; ``health=False`` leaves /healthz and /metrics to the caller
        (``thothbot run``'s health server, which knows about Discord too)."""
        app = web.Application(client_max_size=self.settings.max_body, middlewares=[_json_errors])
        app.router.add_post("/v1/events/{name}", self.handle_event)
        app.router.add_post("/v1/webhooks/{key_id}", self.handle_webhook)
        if health:
            app.router.add_get("/healthz", self.handle_health)
            app.router.add_get("/metrics", self.handle_metrics)
        app.cleanup_ctx.append(self._working)
        return app

    # Handlers

    async def handle_event(self, request: web.Request) -> web.Response:
        try:
            key = await self._bearer(request)
            self._limit(key)
            name = request.match_info["name"]
            if name not in EVENTS:
                raise _unknown_event(name)
            request_key = request.headers.get("Idempotency-Key")
            _check_request_key(request_key, "Idempotency-Key")
            _check_json(request)
            body = await self._body(request)
            payload = _parse(body)
            event = _validate(name, payload, "")
            digest = hashlib.sha256(name.encode() + b"\n" + body).hexdigest()
            accepted = _Request(key, name, payload, event, "api", request_key, digest)
            return await self._accept(accepted)
        except Rejected as rejected:
            return self._refuse(self._throttled(request, rejected))

    async def handle_webhook(self, request: web.Request) -> web.Response:
        try:
            key = await self._key(request.match_info["key_id"])
            if key is None or key.revoked_at is not None:
                raise _unauthorized(
                    "There is no active key with this id: check the webhook URL.", bearer=False
                )
            _check_json(request)
            body = await self._body(request)
            message_id = await self._verify(request, key, body)
            self._limit(key)
            envelope = _parse(body)
            name = envelope.get("type")
            data = envelope.get("data")
            problems = []
            if not isinstance(name, str):
                problems.append({"path": "type", "message": "must be the event's name, a string"})
            if not isinstance(data, dict):
                problems.append({"path": "data", "message": "must be the event, a JSON object"})
            if not isinstance(name, str) or not isinstance(data, dict):
                raise _invalid('The webhook body must read {"type": name, "data": {...}}', problems)
            if name not in EVENTS:
                raise _unknown_event(name)
            event = _validate(name, data, "data.")
            digest = hashlib.sha256(body).hexdigest()
            return await self._accept(
                _Request(key, name, data, event, "webhook", message_id, digest)
            )
        except Rejected as rejected:
            return self._refuse(self._throttled(request, rejected))

    async def handle_health(self, request: web.Request) -> web.Response:
        try:
            await self.store.run(lambda tx: None)
        except Exception:
            log.exception("health check: the database does not answer")
            return web.json_response(
                {"status": "failing", "error": "The database does not answer."}, status=503
            )
        return web.json_response({"status": "ok"})

    async def handle_metrics(self, request: web.Request) -> web.Response:
        text = await stored_metrics(self.metrics, self.commits.run)
        return web.Response(body=text.encode(), headers=METRICS_HEADERS)

    # Checks

    async def _key(self, key_id: str) -> ApiKeyRow | None:
        """The key with this id; active keys are cached (``_accept`` rechecks revocation)."""
        key = self._keys.get(key_id)
        if key is not None and self._clock() - self._keys_read[key_id] > KEY_CACHE_SECONDS:
            key = None
        if key is None:
            key = await self.store.run(lambda tx: tx.api_key(key_id))
            if key is not None and key.revoked_at is None:
                self._keys[key_id] = key
                self._keys_read[key_id] = self._clock()
        return key

    async def _bearer(self, request: web.Request) -> ApiKeyRow:
        header = request.headers.get("Authorization", "").strip()
        if not header:
            raise _unauthorized("An API key is needed: send 'Authorization: Bearer <key>'.")
        scheme, _, api_key = header.partition(" ")
        api_key = api_key.strip()
        if scheme.lower() != "bearer" or not api_key:
            raise _unauthorized("The Authorization header must read 'Bearer <key>'.")
        key_id = keys.key_id_of(api_key)
        key = await self._key(key_id) if key_id is not None else None
        if key is None or not keys.key_matches(key, api_key):
            raise _unauthorized("This API key is not valid.")
        if key.revoked_at is not None:
            raise _unauthorized("This API key has been revoked.")
        return key

    async def _verify(self, request: web.Request, key: ApiKeyRow, body: bytes) -> str:
        """Check a Standard Webhooks signature; the delivery's id (its idempotency key).

        Any of the key's secrets that is not expired verifies: after ``keys rotate``, the new
        one and, until the overlap ends (by our clock), the previous one.
        """
        message_id = request.headers.get("webhook-id")
        timestamp = request.headers.get("webhook-timestamp")
        header = request.headers.get("webhook-signature")
        if not message_id or not timestamp or not header:
            raise _unauthorized(
                "A webhook needs the webhook-id, webhook-timestamp and webhook-signature headers.",
                "bad_signature",
                bearer=False,
            )
        _check_request_key(message_id, "webhook-id")
        if not keys.timestamp_fresh(timestamp, self._now(), self.settings.tolerance):
            minutes = self.settings.tolerance.total_seconds() / 60
            raise _unauthorized(
                f"The webhook-timestamp is not a Unix time within {minutes:g} minutes of ours.",
                "stale_timestamp",
                bearer=False,
            )
        now = self._now()
        signed = (message_id, timestamp, body, header)
        if keys.signed_by_any(key.signing_secrets(now), *signed):
            return message_id
        # The cached key may be older than a `keys rotate` made by another process.
        fresh = await self.store.run(lambda tx: tx.api_key(key.key_id))
        if (
            fresh is None
            or fresh == key
            or fresh.revoked_at is not None
            or not keys.signed_by_any(fresh.signing_secrets(now), *signed)
        ):
            raise _unauthorized(
                "No webhook-signature matches this body with this key's signing secret.",
                "bad_signature",
                bearer=False,
            )
        self._keys[key.key_id] = fresh
        self._keys_read[key.key_id] = self._clock()
        return message_id

    def _limit(self, key: ApiKeyRow) -> None:
        wait = self.limiter.take(key.key_id)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise Rejected(
                429,
                "rate_limited",
                f"Too many requests for this key (at most {self.settings.rate:g} a second,"
                f" {self.settings.burst} at once): retry in {seconds} s.",
                headers={"Retry-After": str(seconds)},
            )

    def _throttled(self, request: web.Request, rejected: Rejected) -> Rejected:
        """A failed authentication counts against the client's address; past the limit it is
        answered 429 rather than 401. Requests that authenticate are never held back, so a
        client sharing an address with a failing one (behind the same proxy) keeps working;
        keys are random enough that throttling is about load and noise, not guessing."""
        if rejected.status != 401:
            return rejected
        wait = self.throttle.fail(client_address(request.remote))
        if wait <= 0:
            return rejected
        seconds = max(1, math.ceil(wait))
        window = self.settings.auth_window
        return Rejected(
            429,
            "auth_throttled",
            f"Too many failed authentications from your address (at most"
            f" {self.settings.auth_failures} in {window:g} s): check the key or signing secret,"
            f" then retry in {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )

    async def _body(self, request: web.Request) -> bytes:
        limit = self.settings.max_body
        too_large = Rejected(
            413, "too_large", f"The body is larger than the limit of {limit // 1024} KiB."
        )
        if request.content_length is not None and request.content_length > limit:
            raise too_large
        deadline = self.settings.body_timeout
        try:
            # A body trickled in a byte at a time would otherwise hold its connection (and
            # this handler) for as long as the sender likes.
            async with asyncio.timeout(deadline):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise too_large from None
        except TimeoutError:
            raise Rejected(
                408,
                "timeout",
                f"The body did not arrive within {deadline:g} s: nothing was stored, send it"
                " again.",
                close=True,
            ) from None

    # Accepting

    async def _accept(self, request: _Request) -> web.Response:
        now = self._now()
        # Strictly after the previous event, so that the worker's order is arrival order.
        received = now
        if self._last_received is not None and received <= self._last_received:
            received = self._last_received + timedelta(microseconds=1)
        self._last_received = received
        row = IngressEventRow(
            event_id=f"evt_{secrets.token_hex(12)}",
            key_id=request.key.key_id,
            guild_id=request.key.guild_id,
            name=request.name,
            payload=request.payload,
            via=request.via,
            received_at=received,
        )
        answer = json.dumps({"event_id": row.event_id})

        def unit(tx: Tx) -> IdempotencyRecord | Literal["revoked"] | None:
            # Authoritative here, in the transaction that would store the event: the key may
            # have been revoked (from another process) since it was cached.
            current = tx.api_key(request.key.key_id)
            if current is None or current.revoked_at is not None:
                return "revoked"
            if request.request_key is not None:
                args = (request.key.key_id, request.via, request.request_key)
                first = tx.idempotency_record(*args, now - self.settings.idempotency_ttl)
                if first is not None:
                    return first
                tx.save_idempotency_record(
                    *args, IdempotencyRecord(request.request_hash, 202, answer, now)
                )
            tx.insert_ingress_event(row)
            return None

        # Noted before the commit, so that the worker cannot see the event before the note.
        self._untried.add(row.event_id)
        try:
            first = await self.commits.run(unit)
        except BaseException:
            self._untried.discard(row.event_id)
            raise
        if first is not None:
            self._untried.discard(row.event_id)
        if first == "revoked":
            self._keys.pop(request.key.key_id, None)
            raise _unauthorized("This API key has been revoked.", bearer=request.via == "api")
        if first is not None:
            if first.request_hash != request.request_hash:
                what = "Idempotency-Key" if request.via == "api" else "webhook-id"
                raise Rejected(
                    422,
                    "idempotency_mismatch",
                    f"This {what} was already used for a different request: send a new one.",
                )
            self.metrics.replayed += 1
            return web.Response(
                status=first.status,
                text=first.answer,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        self.metrics.accepted[request.name] += 1
        self._wake.set()
        return web.Response(status=202, text=answer, content_type="application/json")

    # Turning events into tickets

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

    def _refuse(self, rejected: Rejected) -> web.Response:
        self.metrics.rejected[rejected.reason] += 1
        response = web.json_response(
            {"error": str(rejected), **rejected.extra},
            status=rejected.status,
            headers=rejected.headers,
        )
        if rejected.close:
            response.force_close()
        return response


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


def _check_request_key(value: str | None, header: str) -> None:
    if value is not None and not (0 < len(value) <= MAX_REQUEST_KEY and value.isprintable()):
        raise Rejected(
            400, "bad_request", f"{header} must be 1 to {MAX_REQUEST_KEY} printable characters."
        )


def _check_json(request: web.Request) -> None:
    """Bodies are JSON and say so: ``application/json`` (any charset) or ``application/*+json``.
    A form or plain text posted here by mistake is refused before it is read."""
    kind = request.content_type  # the media type alone, lowercased; octet-stream when absent
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return
    sent = request.headers.get("Content-Type")
    raise Rejected(
        415,
        "unsupported_media_type",
        "The body must be JSON sent with 'Content-Type: application/json'"
        + (f", not {sent!r}." if sent else "; no Content-Type was sent."),
    )


def _unknown_event(name: str) -> Rejected:
    known = sorted(EVENTS)
    return Rejected(
        404,
        "unknown_event",
        f"There is no event named {name!r}. Known events: {', '.join(known)}.",
        known_events=known,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise Rejected(400, "invalid_json", f"The body is not valid JSON: {error}.") from None
    if not isinstance(document, dict):
        raise _invalid("The body must be", [{"path": "", "message": "a JSON object"}])
    return document


def _invalid(lead: str, problems: list[dict[str, str]]) -> Rejected:
    """A 422 naming each problem by its field's path (``data.customer_tier``, ``tags[0]``)."""
    summary = "; ".join(
        f"{p['path']}: {p['message']}" if p["path"] else p["message"] for p in problems
    )
    return Rejected(422, "invalid_event", f"{lead}: {summary}.", problems=problems)


def _validate(name: str, payload: dict[str, Any], prefix: str) -> BaseModel:
    try:
        return EVENTS[name].model_validate(payload)
    except ValidationError as error:
        problems = [{"path": prefix + _path(e["loc"]), "message": e["msg"]} for e in error.errors()]
        raise _invalid(f"The event does not match {name}", problems) from None


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own refusals (no such path, wrong method) and our failures as JSON, like ours."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return web.json_response(
            {"error": f"{error.reason}."}, status=error.status, headers=_allow(error)
        )
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response(
            {"error": "Something went wrong on our side and nothing was stored: retry later."},
            status=500,
        )


def _allow(error: web.HTTPException) -> dict[str, str]:
    allow = error.headers.get("Allow")
    return {"Allow": allow} if allow else {}


# Starting and serving


async def start_ingress(
    desk: Desk, store: Store, config: Config, *, classifier: Classifier | None = None
) -> web.AppRunner:
    """Listen on the configured address, with the worker processing events in the background
    (those left pending by a previous run first); ``cleanup()`` stops both."""
    settings = IngressSettings.from_config(config)
    ingress = Ingress(desk, store, settings, classifier=classifier)
    runner = web.AppRunner(
        ingress.app(), shutdown_timeout=REQUEST_GRACE, **settings.server_options()
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.ingress_host, config.ingress_port)
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise StartupFailure(cannot_listen(config, error)) from None
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def cannot_listen(config: Config, error: OSError) -> str:
    where = f"{config.ingress_host}:{config.ingress_port}"
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: another program uses that port. Stop it, or set"
            " THOTH_INGRESS_PORT to a free port."
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        return (
            f"cannot listen on {where}: permission denied (ports below 1024 need privileges):"
            " set THOTH_INGRESS_PORT to 1024 or above."
        )
    return (
        f"cannot listen on {where}: {error.strerror or error}. Check THOTH_INGRESS_HOST (an"
        " address of this machine, or 0.0.0.0) and THOTH_INGRESS_PORT."
    )


def addresses(runner: web.AppRunner) -> list[str]:
    """Where a started runner listens, as URLs."""
    urls = []
    for address in runner.addresses:
        host, port = address[0], address[1]
        urls.append(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
    return urls


async def serve(config: Config, out: TextIO) -> None:
    """Run the ingress alone (no Discord bot) until Ctrl-C or SIGTERM."""
    from thothbot.application import build  # noqa: PLC0415  (the composition root imports this module)

    async with build(config) as app:
        # Listening first: a port that cannot be had then leaves no background task behind.
        # Closing stops listening, gives requests under way REQUEST_GRACE to finish, then the
        # worker STOP_GRACE to finish the tickets it is opening; the rest stays pending.
        runner = await app.listen_ingress()
        # Webhook and HTTP destinations go out now; #ops posts wait for `thothbot run`. A
        # delivery cut off at the stop stays in the outbox and is sent after the restart.
        app.spawn(Deliveries(app.desk).run(), name="deliveries")
        app.spawn(app.maintenance.run(), name="maintenance")
        out.write(f"thothbot ingress listening on {', '.join(addresses(runner))}")
        out.write(" (Ctrl-C to stop)\n")
        out.flush()
        received = await _stop_signal()
        log.info("%s received: finishing the requests and tickets under way", received)
    out.write("thothbot ingress stopped\n")
    out.flush()


async def _stop_signal() -> str:
    """Wait for SIGTERM (``docker stop``, systemd) or SIGINT (Ctrl-C); the name of the one that
    came. Only the first is ours: a second one acts as if we had not asked, so a stop that
    hangs can still be cut short."""
    loop = asyncio.get_running_loop()
    came: asyncio.Future[signal.Signals] = loop.create_future()
    watched = (signal.SIGTERM, signal.SIGINT)
    for signum in watched:
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(signum, _first, came, signum)
    try:
        return (await came).name
    finally:
        for signum in watched:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signum)


def _first(came: asyncio.Future[signal.Signals], signum: signal.Signals) -> None:
    if not came.done():
        came.set_result(signum)
