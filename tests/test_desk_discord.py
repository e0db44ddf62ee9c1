"""What the Discord side adds: staff roles, claims, the open-ticket limit, saved answers, stats."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.support import T0, Harness, at
from thothbot.core.channels import DiscordSetup, Opening
from thothbot.core.errors import DomainError, InvalidTransition, SettingsInvalid
from thothbot.core.models import (
    MAX_TAG_LENGTH,
    MAX_TAGS,
    AnswerReplied,
    Assigned,
    AssignmentQueued,
    Status,
    Ticket,
    Trigger,
)
from thothbot.core.routing import SERVER_POOL
from thothbot.core.settings import GuildSettings, parse_settings
from thothbot.core.tickets import check_open_limit, claim, duplicate_of, tag_by_staff
from thothbot.service import Desk

G = "guild-1"
ROLE = "111"
SETUP = DiscordSetup(
    G, staff_role_id=ROLE, ops_channel_id="222", log_channel_id=None, categories=("333",)
)
ASSIGN = {"id": "assign", "trigger": "ticket_opened", "actions": [{"type": "assign_round_robin"}]}
REFUND = {
    "id": "refund",
    "trigger": "message_contains",
    "match": "refund",
    "actions": [{"type": "add_tag", "tag": "refund"}, {"type": "escalate"}],
}
# What the ``harness`` fixture saves (tests/conftest.py).
RULES = [ASSIGN, REFUND]
SETTINGS: dict[str, Any] = {"staff": ["S1", "S2"]}


def plain_ticket(number: int = 1, subject: str = "Help", minutes: float = 0) -> Ticket:
    return Ticket(number, "g", number, "U1", subject, at(minutes))


# GuildSettings.with_roster


def test_role_members_join_the_server_staff_once_and_in_order() -> None:
    settings = GuildSettings.model_validate({"staff": ["S1", "u2"]})
    merged = settings.with_roster(ROLE, {ROLE: ["u2", "u3", "u1"], "999": ["x"]})
    assert merged.staff == ["S1", "u2", "u3", "u1"]
    assert merged.is_staff("u3")
    assert not merged.is_staff("x")
    assert merged.pool(None) == (SERVER_POOL, ["S1", "u2", "u3", "u1"])


def test_a_types_role_members_join_that_types_pool_only() -> None:
    settings = GuildSettings.model_validate(
        {"staff": ["S1"], "types": {"billing": {"staff": ["B1"], "staff_role": "444"}, "tech": {}}}
    )
    merged = settings.with_roster(ROLE, {ROLE: ["u1"], "444": ["b2", "B1"]})
    assert merged.staff == ["S1", "u1"]
    assert merged.types["billing"].staff == ["B1", "b2"]
    assert merged.types["tech"].staff == []
    assert merged.pool("billing") == ("billing", ["B1", "b2"])
    assert merged.pool("tech") == (SERVER_POOL, ["S1", "u1"])
    assert merged.is_staff("b2")


def test_a_type_staffed_only_by_its_role_gets_its_own_pool() -> None:
    settings = GuildSettings.model_validate({"types": {"billing": {"staff_role": "444"}}})
    assert settings.pool("billing") == (SERVER_POOL, [])
    merged = settings.with_roster(None, {"444": ["b1"]})
    assert merged.pool("billing") == ("billing", ["b1"])
    assert merged.pools() == {SERVER_POOL: [], "billing": ["b1"]}


def test_unknown_or_missing_roles_add_nobody() -> None:
    settings = GuildSettings.model_validate({"staff": ["S1"], "types": {"b": {"staff_role": "4"}}})
    for merged in (
        settings.with_roster("555", {ROLE: ["u1"]}),
        settings.with_roster(None, {ROLE: ["u1"]}),
        settings.with_roster(ROLE, {}),
    ):
        assert merged.staff == ["S1"]
        assert merged.types["b"].staff == []
        assert not merged.is_staff("u1")


def test_merging_a_roster_leaves_the_original_settings_and_document_alone() -> None:
    document = {
        "staff": ["S1"],
        "types": {"billing": {"label": "Billing", "staff_role": "444"}},
        "sla": {"first_response_minutes": 30},
    }
    settings = GuildSettings.model_validate(document)
    assert settings.to_document() == document
    merged = settings.with_roster(ROLE, {ROLE: ["u1"], "444": ["b1"]})
    assert merged.staff == ["S1", "u1"]
    assert settings.to_document() == document
    assert settings.staff == ["S1"]
    assert settings.types["billing"].staff == []
    assert not settings.is_staff("u1")


@pytest.mark.parametrize("role", ["admins", "12a", "", " 444", "1" * 21, 444])
def test_a_types_staff_role_must_be_a_discord_id(role: Any) -> None:
    with pytest.raises(SettingsInvalid) as caught:
        parse_settings(json.dumps({"types": {"billing": {"staff_role": role}}}))
    assert [path for path, _ in caught.value.problems] == ["types.billing.staff_role"]


def test_a_digit_staff_role_is_accepted_and_round_trips() -> None:
    document = {"types": {"billing": {"staff_role": "1" * 20}}}
    assert parse_settings(json.dumps(document)).settings.to_document() == document


# tickets: claim, the open limit, double clicks, tags by hand


def test_only_staff_can_claim_and_a_refusal_changes_nothing() -> None:
    ticket = plain_ticket()
    with pytest.raises(InvalidTransition, match="Only staff can claim tickets"):
        claim(ticket, "U9", is_staff=False)
    assert (ticket.assignee_id, ticket.claimed_by) == (None, None)


def test_a_claim_takes_the_ticket_from_whoever_round_robin_gave_it_to() -> None:
    ticket = replace(plain_ticket(), assignee_id="S1")
    claimed = claim(ticket, "S2", is_staff=True)
    assert claimed is not None
    assert (claimed.assignee_id, claimed.claimed_by) == ("S2", "S2")
    assert (ticket.assignee_id, ticket.claimed_by) == ("S1", None)  # a new ticket, not a change


def test_claiming_twice_is_a_no_op_and_nobody_claims_over_another_claim() -> None:
    ticket = claim(plain_ticket(7), "S1", is_staff=True)
    assert ticket is not None
    assert claim(ticket, "S1", is_staff=True) is None
    with pytest.raises(InvalidTransition) as caught:
        claim(ticket, "S2", is_staff=True)
    assert str(caught.value) == "Ticket #7 was already claimed by someone else."
    assert (ticket.assignee_id, ticket.claimed_by) == ("S1", "S1")


def test_a_closed_ticket_cannot_be_claimed() -> None:
    ticket = replace(plain_ticket(3), status=Status.CLOSED)
    with pytest.raises(InvalidTransition, match="#3 is closed"):
        claim(ticket, "S1", is_staff=True)
    assert ticket.claimed_by is None


def test_the_open_limit_names_the_open_tickets() -> None:
    mine = [plain_ticket(4), plain_ticket(7), plain_ticket(9)]
    check_open_limit(mine[:2], 3)
    check_open_limit([], 1)
    with pytest.raises(InvalidTransition) as caught:
        check_open_limit(mine, 3)
    assert str(caught.value) == (
        "You already have 3 open tickets (#4, #7, #9), the most this server allows."
        " Close one before opening another."
    )
    with pytest.raises(InvalidTransition, match=r"\(#4\)"):
        check_open_limit(mine[:1], 1)


def test_a_double_click_is_the_same_subject_within_a_minute_in_any_case() -> None:
    other, login = plain_ticket(1, "Billing"), plain_ticket(2, "Login broken")
    mine = [other, login]
    assert duplicate_of(mine, "  LOGIN broken ", at(0)) is login
    assert duplicate_of(mine, "login broken", at(1)) is login  # exactly 60 s
    assert duplicate_of(mine, "login broken", at(1) + timedelta(seconds=1)) is None
    assert duplicate_of(mine, "login", at(0)) is None
    assert duplicate_of([], "login broken", at(0)) is None


def test_staff_add_and_remove_tags_by_hand() -> None:
    ticket = tag_by_staff(plain_ticket(), "  VIP ", add=True, is_staff=True)
    ticket = tag_by_staff(ticket, "billing", add=True, is_staff=True)
    assert ticket.tags == ("VIP", "billing")
    assert tag_by_staff(ticket, "vip", add=False, is_staff=True).tags == ("billing",)


def test_tag_refusals_say_why() -> None:
    ticket = replace(plain_ticket(), tags=("billing",))
    refusals = [
        ("urgent", True, False, "Only staff can change a ticket's tags."),
        ("x" * (MAX_TAG_LENGTH + 1), True, True, "A tag is 1 to 40 characters."),
        ("   ", True, True, "A tag is 1 to 40 characters."),
        ("BILLING", True, True, 'The ticket already has the tag "BILLING".'),
        ("missing", False, True, 'The ticket has no tag "missing".'),
    ]
    for tag, add, is_staff, message in refusals:
        with pytest.raises(InvalidTransition) as caught:
            tag_by_staff(ticket, tag, add=add, is_staff=is_staff)
        assert str(caught.value) == message
    assert ticket.tags == ("billing",)
    assert len(tag_by_staff(ticket, "y" * MAX_TAG_LENGTH, add=True, is_staff=True).tags) == 2


def test_a_ticket_holds_at_most_fifty_tags() -> None:
    ticket = replace(plain_ticket(), tags=tuple(f"t{i}" for i in range(MAX_TAGS)))
    with pytest.raises(InvalidTransition, match="already holds 50 tags, the most it can"):
        tag_by_staff(ticket, "one-more", add=True, is_staff=True)


# The desk on a real SQLite file


async def test_a_customer_may_hold_three_open_discord_tickets_by_default(desk: Desk) -> None:
    mine = [await desk.open_ticket(G, "U1", f"Question {i}", at(i)) for i in range(3)]
    with pytest.raises(InvalidTransition, match=r"3 open tickets \(#1, #2, #3\)"):
        await desk.open_ticket(G, "U1", "One more", at(5))
    # Others are not held back, and closing one makes room again.
    assert (await desk.open_ticket(G, "U2", "Mine", at(6))).number == 4
    await desk.close(mine[1].id, "U1", at(7))
    assert (await desk.open_ticket(G, "U1", "One more", at(8))).number == 5


async def test_the_open_limit_follows_the_settings_and_spares_api_tickets(desk: Desk) -> None:
    await desk.save_settings(G, json.dumps({**SETTINGS, "max_open_tickets": 1}), T0)
    await desk.open_ticket(G, "U1", "First", at(1))
    with pytest.raises(InvalidTransition, match=r"1 open ticket \(#1\)"):
        await desk.open_ticket(G, "U1", "Second", at(2))
    for i in range(5):
        await desk.open_ticket(G, "U1", f"From the API {i}", at(3), source="api", ref=f"r{i}")


async def begun(desk: Desk, customer: str, subject: str, when: datetime) -> Ticket | Opening:
    _, found = await desk.begin_opening(G, customer, subject, when)
    return found


async def test_begin_opening_finds_the_twin_of_a_double_click(desk: Desk) -> None:
    await desk.save_setup(SETUP)
    assert isinstance(await begun(desk, "U1", "Login broken", at(0)), Opening)
    first = await desk.open_ticket(G, "U1", "Login broken", at(0))
    twin = await begun(desk, "U1", " login BROKEN ", at(1))
    assert isinstance(twin, Ticket)
    assert (twin.id, twin.number) == (first.id, first.number)
    assert isinstance(await begun(desk, "U1", "Login broken", at(2)), Opening)  # a minute on
    assert isinstance(await begun(desk, "U2", "Login broken", at(0)), Opening)


async def test_begin_opening_refuses_at_the_limit_but_still_finds_the_twin(desk: Desk) -> None:
    await desk.save_setup(SETUP)
    for i in range(3):
        await desk.open_ticket(G, "U1", f"Question {i}", at(0))
    with pytest.raises(InvalidTransition, match="3 open tickets"):
        await begun(desk, "U1", "Something new", at(0.5))
    twin = await begun(desk, "U1", "question 2", at(0.5))
    assert isinstance(twin, Ticket)
    assert twin.number == 3


async def test_begin_opening_refuses_a_server_not_set_up_or_an_unknown_type(desk: Desk) -> None:
    with pytest.raises(DomainError, match="not set up for tickets yet: an admin runs /setup"):
        await begun(desk, "U1", "Help", at(0))
    await desk.save_setup(SETUP)
    with pytest.raises(DomainError, match=r"no ticket type 'gold' here \(types: none\)"):
        await desk.begin_opening(G, "U1", "Help", at(0), type_id="gold")
    config, opening = await desk.begin_opening(G, "U1", "Help", at(0))
    assert config.setup == SETUP
    assert isinstance(opening, Opening)
    assert opening.number == 1  # nothing refused took a number


async def test_a_reserved_number_is_kept_and_the_next_ticket_follows_it(desk: Desk) -> None:
    await desk.open_ticket(G, "U1", "Before", at(0))
    number = await desk.reserve_number(G)
    assert number == 2
    ticket = await desk.open_ticket(G, "U2", "Named channel", at(1), number=number)
    assert ticket.number == number
    assert (await desk.ticket(ticket.id)).number == number
    assert (await desk.open_ticket(G, "U3", "After", at(2))).number == number + 1


async def test_a_reserved_number_left_unused_is_skipped(desk: Desk) -> None:
    assert await desk.reserve_number(G) == 1
    assert await desk.reserve_number(G) == 2
    assert await desk.reserve_number("other-guild") == 1
    assert (await desk.open_ticket(G, "U1", "After", at(0))).number == 3


async def test_a_claim_assigns_the_ticket_and_publishes_it(harness: Harness, desk: Desk) -> None:
    ticket = await desk.open_ticket(G, "U1", "Outage", at(0))
    assert ticket.assignee_id == "S1"  # round robin
    harness.take()
    claimed, effects = await desk.claim(ticket.id, "S2", at(1))
    assert effects == [Assigned(at(1), ticket.id, "S2", None)]
    assert harness.take() == effects
    stored = await desk.ticket(ticket.id)
    assert (stored.assignee_id, stored.claimed_by) == ("S2", "S2")
    assert claimed == stored  # as saved: the bot answers without reading it again
    assert await desk.claim(ticket.id, "S2", at(2)) == (stored, [])


async def test_a_second_claimer_and_a_non_staff_claimer_are_refused(desk: Desk) -> None:
    ticket = await desk.open_ticket(G, "U1", "Outage", at(0))
    await desk.claim(ticket.id, "S2", at(1))
    with pytest.raises(InvalidTransition, match="already claimed by someone else"):
        await desk.claim(ticket.id, "S1", at(2))
    with pytest.raises(InvalidTransition, match="Only staff can claim"):
        await desk.claim(ticket.id, "U7", at(3))
    stored = await desk.ticket(ticket.id)
    assert (stored.assignee_id, stored.claimed_by) == ("S2", "S2")


async def test_a_claim_takes_the_ticket_out_of_the_queue(harness: Harness, desk: Desk) -> None:
    for agent in ("S1", "S2"):
        await desk.set_duty(G, agent, False, T0)
    ticket = await desk.open_ticket(G, "U1", "Anyone?", at(0))
    assert isinstance(harness.take()[-1], AssignmentQueued)
    await desk.claim(ticket.id, "S1", at(1))
    assert await desk.store.run(lambda tx: list(tx.queue(G))) == []
    assert await desk.set_duty(G, "S2", True, at(2)) == []


async def test_a_claim_frees_the_previous_assignees_capacity_for_the_queue(
    harness: Harness, desk: Desk
) -> None:
    await desk.save_settings(G, json.dumps({**SETTINGS, "capacity": 1}), T0)
    first = await desk.open_ticket(G, "U1", "First", at(0))  # S1
    await desk.open_ticket(G, "U2", "Second", at(1))  # S2
    third = await desk.open_ticket(G, "U3", "Third", at(2))  # queued: both are full
    assert (first.assignee_id, third.assignee_id) == ("S1", None)
    harness.take()
    # Capacity does not apply to a claim: S2 takes #1, so S1 has room for #3.
    _, effects = await desk.claim(first.id, "S2", at(3))
    assert Assigned(at(3), third.id, "S1", "assign") in effects
    assert (await desk.ticket(third.id)).assignee_id == "S1"


async def test_tags_by_hand_are_saved(desk: Desk) -> None:
    ticket = await desk.open_ticket(G, "U1", "Question", at(0))
    assert (await desk.tag(ticket.id, "vip", "S1", add=True)).tags == ("vip",)
    assert (await desk.ticket(ticket.id)).tags == ("vip",)
    with pytest.raises(InvalidTransition, match="Only staff"):
        await desk.tag(ticket.id, "vip", "U1", add=False)
    await desk.tag(ticket.id, "VIP", "S2", add=False)
    assert (await desk.ticket(ticket.id)).tags == ()


# Staff by role


async def test_members_of_the_staff_role_are_staff_until_they_leave_it(
    harness: Harness, desk: Desk
) -> None:
    await desk.save_settings(G, json.dumps({"staff": []}), T0)
    await desk.save_setup(SETUP)
    assert (await desk.config(G)).setup == SETUP
    with pytest.raises(DomainError, match="Only staff"):
        await desk.set_duty(G, "u9", True, at(0))

    assert await desk.save_roster(G, {ROLE: ["u9"]}, at(1)) == []
    assert (await desk.config(G)).settings.is_staff("u9")
    assert await desk.set_duty(G, "u9", True, at(2)) == []
    picked = await desk.open_ticket(G, "U1", "Round robin", at(3))
    assert picked.assignee_id == "u9"
    other = await desk.open_ticket(G, "U2", "To claim", at(4))
    assert (await desk.ticket(other.id)).assignee_id == "u9"
    await desk.save_settings(G, json.dumps({"staff": ["S1"]}), at(5))
    await desk.claim(other.id, "u9", at(6))
    assert (await desk.ticket(other.id)).claimed_by == "u9"

    assert await desk.save_roster(G, {ROLE: []}, at(7)) == []
    assert not (await desk.config(G)).settings.is_staff("u9")
    with pytest.raises(DomainError, match="Only staff"):
        await desk.set_duty(G, "u9", False, at(8))
    fresh = await desk.open_ticket(G, "U3", "After", at(9))
    with pytest.raises(InvalidTransition, match="Only staff can claim"):
        await desk.claim(fresh.id, "u9", at(10))
    assert fresh.assignee_id == "S1"


async def test_a_role_member_message_counts_as_the_first_staff_reply(desk: Desk) -> None:
    await desk.save_setup(SETUP)
    await desk.save_roster(G, {ROLE: ["u9"]}, at(0))
    ticket = await desk.open_ticket(G, "U1", "Hello", at(0))
    await desk.post_message(ticket.id, "u9", "Hi, I am on it", at(3))
    assert (await desk.ticket(ticket.id)).first_staff_reply_at == at(3)


async def test_saving_the_roster_assigns_a_waiting_ticket_to_a_new_member(
    harness: Harness, desk: Desk
) -> None:
    await desk.save_settings(G, json.dumps({"staff": []}), T0)
    await desk.save_setup(SETUP)
    ticket = await desk.open_ticket(G, "U1", "Nobody here", at(0))
    assert harness.take()[-1] == AssignmentQueued(at(0), ticket.id, "assign")
    # The same roster twice changes nothing and assigns nothing.
    assert await desk.save_roster(G, {ROLE: []}, at(1)) == []
    effects = await desk.save_roster(G, {ROLE: ["u9"]}, at(2))
    assert effects == [Assigned(at(2), ticket.id, "u9", "assign")]
    assert harness.take() == effects
    assert (await desk.ticket(ticket.id)).assignee_id == "u9"
    assert await desk.store.run(lambda tx: list(tx.queue(G))) == []
    assert await desk.save_roster(G, {ROLE: ["u9"]}, at(3)) == []


async def test_a_types_role_members_take_that_types_tickets(desk: Desk) -> None:
    settings = {"staff": ["S1"], "types": {"billing": {"staff_role": "444"}}}
    await desk.save_settings(G, json.dumps(settings), T0)
    await desk.save_setup(SETUP)
    await desk.save_roster(G, {ROLE: [], "444": ["b1"]}, at(0))
    billing = await desk.open_ticket(G, "U1", "Invoice", at(1), type_id="billing")
    general = await desk.open_ticket(G, "U2", "Other", at(2))
    assert (billing.assignee_id, general.assignee_id) == ("b1", "S1")


async def test_the_settings_export_is_the_saved_document_even_with_a_roster(desk: Desk) -> None:
    document = {
        "staff": ["S1"],
        "types": {"billing": {"label": "Billing", "staff_role": "444"}},
        "max_open_tickets": 5,
        "sla": {"first_response_minutes": 30},
    }
    await desk.save_settings(G, json.dumps(document), T0)
    await desk.save_setup(SETUP)
    await desk.save_roster(G, {ROLE: ["u9"], "444": ["b1"]}, at(0))
    config = await desk.config(G)
    assert config.settings.staff == ["S1", "u9"]
    assert config.settings.types["billing"].staff == ["b1"]
    assert config.document == document
    assert parse_settings(json.dumps(config.document)).settings.staff == ["S1"]


# Saved answers


async def add_answer(desk: Desk, triggers: tuple[str, ...], text: str) -> int:
    answer = await desk.add_answer(G, ", ".join(triggers), text, "S1", T0)
    assert answer.triggers == triggers
    return answer.id


def replies(effects: list[Any]) -> list[AnswerReplied]:
    return [e for e in effects if isinstance(e, AnswerReplied)]


async def test_a_saved_answer_is_sent_once_per_ticket(harness: Harness, desk: Desk) -> None:
    answer_id = await add_answer(desk, ("password", "log in"), "Use the reset link.")
    ticket = await desk.open_ticket(G, "U1", "Help", at(0))
    effects = await desk.post_message(ticket.id, "U1", "I forgot my PASSWORD", at(1))
    assert replies(effects) == [AnswerReplied(at(1), ticket.id, answer_id, "Use the reset link.")]
    assert replies(harness.take()) == replies(effects)
    assert replies(await desk.post_message(ticket.id, "U1", "still cannot log in", at(2))) == []
    # Another ticket gets its own reply.
    other = await desk.open_ticket(G, "U2", "Help too", at(3))
    again = await desk.post_message(other.id, "U2", "password?", at(4))
    assert [r.ticket_id for r in replies(again)] == [other.id]


async def test_staff_messages_get_no_saved_answer(desk: Desk) -> None:
    await add_answer(desk, ("password",), "Use the reset link.")
    ticket = await desk.open_ticket(G, "U1", "Help", at(0))
    assert replies(await desk.post_message(ticket.id, "S1", "your password?", at(1))) == []
    assert replies(await desk.post_message(ticket.id, "bot", "password", at(2), is_bot=True)) == []
    # The answer was not used up: the customer still gets it.
    assert len(replies(await desk.post_message(ticket.id, "U1", "password", at(3)))) == 1


async def test_an_escalated_ticket_gets_no_saved_answer(desk: Desk) -> None:
    await add_answer(desk, ("password",), "Use the reset link.")
    await add_answer(desk, ("refund",), "Refunds take 5 days.")
    escalated = await desk.open_ticket(G, "U1", "Help", at(0))
    await desk.escalate(escalated.id, "S1", at(1))
    assert replies(await desk.post_message(escalated.id, "U1", "password", at(2))) == []
    # A message that escalates through a rule gets no answer either.
    ticket = await desk.open_ticket(G, "U2", "Money", at(3))
    effects = await desk.post_message(ticket.id, "U2", "refund please", at(4))
    assert (await desk.ticket(ticket.id)).escalated
    assert replies(effects) == []
    # The control: the same words in a ticket that is not escalated get the answer.
    calm = await desk.open_ticket(G, "U3", "Help", at(5))
    assert len(replies(await desk.post_message(calm.id, "U3", "password", at(6)))) == 1


async def test_the_next_matching_answer_follows_one_already_sent(desk: Desk) -> None:
    first = await add_answer(desk, ("invoice",), "Invoices are in your account.")
    second = await add_answer(desk, ("invoice", "vat"), "VAT is included.")
    ticket = await desk.open_ticket(G, "U1", "Billing", at(0))
    got = [
        r.answer_id
        for m in range(1, 4)
        for r in replies(await desk.post_message(ticket.id, "U1", "invoice", at(m)))
    ]
    assert got == [first, second]
    assert await desk.store.run(lambda tx: sorted(tx.answers_sent(ticket.id))) == [first, second]


# Dry run


async def test_a_dry_run_shows_what_rules_would_do_and_saves_nothing(desk: Desk) -> None:
    rules = [
        ASSIGN,
        {
            "id": "money",
            "trigger": "message_contains",
            "match": "refund",
            "actions": [{"type": "add_tag", "tag": "refund"}, {"type": "assign_round_robin"}],
        },
        {
            "id": "other",
            "trigger": "message_contains",
            "match": "invoice",
            "actions": [{"type": "add_tag", "tag": "billing"}],
        },
    ]
    await desk.save_rules(G, json.dumps(rules))
    ticket = await desk.open_ticket(G, "U1", "Existing", at(0))
    assert ticket.assignee_id == "S1"

    def snapshot(tx: Any) -> tuple[Any, ...]:
        return (
            [t.id for t in tx.tickets_since(G, T0 - timedelta(days=365))],
            tx.recent_firings(G, 100),
            tx.routing_state(G, None).pointers,
            tx.revision(G),
        )

    before = await desk.store.run(snapshot)
    firings = await desk.dry_run(G, "I want a REFUND", at(1))
    assert [(f.rule_id, f.trigger) for f in firings] == [("money", Trigger.MESSAGE_CONTAINS)]
    assert [(o.type, o.applied) for o in firings[0].outcomes] == [
        ("add_tag", True),
        ("assign_round_robin", True),
    ]
    assert firings[0].outcomes[1].detail == "assigned to S2"
    assert await desk.dry_run(G, "hello", at(2)) == []
    assert await desk.store.run(snapshot) == before
    # The round robin pointer did not move: the next ticket still goes to S2.
    assert (await desk.open_ticket(G, "U2", "Next", at(3))).assignee_id == "S2"


# Stats


async def test_stats_count_the_last_thirty_days(desk: Desk) -> None:
    settings = {**SETTINGS, "sla": {"first_response_minutes": 30}}
    await desk.save_settings(G, json.dumps(settings), T0)
    day = 24 * 60
    old = await desk.open_ticket(G, "U0", "Long ago", at(0))
    await desk.process_due(at(60))  # breaches long ago
    await desk.close(old.id, "S1", at(61))
    await desk.rate(old.id, "U0", 1, at(62))

    start = 35 * day
    fast = await desk.open_ticket(G, "U1", "Fast", at(start))
    slow = await desk.open_ticket(G, "U2", "Slow", at(start))
    still_open = await desk.open_ticket(G, "U3", "Open", at(start))
    await desk.post_message(fast.id, "S1", "Here", at(start + 10))
    await desk.post_message(still_open.id, "S2", "Here", at(start + 20))
    await desk.process_due(at(start + 40))  # slow breaches
    await desk.post_message(slow.id, "S2", "Sorry", at(start + 50))
    for ticket, rating in ((fast, 5), (slow, 2)):
        await desk.close(ticket.id, ticket.customer_id, at(start + 60))
        await desk.rate(ticket.id, ticket.customer_id, rating, at(start + 61))

    stats = await desk.stats(G, at(40 * day))
    assert (stats.opened, stats.open_now, stats.closed) == (3, 1, 2)
    assert (stats.rated, stats.csat) == (2, 0.5)
    assert stats.median_first_response == timedelta(minutes=20)
    assert stats.breaches == 1
    everything = await desk.stats(G, at(40 * day), days=60)
    assert (everything.opened, everything.rated, everything.breaches) == (4, 3, 2)


# Restarts


async def test_setup_roster_and_answers_survive_a_restart(harness: Harness, desk: Desk) -> None:
    await desk.save_settings(G, json.dumps({"staff": []}), T0)
    await desk.save_setup(SETUP)
    await desk.save_roster(G, {ROLE: ["u9", "u8"]}, at(0))
    answer_id = await add_answer(desk, ("password",), "Use the reset link.")
    ticket = await desk.open_ticket(G, "U1", "Help", at(1))
    assert ticket.assignee_id == "u8"
    await desk.post_message(ticket.id, "U1", "password", at(2))

    desk = await harness.restart()
    config = await desk.config(G)
    assert config.setup == SETUP
    assert config.settings.staff == ["u8", "u9"]
    assert [(a.id, a.triggers, a.text) for a in config.answers] == [
        (answer_id, ("password",), "Use the reset link.")
    ]
    assert await desk.store.run(lambda tx: tx.roster(G)) == {ROLE: ["u8", "u9"]}
    assert await desk.store.run(lambda tx: tx.answers_sent(ticket.id)) == [answer_id]
    assert replies(await desk.post_message(ticket.id, "U1", "password!", at(3))) == []
    assert (await desk.open_ticket(G, "U2", "Next", at(4))).assignee_id == "u9"
