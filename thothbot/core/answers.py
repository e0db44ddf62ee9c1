"""Saved answers ("answer once, reuse forever"): what makes one valid, which one a message gets."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from thothbot.core.errors import DomainError
from thothbot.core.models import AuthorKind, Ticket

MAX_TRIGGERS = 10
MAX_TRIGGER = 100
MAX_TEXT = 2000  # one Discord message


@dataclass(frozen=True, slots=True)
class SavedAnswer:
    id: int
    triggers: tuple[str, ...]
    text: str


def parse_triggers(raw: str) -> tuple[str, ...]:
    """Comma-separated trigger phrases as typed in ``/answer add``, checked and deduplicated."""
    # Matching ignores case, so "Refund" and "refund" are one phrase.
    by_fold: dict[str, str] = {}
    for phrase in (p.strip() for p in raw.split(",")):
        if phrase:
            by_fold.setdefault(phrase.casefold(), phrase)
    phrases = list(by_fold.values())
    if not phrases:
        raise DomainError(
            "An answer needs at least one trigger phrase (separate them with commas)."
        )
    if len(phrases) > MAX_TRIGGERS:
        raise DomainError(f"An answer can have at most {MAX_TRIGGERS} trigger phrases.")
    for phrase in phrases:
        if len(phrase) > MAX_TRIGGER:
            raise DomainError(
                f"The trigger phrase {phrase[:30]!r}... is {len(phrase)} characters;"
                f" the limit is {MAX_TRIGGER}."
            )
    return tuple(phrases)


def check_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise DomainError("An answer needs some text.")
    if len(text) > MAX_TEXT:
        raise DomainError(f"An answer can be at most {MAX_TEXT} characters (it is {len(text)}).")
    return text


def matching_answers(
    ticket: Ticket, kind: AuthorKind, content: str, answers: Sequence[SavedAnswer]
) -> list[SavedAnswer]:
    """The saved answers whose trigger phrase the customer's message contains
    (case-insensitive), in order; none while bot replies are paused. The shell reads which
    answers the ticket had only when this is not empty."""
    if not answers or kind is not AuthorKind.CUSTOMER or ticket.replies_paused:
        return []
    folded = content.casefold()
    return [a for a in answers if any(t.casefold() in folded for t in a.triggers)]


def first_not_sent(matching: Iterable[SavedAnswer], sent: Collection[int]) -> SavedAnswer | None:
    """The first matching answer the ticket has not had yet (each answer once per ticket)."""
    return next((a for a in matching if a.id not in sent), None)


def answer_for(
    ticket: Ticket,
    kind: AuthorKind,
    content: str,
    answers: Sequence[SavedAnswer],
    sent: Collection[int],
) -> SavedAnswer | None:
    """The answer a customer's message gets, given the answers the ticket had (``sent``)."""
    return first_not_sent(matching_answers(ticket, kind, content, answers), sent)
