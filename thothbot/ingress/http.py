"""The HTTP side: routes, handlers, request parsing, and accepting an event (idempotently).

A request is only authenticated, checked and stored: it is answered 202 once the event and its
idempotency record are committed (``Intake.accept``, through the group commit), with status
'pending', and nothing else happens on its way; the worker (``worker.py``) turns it into a
ticket.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ValidationError

from thothbot.changes import Topic
from thothbot.core.ingress import ApiKeyRow, IdempotencyRecord, IngressEventRow
from thothbot.ingress.auth import Authentication, FailureThrottle, RateLimiter
from thothbot.ingress.events import EVENTS, _path
from thothbot.ingress.metrics import METRICS_HEADERS, Metrics, stored_metrics
from thothbot.ingress.refusals import Rejected, _check_request_key, _unauthorized
from thothbot.ingress.settings import IngressSettings
from thothbot.ingress.worker import Worker
from thothbot.napping import utc_now
from thothbot.service import Desk, Intake

log = logging.getLogger(__name__)


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


class Ingress(Authentication, Worker):
    """The request handlers and the work behind them (the key checks of ``Authentication``, the
    ``Worker``; this class holds their state); ``app()`` wires them into aiohttp."""

    def __init__(
        self,
        desk: Desk,
        intake: Intake,
        settings: IngressSettings | None = None,
        *,
        classified: Counter[str] | None = None,
        now: Callable[[], datetime] = utc_now,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``classified``: the triage loop's counts by who decided, shown in ``/metrics``."""
        self.desk = desk
        self.intake = intake
        self.settings = settings or IngressSettings()
        self.metrics = Metrics(classified)
        self.limiter = RateLimiter(self.settings.rate, self.settings.burst, clock)
        self.throttle = FailureThrottle(
            self.settings.auth_failures, self.settings.auth_window, clock
        )
        self._keys: dict[str, ApiKeyRow] = {}
        self._keys_read: dict[str, float] = {}  # when each cached key was read (``clock``)
        self._clock = clock
        self._now = now
        self._last_received: datetime | None = None
        # The worker's state: woken by each accepted event (and at start, for what is pending).
        self._wake = intake.changes.wake_on(Topic.INGRESS)
        self._wake.set()
        self._stopping = False
        self._draining = asyncio.Lock()
        self._retry_at: float | None = None
        self._resting: dict[str, float] = {}  # events left pending by a failure: when to retry
        # Events accepted by this process and not tried yet: no ticket of theirs can exist, so
        # the worker skips the search for one (``_opened_by``) that any other event gets.
        self._untried: set[str] = set()
        self._attempts: Counter[str] = Counter()

    def app(self, *, health: bool = True, worker: bool = True) -> web.Application:
        """The ingress's routes; ``health=False`` leaves /healthz and /metrics to the caller
        (``thothbot run``'s health server, which knows about Discord too). ``worker=False``
        only accepts: the events wait, pending, for a worker in another process (what
        ``make bench`` measures as the request path alone)."""
        app = web.Application(client_max_size=self.settings.max_body, middlewares=[_json_errors])
        app.router.add_post("/v1/events/{name}", self.handle_event)
        app.router.add_post("/v1/webhooks/{key_id}", self.handle_webhook)
        if health:
            app.router.add_get("/healthz", self.handle_health)
            app.router.add_get("/metrics", self.handle_metrics)
        if worker:
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
            await self.intake.check()
        except Exception:
            log.exception("health check: the database does not answer")
            return web.json_response(
                {"status": "failing", "error": "The database does not answer."}, status=503
            )
        return web.json_response({"status": "ok"})

    async def handle_metrics(self, request: web.Request) -> web.Response:
        text = await stored_metrics(self.metrics, self.intake.counts)
        return web.Response(body=text.encode(), headers=METRICS_HEADERS)

    # Checks

    async def _body(self, request: web.Request) -> bytes:
        limit = self.settings.max_body
        too_large = Rejected(
            413, "too_large", f"The body is larger than the limit of {limit // 1024} KiB."
        )
        if request.content_length is not None and request.content_length > limit:
            raise too_large
        deadline = self.settings.body_timeout
        try:
            if request.content.is_eof():  # all of it has arrived: nothing to wait for
                return await request.read()
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
            event_id=_event_id(received),
            key_id=request.key.key_id,
            guild_id=request.key.guild_id,
            name=request.name,
            payload=request.payload,
            via=request.via,
            received_at=received,
        )
        answer = json.dumps({"event_id": row.event_id})
        record = IdempotencyRecord(request.request_hash, 202, answer, now)
        since = now - self.settings.idempotency_ttl
        # Noted before the commit, so that the worker cannot see the event before the note.
        self._untried.add(row.event_id)
        try:
            first = await self.intake.accept(row, request.request_key, record, since)
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
        return web.Response(status=202, text=answer, content_type="application/json")

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


def _event_id(received: datetime) -> str:
    """``evt_``, the arrival time in microseconds (13 hex digits, so ids sort as they arrived),
    then 48 random bits: each insert lands beside the last one in the table's index, rather
    than on a random page that the commit must write."""
    micros = int(received.timestamp() * 1_000_000)
    return f"evt_{micros:013x}{secrets.token_hex(6)}"


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
