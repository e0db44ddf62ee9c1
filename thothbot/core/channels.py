"""A ticket's life in its Discord channel, as the service layer keeps it: the server's setup,
an opening (number taken, channel maybe made) and a closing (its steps, each done once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DiscordSetup:
    """What ``/setup`` stored: the staff role, #ops, the log channel, the ticket categories."""

    guild_id: str
    staff_role_id: str
    ops_channel_id: str
    log_channel_id: str | None
    categories: tuple[str, ...]


CLOSING_STEPS = ("read", "logged", "sent", "asked", "deleted")


@dataclass(frozen=True, slots=True)
class Opening:
    """A ticket whose number is taken and whose channel, record or card may still be missing."""

    id: int
    guild_id: str
    number: int
    customer_id: str
    subject: str
    body: str
    type_id: str | None
    created_at: datetime
    channel_id: str | None = None
    ticket_id: int | None = None


@dataclass(frozen=True, slots=True)
class Closing:
    """A closed ticket's steps in Discord; each outcome is None while the step is pending."""

    ticket_id: int
    guild_id: str
    channel_id: str | None
    closed_by: str
    closed_by_name: str
    reason: str | None
    upload_limit: int
    closed_at: datetime
    delete_at: datetime
    next_at: datetime
    attempts: int = 0
    error: str | None = None
    read: str | None = None
    logged: str | None = None
    sent: str | None = None
    asked: str | None = None
    deleted: str | None = None
    finished_at: datetime | None = None
