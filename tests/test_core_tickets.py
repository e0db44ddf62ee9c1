"""Ticket transitions as values: each returns the ticket after it and leaves the one given alone."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import T0, at
from thothbot.core import tickets
from thothbot.core.engine import Context, RuleSet, run_rules
from thothbot.core.errors import InvalidTransition
from thothbot.core.models import AuthorKind, MessagePosted, Status, Ticket, TicketOpened
from thothbot.core.rules import normalize_rules
from thothbot.core.settings import GuildSettings


def ticket(**overrides: object) -> Ticket:
    return dataclasses.replace(Ticket(7, "g", 3, "U1", "Help", T0), **overrides)


def test_a_ticket_cannot_be_changed_in_place() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ticket().escalated = True  # type: ignore[misc]


def test_transitions_return_a_new_ticket_and_leave_the_given_one_as_it_was() -> None:
    before = ticket()
    steps = [
        tickets.escalate(before, "why"),
        tickets.close(before, "U1", at(1), is_staff=False),
        tickets.assign(before, "S1", is_staff=True),
        tickets.claim(before, "S1", is_staff=True),
        tickets.tag_by_staff(before, "vip", add=True, is_staff=True),
        tickets.record_message(before, AuthorKind.STAFF, at(2))[0],
    ]
    assert all(step is not None and step != before for step in steps)
    assert before == ticket()
    closed = tickets.close(before, "U1", at(1), is_staff=False)
    assert (closed.status, closed.closed_at) == (Status.CLOSED, at(1))
    assert tickets.rate(closed, "U1", 5).rating == 5
    assert closed.rating is None


def test_a_no_op_transition_says_so_and_returns_no_ticket() -> None:
    escalated = tickets.escalate(ticket(), "first")
    assert escalated is not None
    assert tickets.escalate(escalated, "second") is None
    assert tickets.assign(ticket(assignee_id="S1"), "S1", is_staff=True) is None
    assert tickets.remove_tag(ticket(), "absent") is None
    assert tickets.add_tag(ticket(tags=("vip",)), "VIP") == 'the ticket already has the tag "VIP"'


def test_only_the_first_staff_reply_is_recorded() -> None:
    first, is_first = tickets.record_message(ticket(), AuthorKind.STAFF, at(1))
    assert (first.first_staff_reply_at, is_first) == (at(1), True)
    again, is_first = tickets.record_message(first, AuthorKind.STAFF, at(2))
    assert (again, is_first) == (first, False)
    customer, is_first = tickets.record_message(ticket(), AuthorKind.CUSTOMER, at(1))
    assert (customer, is_first) == (ticket(), False)


def test_closed_tickets_and_bots_take_no_messages() -> None:
    closed = ticket(status=Status.CLOSED)
    assert tickets.takes_message(ticket(), AuthorKind.CUSTOMER)
    assert tickets.takes_message(ticket(), AuthorKind.STAFF)
    assert not tickets.takes_message(ticket(), AuthorKind.BOT)
    assert not tickets.takes_message(closed, AuthorKind.CUSTOMER)
    with pytest.raises(InvalidTransition, match="#3 is closed; messages are not accepted"):
        tickets.record_message(closed, AuthorKind.CUSTOMER, at(1))


def test_the_rules_return_the_ticket_they_changed() -> None:
    rules = RuleSet(
        normalize_rules(
            [
                {"id": "o", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]},
                {
                    "id": "m",
                    "trigger": "message_contains",
                    "match": "refund",
                    "actions": [{"type": "add_tag", "tag": "billing"}],
                },
            ]
        ).rules
    )
    context = Context(rules, GuildSettings())
    before = ticket()
    after = run_rules(before, TicketOpened(T0), context).ticket
    assert (after.escalated, before.escalated) == (True, False)
    # A bot's message, and any message to a closed ticket, fires nothing.
    for kind, status in ((AuthorKind.BOT, Status.OPEN), (AuthorKind.CUSTOMER, Status.CLOSED)):
        quiet = ticket(status=status)
        decision = run_rules(quiet, MessagePosted(at(1), "x", kind, "refund please"), context)
        assert decision.ticket is quiet
        assert decision.effects == ()
    # Positive control: the same message from the customer on an open ticket is tagged.
    event = MessagePosted(at(1), "U1", AuthorKind.CUSTOMER, "refund please")
    assert run_rules(ticket(), event, context).ticket.tags == ("billing",)


def test_a_subject_over_the_limit_is_cut_and_kept_whole_in_the_description() -> None:
    long = "Refund " + "x" * 300
    subject, body = tickets.subject_and_body(f"  {long}  ", "My card was charged twice.")
    assert len(subject) == tickets.MAX_SUBJECT
    assert subject == long[: tickets.MAX_SUBJECT - 1] + "…"
    assert body == f"{long}\n\nMy card was charged twice."
    assert tickets.subject_and_body(long, "  ")[1] == long
    # Cutting twice changes nothing more: a reserved opening is cut before it is opened.
    assert tickets.subject_and_body(subject, body) == (subject, body)


def test_a_subject_within_the_limit_is_kept_as_written_and_a_blank_one_is_refused() -> None:
    exact = "y" * tickets.MAX_SUBJECT
    assert tickets.subject_and_body(f" {exact} ", "body") == (exact, "body")
    with pytest.raises(InvalidTransition, match="A ticket needs a subject"):
        tickets.subject_and_body(" \n ", "body")
