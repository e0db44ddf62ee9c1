"""Ticket lifecycle: the transitions people ask for, and why the domain refuses some of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from thothbot.core.errors import InvalidTransition
from thothbot.core.models import (
    MAX_TAG_LENGTH,
    MAX_TAGS,
    RATING_MAX,
    RATING_MIN,
    AuthorKind,
    Status,
    Ticket,
)


def author_kind(ticket: Ticket, author_id: str, *, is_staff: bool, is_bot: bool) -> AuthorKind:
    """Who wrote a message, as rules and SLA see it; staff on their own ticket count as customer."""
    if is_bot:
        return AuthorKind.BOT
    if author_id == ticket.customer_id or not is_staff:
        return AuthorKind.CUSTOMER
    return AuthorKind.STAFF


def record_message(ticket: Ticket, kind: AuthorKind, at: datetime) -> bool:
    """Take a message into account; True when it is the first staff reply."""
    if not ticket.is_open:
        raise InvalidTransition(f"Ticket #{ticket.number} is closed; messages are not accepted.")
    if kind is AuthorKind.STAFF and ticket.first_staff_reply_at is None:
        ticket.first_staff_reply_at = at
        return True
    return False


def escalate(ticket: Ticket, reason: str) -> bool:
    """Escalate and pause bot replies; False (a no-op) when it already is escalated."""
    if ticket.escalated:
        return False
    ticket.escalated = True
    ticket.escalation_reason = reason
    ticket.replies_paused = True
    return True


def escalate_by_staff(ticket: Ticket, reason: str, *, is_staff: bool) -> None:
    if not is_staff:
        raise InvalidTransition("Only staff can escalate a ticket.")
    if not ticket.is_open:
        raise InvalidTransition(f"Ticket #{ticket.number} is closed and cannot be escalated.")
    if not escalate(ticket, reason):
        raise InvalidTransition(f"Ticket #{ticket.number} is already escalated.")


def add_tag(ticket: Ticket, tag: str) -> str | None:
    """Add a tag; returns why it was not added, or None when it was."""
    if ticket.has_tag(tag):
        return f'the ticket already has the tag "{tag}"'
    if len(ticket.tags) >= MAX_TAGS:
        return f"the ticket already holds {MAX_TAGS} tags, the most it can"
    ticket.tags.append(tag)
    return None


def remove_tag(ticket: Ticket, tag: str) -> bool:
    folded = tag.casefold()
    kept = [t for t in ticket.tags if t.casefold() != folded]
    removed = len(kept) != len(ticket.tags)
    ticket.tags = kept
    return removed


def close(ticket: Ticket, by: str, at: datetime, *, is_staff: bool) -> None:
    if by != ticket.customer_id and not is_staff:
        raise InvalidTransition("Only staff or the ticket's customer can close it.")
    if not ticket.is_open:
        raise InvalidTransition(f"Ticket #{ticket.number} is already closed.")
    ticket.status = Status.CLOSED
    ticket.closed_at = at


def rate(ticket: Ticket, by: str, rating: int) -> None:
    if by != ticket.customer_id:
        raise InvalidTransition("Only the ticket's customer can rate it.")
    if ticket.is_open:
        raise InvalidTransition(
            f"Ticket #{ticket.number} is still open; it can be rated once closed."
        )
    if ticket.rating is not None:
        raise InvalidTransition(f"Ticket #{ticket.number} was already rated {ticket.rating}.")
    if not RATING_MIN <= rating <= RATING_MAX:
        raise InvalidTransition(f"A rating is a whole number from {RATING_MIN} to {RATING_MAX}.")
    ticket.rating = rating


def assign(ticket: Ticket, agent: str, *, is_staff: bool) -> bool:
    """Assign by hand (a claim, or /ticket assign); False when it already is this agent's."""
    if not is_staff:
        raise InvalidTransition("Tickets can only be assigned to staff.")
    if not ticket.is_open:
        raise InvalidTransition(f"Ticket #{ticket.number} is closed.")
    if ticket.assignee_id == agent:
        return False
    ticket.assignee_id = agent
    return True


def claim(ticket: Ticket, agent: str, *, is_staff: bool) -> bool:
    """Take a ticket (an escalation from #ops): it becomes the agent's, whoever round robin
    gave it to. False when the agent already claimed it; nobody claims over another claim
    (reassigning a claimed ticket is ``/ticket assign``'s job)."""
    if not is_staff:
        raise InvalidTransition("Only staff can claim tickets.")
    if ticket.claimed_by == agent:
        return False
    if ticket.claimed_by is not None:
        raise InvalidTransition(f"Ticket #{ticket.number} was already claimed by someone else.")
    assign(ticket, agent, is_staff=is_staff)
    ticket.claimed_by = agent
    return True


DUPLICATE_WINDOW = timedelta(seconds=60)


def check_open_limit(open_tickets: Sequence[Ticket], limit: int) -> None:
    if len(open_tickets) >= limit:
        numbers = ", ".join(f"#{t.number}" for t in open_tickets)
        raise InvalidTransition(
            f"You already have {len(open_tickets)} open"
            f" ticket{'s' if len(open_tickets) != 1 else ''} ({numbers}), the most this"
            " server allows. Close one before opening another."
        )


def duplicate_of(open_tickets: Sequence[Ticket], subject: str, at: datetime) -> Ticket | None:
    """The open ticket with this subject opened within the last minute: a double click."""
    folded = subject.strip().casefold()
    for ticket in open_tickets:
        if ticket.subject.casefold() == folded and at - ticket.created_at <= DUPLICATE_WINDOW:
            return ticket
    return None


def tag_by_staff(ticket: Ticket, tag: str, *, add: bool, is_staff: bool) -> None:
    if not is_staff:
        raise InvalidTransition("Only staff can change a ticket's tags.")
    tag = tag.strip()
    if not 1 <= len(tag) <= MAX_TAG_LENGTH:
        raise InvalidTransition(f"A tag is 1 to {MAX_TAG_LENGTH} characters.")
    if add:
        problem = add_tag(ticket, tag)
        if problem is not None:
            raise InvalidTransition(problem[0].upper() + problem[1:] + ".")
    elif not remove_tag(ticket, tag):
        raise InvalidTransition(f'The ticket has no tag "{tag}".')


def target_met(deadline: datetime, at: datetime) -> bool:
    """An SLA target met at or before its deadline never breaches."""
    return at <= deadline
