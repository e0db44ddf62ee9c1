"""Ticket lifecycle: the transitions people ask for, and why the domain refuses some of them.

A transition returns the ticket as it is after it (tickets are frozen); the shell saves that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
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


def takes_message(ticket: Ticket, kind: AuthorKind) -> bool:
    """Whether a message counts for the ticket (SLA, rules, saved answers): closed tickets and
    bots (the desk's own notices among them) take no messages. Every path asks here."""
    return ticket.is_open and kind is not AuthorKind.BOT


def record_message(ticket: Ticket, kind: AuthorKind, at: datetime) -> tuple[Ticket, bool]:
    """Take a message into account: the ticket after it, and whether it is the first staff
    reply. A closed ticket refuses it (a bot's message changes nothing: ``takes_message``)."""
    if not ticket.is_open:
        raise InvalidTransition(f"Ticket #{ticket.number} is closed; messages are not accepted.")
    if kind is AuthorKind.STAFF and ticket.first_staff_reply_at is None:
        return replace(ticket, first_staff_reply_at=at), True
    return ticket, False


def escalate(ticket: Ticket, reason: str) -> Ticket | None:
    """Escalate and pause bot replies; None (a no-op) when it already is escalated."""
    if ticket.escalated:
        return None
    return replace(ticket, escalated=True, escalation_reason=reason, replies_paused=True)


def escalate_by_staff(ticket: Ticket, reason: str, *, is_staff: bool) -> Ticket:
    if not is_staff:
        raise InvalidTransition("Only staff can escalate a ticket.")
    if not ticket.is_open:
        raise InvalidTransition(f"Ticket #{ticket.number} is closed and cannot be escalated.")
    escalated = escalate(ticket, reason)
    if escalated is None:
        raise InvalidTransition(f"Ticket #{ticket.number} is already escalated.")
    return escalated


def add_tag(ticket: Ticket, tag: str) -> Ticket | str:
    """The ticket with the tag added, or why it was not added, in words."""
    if ticket.has_tag(tag):
        return f'the ticket already has the tag "{tag}"'
    if len(ticket.tags) >= MAX_TAGS:
        return f"the ticket already holds {MAX_TAGS} tags, the most it can"
    return replace(ticket, tags=(*ticket.tags, tag))


def remove_tag(ticket: Ticket, tag: str) -> Ticket | None:
    """The ticket without the tag (any case); None when it has no such tag."""
    folded = tag.casefold()
    kept = tuple(t for t in ticket.tags if t.casefold() != folded)
    return replace(ticket, tags=kept) if len(kept) != len(ticket.tags) else None


def close(ticket: Ticket, by: str, at: datetime, *, is_staff: bool) -> Ticket:
    if by != ticket.customer_id and not is_staff:
        raise InvalidTransition("Only staff or the ticket's customer can close it.")
    if not ticket.is_open:
        raise InvalidTransition(f"Ticket #{ticket.number} is already closed.")
    return replace(ticket, status=Status.CLOSED, closed_at=at)


def rate(ticket: Ticket, by: str, rating: int) -> Ticket:
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
    return replace(ticket, rating=rating)


def assign(ticket: Ticket, agent: str, *, is_staff: bool) -> Ticket | None:
    """Assign by hand (a claim, or /ticket assign); None when it already is this agent's."""
    if not is_staff:
        raise InvalidTransition("Tickets can only be assigned to staff.")
    if not ticket.is_open:
        raise InvalidTransition(f"Ticket #{ticket.number} is closed.")
    if ticket.assignee_id == agent:
        return None
    return replace(ticket, assignee_id=agent)


def assign_round_robin(ticket: Ticket, agent: str) -> Ticket:
    """Round robin chose the agent (its pools hold only staff, so there is nothing to check)."""
    return replace(ticket, assignee_id=agent)


def claim(ticket: Ticket, agent: str, *, is_staff: bool) -> Ticket | None:
    """Take a ticket (an escalation from #ops): it becomes the agent's, whoever round robin
    gave it to. None when the agent already claimed it; nobody claims over another claim
    (reassigning a claimed ticket is ``/ticket assign``'s job)."""
    if not is_staff:
        raise InvalidTransition("Only staff can claim tickets.")
    if ticket.claimed_by == agent:
        return None
    if ticket.claimed_by is not None:
        raise InvalidTransition(f"Ticket #{ticket.number} was already claimed by someone else.")
    assigned = assign(ticket, agent, is_staff=is_staff) or ticket
    return replace(assigned, claimed_by=agent)


def with_urgency(ticket: Ticket, label: str) -> Ticket:
    """The ticket with its urgency label (the classifier's, or staff's)."""
    return replace(ticket, urgency=label)


MAX_SUBJECT = 200
SUBJECT_CUT = "\u2026"  # an ellipsis shows the subject goes on in the description


def subject_and_body(subject: str, body: str) -> tuple[str, str]:
    """A new ticket's subject and description, for every way a ticket opens.

    A subject over ``MAX_SUBJECT`` characters is cut (ending in an ellipsis) rather than
    refused: a refused webhook is sent again by its sender, and a customer's words are never
    dropped, so the whole subject opens the description. A blank subject is refused.
    """
    subject = subject.strip()
    if not subject:
        raise InvalidTransition("A ticket needs a subject.")
    if len(subject) <= MAX_SUBJECT:
        return subject, body
    cut = subject[: MAX_SUBJECT - len(SUBJECT_CUT)].rstrip() + SUBJECT_CUT
    return cut, f"{subject}\n\n{body}" if body.strip() else subject


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


def tag_by_staff(ticket: Ticket, tag: str, *, add: bool, is_staff: bool) -> Ticket:
    if not is_staff:
        raise InvalidTransition("Only staff can change a ticket's tags.")
    tag = tag.strip()
    if not 1 <= len(tag) <= MAX_TAG_LENGTH:
        raise InvalidTransition(f"A tag is 1 to {MAX_TAG_LENGTH} characters.")
    if add:
        tagged = add_tag(ticket, tag)
        if isinstance(tagged, str):
            raise InvalidTransition(tagged[0].upper() + tagged[1:] + ".")
        return tagged
    untagged = remove_tag(ticket, tag)
    if untagged is None:
        raise InvalidTransition(f'The ticket has no tag "{tag}".')
    return untagged


def target_met(deadline: datetime, at: datetime) -> bool:
    """An SLA target met at or before its deadline never breaches."""
    return at <= deadline
