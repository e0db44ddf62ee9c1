"""How a request is refused: ``Rejected`` (a JSON answer and the metric's reason), and the checks
both the handlers and the signature check make."""

from __future__ import annotations

from typing import Any

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


MAX_REQUEST_KEY = 255


def _check_request_key(value: str | None, header: str) -> None:
    if value is not None and not (0 < len(value) <= MAX_REQUEST_KEY and value.isprintable()):
        raise Rejected(
            400, "bad_request", f"{header} must be 1 to {MAX_REQUEST_KEY} printable characters."
        )
