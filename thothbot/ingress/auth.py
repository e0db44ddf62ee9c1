"""Who may send: API keys (cached), bearer tokens, Standard Webhooks signatures, the rate limit
per key and the throttle on failed authentications per client address."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from thothbot import keys
from thothbot.core.ingress import ApiKeyRow
from thothbot.ingress.refusals import Rejected, _check_request_key, _unauthorized
from thothbot.ingress.settings import IngressSettings
from thothbot.service import Intake

# Cached keys are read again after this long, so a `keys rotate` (or revoke) made by another
# process takes effect here within it: a rotated-out secret stops soon after its overlap.
KEY_CACHE_SECONDS = 30.0


# Addresses the failure throttle remembers at most: the least recently failing are forgotten.
AUTH_ADDRESSES = 10_000


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


class Authentication:
    """The checks on a request that need its key: a part of ``Ingress``, which holds the state."""

    intake: Intake
    settings: IngressSettings
    limiter: RateLimiter
    throttle: FailureThrottle
    _keys: dict[str, ApiKeyRow]
    _keys_read: dict[str, float]
    _clock: Callable[[], float]
    _now: Callable[[], datetime]

    async def _key(self, key_id: str) -> ApiKeyRow | None:
        """The key with this id; active keys are cached (``_accept`` rechecks revocation)."""
        key = self._keys.get(key_id)
        if key is not None and self._clock() - self._keys_read[key_id] > KEY_CACHE_SECONDS:
            key = None
        if key is None:
            key = await self.intake.api_key(key_id)
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
        fresh = await self.intake.api_key(key.key_id)
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
