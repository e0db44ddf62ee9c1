"""What the ingress keeps: API keys with their signing secrets, idempotency records, and the
events accepted and waiting to become tickets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    key_id: str
    guild_id: str
    key_hash: str
    webhook_secret: str  # in clear here; sealed in the database
    created_at: datetime
    revoked_at: datetime | None = None
    # The secret before the last `keys rotate`, verifying until previous_expires_at.
    previous_secret: str | None = None
    previous_expires_at: datetime | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a webhook may be signed with at ``now``: the current one, and the one
        before a rotation while its overlap lasts."""
        found = [self.webhook_secret]
        expires = self.previous_expires_at
        if self.previous_secret is not None and expires is not None and now < expires:
            found.append(self.previous_secret)
        return found


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    request_hash: str
    status: int
    answer: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IngressEventRow:
    event_id: str
    key_id: str
    guild_id: str
    name: str
    payload: dict[str, Any]
    via: str
    received_at: datetime
    status: str = "pending"
    ticket_id: int | None = None
    error: str | None = None

    @property
    def customer_id(self) -> str:
        """Who the event's ticket is opened for: the sender stands for the customer, since
        events carry no customer id of ours."""
        return f"api:{self.key_id}"


@dataclass(frozen=True, slots=True)
class StoredCounts:
    """What the database counts for ``/metrics``: deliveries by status, and SLA breaches."""

    deliveries: dict[str, int]
    breaches: int
