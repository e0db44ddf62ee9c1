"""The ingress's limits and deadlines (``IngressSettings``), with their defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from thothbot.config import Config
from thothbot.service.retention import IDEMPOTENCY_TTL

MAX_BODY = 256 * 1024
TIMESTAMP_TOLERANCE = timedelta(minutes=5)
RETRY_AFTER = 5.0  # seconds before events left pending by a failure are tried again
HEAD_TIMEOUT = 10.0  # seconds a connection has to send a whole request head (idle included)
BODY_TIMEOUT = 30.0  # seconds a request has to send its whole body once its head arrived
AUTH_FAILURES = 10  # failed authentications allowed per client address within AUTH_WINDOW
AUTH_WINDOW = 60.0  # seconds
# Seconds a refused request's unread body is still read (and dropped) before the connection is
# closed: long enough for a client to see the answer rather than a reset, short enough that a
# slow sender cannot keep the connection by it.
LINGER = 2.0


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
