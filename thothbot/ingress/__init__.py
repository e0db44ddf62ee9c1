"""HTTP ingress: authenticated, signed, idempotent event intake (aiohttp.web).

``POST /v1/events/{name}``      ``Authorization: Bearer thk_...``, optional ``Idempotency-Key``
``POST /v1/webhooks/{key_id}``  a Standard Webhooks delivery signed with the key's ``whsec_``
``GET /healthz``, ``GET /metrics`` (Prometheus text)

A request is only authenticated, checked and stored: it is answered 202 once the event and its
idempotency record are committed (``service.Intake``, through the group commit), with status
'pending', and nothing else happens on its way. A background worker, started and stopped with
the app, turns pending events into tickets: oldest first, opened through ``Desk.open_ticket``
(so the server's rules run) in order of arrival per server with their urgency unknown (the
triage loop, ``thothbot.triage``, labels them as it does Discord tickets), and marked 'done'
(or 'failed', with the error, when the desk refuses one) several per transaction. It wakes on
the change notifier when an accepted event commits, and at start takes whatever a previous
process left pending; a ticket such an event may already have opened is found again by what
it was opened with (``Intake.opened_by``), so it is never opened twice.

One concept per module: ``http`` the routes, handlers and accepting an event; ``auth`` keys,
bearer tokens, signatures, the rate limit and the failed-authentication throttle; ``refusals``
how a request is refused; ``events`` the events taken; ``worker`` pending events into tickets;
``metrics`` the counters; ``settings`` the limits; ``server`` starting and ``thothbot ingress``.
What they need of the store is the service layer's (``thothbot.service.intake``).
"""

from thothbot.core.ingress import StoredCounts
from thothbot.ingress.auth import (
    AUTH_ADDRESSES,
    KEY_CACHE_SECONDS,
    Authentication,
    FailureThrottle,
    RateLimiter,
    client_address,
)
from thothbot.ingress.events import EVENTS, SupportTicketCreated
from thothbot.ingress.http import Ingress
from thothbot.ingress.metrics import METRICS_HEADERS, Metrics, stored_metrics
from thothbot.ingress.refusals import MAX_REQUEST_KEY, REJECTION_REASONS, Rejected
from thothbot.ingress.server import (
    REQUEST_GRACE,
    LogSink,
    addresses,
    cannot_listen,
    serve,
    start_ingress,
)
from thothbot.ingress.settings import (
    AUTH_FAILURES,
    AUTH_WINDOW,
    BODY_TIMEOUT,
    HEAD_TIMEOUT,
    LINGER,
    MAX_BODY,
    RETRY_AFTER,
    TIMESTAMP_TOLERANCE,
    IngressSettings,
)
from thothbot.ingress.worker import (
    MAX_ATTEMPTS,
    NO_SUBJECT,
    STOP_GRACE,
    WORK_BATCH,
    Worker,
)

__all__ = [
    "AUTH_ADDRESSES",
    "AUTH_FAILURES",
    "AUTH_WINDOW",
    "BODY_TIMEOUT",
    "EVENTS",
    "HEAD_TIMEOUT",
    "KEY_CACHE_SECONDS",
    "LINGER",
    "MAX_ATTEMPTS",
    "MAX_BODY",
    "MAX_REQUEST_KEY",
    "METRICS_HEADERS",
    "NO_SUBJECT",
    "REJECTION_REASONS",
    "REQUEST_GRACE",
    "RETRY_AFTER",
    "STOP_GRACE",
    "TIMESTAMP_TOLERANCE",
    "WORK_BATCH",
    "Authentication",
    "FailureThrottle",
    "Ingress",
    "IngressSettings",
    "LogSink",
    "Metrics",
    "RateLimiter",
    "Rejected",
    "StoredCounts",
    "SupportTicketCreated",
    "Worker",
    "addresses",
    "cannot_listen",
    "client_address",
    "serve",
    "start_ingress",
    "stored_metrics",
]
