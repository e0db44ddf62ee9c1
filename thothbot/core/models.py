"""Domain values: tickets, the events that happen to them and the effects rules produce."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

MAX_TAGS = 50
MAX_TAG_LENGTH = 40
RATING_MIN, RATING_MAX = 1, 5


class Trigger(StrEnum):
    TICKET_OPENED = "ticket_opened"
    TICKET_ESCALATED = "ticket_escalated"
    MESSAGE_CONTAINS = "message_contains"
    CSAT_NEGATIVE = "csat_negative"
    SLA_BREACH = "sla_breach"


class ActionType(StrEnum):
    ADD_TAG = "add_tag"
    ESCALATE = "escalate"
    ASSIGN_ROUND_ROBIN = "assign_round_robin"


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Urgency(StrEnum):
    """The default urgency labels, lowest first; a server may bring its own (``classifier``)."""

    LOW = "low"
    HIGH = "high"
    CRITICAL = "critical"


DEFAULT_URGENCY_LABELS: tuple[str, ...] = tuple(u.value for u in Urgency)


class AuthorKind(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    BOT = "bot"


class TicketSource(StrEnum):
    """Where a ticket came from: its Discord channel, the HTTP ingress, or a simulation."""

    DISCORD = "discord"
    API = "api"
    SIMULATE = "simulate"


class SlaTarget(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


@dataclass(frozen=True, slots=True)
class Ticket:
    """A support ticket. ``id`` is assigned by the store; ``number`` counts per server.

    Frozen: a transition (core/tickets.py) returns a new ticket, and the shell saves the one
    it is given back, so nothing changes a ticket behind anybody's back.
    """

    id: int
    guild_id: str
    number: int
    customer_id: str
    subject: str
    created_at: datetime
    type_id: str | None = None
    body: str = ""
    status: Status = Status.OPEN
    escalated: bool = False
    escalation_reason: str | None = None
    replies_paused: bool = False
    assignee_id: str | None = None
    tags: tuple[str, ...] = ()
    urgency: str | None = None  # a label of the server's classifier; None until known
    first_staff_reply_at: datetime | None = None
    closed_at: datetime | None = None
    rating: int | None = None
    source: TicketSource = TicketSource.DISCORD
    ref: str | None = None
    channel_id: str | None = None
    claimed_by: str | None = None  # who took the escalation from #ops

    @property
    def is_open(self) -> bool:
        return self.status is Status.OPEN

    def has_tag(self, tag: str) -> bool:
        folded = tag.casefold()
        return any(t.casefold() == folded for t in self.tags)


# Events: what happened to a ticket. The engine turns each into a trigger.


@dataclass(frozen=True, slots=True)
class TicketOpened:
    at: datetime


@dataclass(frozen=True, slots=True)
class MessagePosted:
    at: datetime
    author_id: str
    author_kind: AuthorKind
    content: str


@dataclass(frozen=True, slots=True)
class TicketEscalated:
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class TicketRated:
    at: datetime
    rating: int


@dataclass(frozen=True, slots=True)
class SlaBreach:
    at: datetime
    target: SlaTarget


@dataclass(frozen=True, slots=True)
class UrgencyKnown:
    """A ticket's urgency became known after it was opened: a late ``ticket_opened`` for the
    rules with an ``urgency`` condition (the others fired when the ticket opened)."""

    at: datetime


Event = TicketOpened | MessagePosted | TicketEscalated | TicketRated | SlaBreach | UrgencyKnown


# Effects: what the outside world should learn, in order. Adapters render them.


@dataclass(frozen=True, slots=True)
class RuleFired:
    at: datetime
    ticket_id: int
    rule_id: str
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class TagAdded:
    at: datetime
    ticket_id: int
    tag: str
    rule_id: str | None


@dataclass(frozen=True, slots=True)
class Escalated:
    at: datetime
    ticket_id: int
    reason: str
    rule_id: str | None
    rule_name: str | None = None


@dataclass(frozen=True, slots=True)
class Assigned:
    at: datetime
    ticket_id: int
    assignee_id: str
    rule_id: str | None


@dataclass(frozen=True, slots=True)
class AssignmentQueued:
    at: datetime
    ticket_id: int
    rule_id: str | None


@dataclass(frozen=True, slots=True)
class SlaBreached:
    at: datetime
    ticket_id: int
    target: SlaTarget


@dataclass(frozen=True, slots=True)
class AnswerReplied:
    """A saved answer matched a customer's message: the bot replies with it (once per ticket)."""

    at: datetime
    ticket_id: int
    answer_id: int
    text: str


Effect = (
    RuleFired | TagAdded | Escalated | Assigned | AssignmentQueued | SlaBreached | AnswerReplied
)


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What one action of a fired rule did: ``applied`` or a no-op, and why, in words."""

    type: ActionType
    applied: bool
    detail: str
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class Firing:
    """The record of one rule firing, kept so admins can see why a rule did or did not act."""

    at: datetime
    ticket_id: int
    trigger: Trigger
    rule_id: str
    outcomes: tuple[ActionOutcome, ...]
    ticket_number: int | None = None  # known once it is read back from the log
