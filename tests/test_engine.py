"""The rules engine on plain values: which rules fire, what their actions do, and the cascade."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tests import support
from tests.support import T0, at
from thothbot.core.engine import MAX_DEPTH, Context, Decision, RuleSet, run_rules
from thothbot.core.models import (
    MAX_TAGS,
    ActionType,
    Assigned,
    AssignmentQueued,
    AuthorKind,
    Escalated,
    Event,
    MessagePosted,
    RuleFired,
    SlaBreach,
    SlaTarget,
    Status,
    TagAdded,
    Ticket,
    TicketEscalated,
    TicketOpened,
    TicketRated,
    Trigger,
)
from thothbot.core.routing import QueuedTicket, RoutingState, drain_queue
from thothbot.core.rules import normalize_rules
from thothbot.core.settings import GuildSettings


def rules(*raw: dict[str, Any]) -> RuleSet:
    validation = normalize_rules(list(raw))
    assert not validation.dropped, validation.problems
    return RuleSet(validation.rules)


# The engine's effects name a ticket by its id, here 7, apart from its number, 1.
ticket = functools.partial(support.ticket, id=7)


def run(
    ruleset: RuleSet,
    event: Event,
    t: Ticket | None = None,
    settings: GuildSettings | None = None,
    routing: RoutingState | None = None,
) -> tuple[Ticket, Decision]:
    context = Context(ruleset, settings or GuildSettings(), routing or RoutingState())
    decision = run_rules(t or ticket(), event, context)
    return decision.ticket, decision


def fired(decision: Decision) -> list[str]:
    return [e.rule_id for e in decision.effects if isinstance(e, RuleFired)]


def message(content: str, kind: AuthorKind = AuthorKind.CUSTOMER, author: str = "U1") -> Event:
    return MessagePosted(at(1), author, kind, content)


def tag(name: str) -> dict[str, str]:
    return {"type": "add_tag", "tag": name}


ESCALATE = {"type": "escalate"}
ASSIGN = {"type": "assign_round_robin"}


def test_every_matching_rule_fires_in_array_order() -> None:
    ruleset = rules(
        {"id": "a", "trigger": "ticket_opened", "actions": [tag("one")]},
        {"id": "b", "trigger": "message_contains", "match": "x", "actions": [tag("nope")]},
        {"id": "c", "trigger": "ticket_opened", "actions": [tag("two")]},
    )
    t, decision = run(ruleset, TicketOpened(T0))
    assert fired(decision) == ["a", "c"]
    assert t.tags == ("one", "two")
    assert [type(e) for e in decision.effects] == [RuleFired, TagAdded, RuleFired, TagAdded]


def test_disabled_rules_never_fire() -> None:
    ruleset = rules(
        {"id": "a", "enabled": False, "trigger": "ticket_opened", "actions": [ESCALATE]}
    )
    t, decision = run(ruleset, TicketOpened(T0))
    assert decision.effects == ()
    assert not t.escalated


def test_ticket_type_scopes_a_rule() -> None:
    ruleset = rules(
        {
            "id": "billing",
            "trigger": "ticket_opened",
            "ticketTypeId": "billing",
            "actions": [tag("b")],
        }
    )
    assert fired(run(ruleset, TicketOpened(T0), ticket(type_id="billing"))[1]) == ["billing"]
    assert fired(run(ruleset, TicketOpened(T0), ticket(type_id="tech"))[1]) == []
    assert fired(run(ruleset, TicketOpened(T0), ticket(type_id=None))[1]) == []


@pytest.mark.parametrize(
    ("match", "content", "fires"),
    [
        ("refund", "I want a REFUND now", True),
        ("Straße", "wrong STRASSE on the label", True),
        ("STRASSE", "ich wohne in der straße", True),
        ("refund", "re fund", False),
        ("   padded   ", "no padding needed: padded", True),
    ],
)
def test_message_contains_is_a_casefolded_substring(match: str, content: str, fires: bool) -> None:
    ruleset = rules(
        {"id": "m", "trigger": "message_contains", "match": match, "actions": [tag("t")]}
    )
    assert bool(fired(run(ruleset, message(content))[1])) is fires


@pytest.mark.parametrize(
    ("kind", "fires"),
    [(AuthorKind.CUSTOMER, True), (AuthorKind.STAFF, True), (AuthorKind.BOT, False)],
)
def test_message_contains_fires_for_people_never_for_bots(kind: AuthorKind, fires: bool) -> None:
    ruleset = rules(
        {"id": "m", "trigger": "message_contains", "match": "hi", "actions": [tag("t")]}
    )
    assert bool(fired(run(ruleset, message("hi there", kind))[1])) is fires


def test_message_contains_never_fires_on_a_closed_ticket() -> None:
    ruleset = rules(
        {"id": "m", "trigger": "message_contains", "match": "hi", "actions": [tag("t")]}
    )
    closed = ticket(status=Status.CLOSED, closed_at=T0)
    assert run(ruleset, message("hi"), closed)[1].effects == ()


def test_the_opening_subject_is_not_a_message() -> None:
    ruleset = rules(
        {"id": "m", "trigger": "message_contains", "match": "refund", "actions": [ESCALATE]}
    )
    t, decision = run(ruleset, TicketOpened(T0), ticket(subject="refund", body="refund please"))
    assert decision.effects == ()
    assert not t.escalated


def test_add_tag_skips_a_tag_the_ticket_has_in_any_case() -> None:
    ruleset = rules({"id": "a", "trigger": "ticket_opened", "actions": [tag("VIP")]})
    t, decision = run(ruleset, TicketOpened(T0), ticket(tags=("vip",)))
    assert t.tags == ("vip",)
    assert [type(e) for e in decision.effects] == [RuleFired]
    (firing,) = decision.firings
    assert not firing.outcomes[0].applied
    assert "already has the tag" in firing.outcomes[0].detail


def test_a_ticket_holds_at_most_fifty_tags() -> None:
    ruleset = rules({"id": "a", "trigger": "ticket_opened", "actions": [tag("one-more")]})
    full = ticket(tags=tuple(f"t{i}" for i in range(MAX_TAGS)))
    t, decision = run(ruleset, TicketOpened(T0), full)
    assert len(t.tags) == MAX_TAGS
    assert "one-more" not in t.tags
    assert "50 tags" in decision.firings[0].outcomes[0].detail


def test_escalate_pauses_replies_records_reason_and_raises_ticket_escalated() -> None:
    ruleset = rules(
        {"id": "esc", "name": "Refunds", "trigger": "ticket_opened", "actions": [ESCALATE]},
        {"id": "after", "trigger": "ticket_escalated", "actions": [tag("escalated")]},
    )
    t, decision = run(ruleset, TicketOpened(T0))
    assert t.escalated
    assert t.replies_paused
    assert t.escalation_reason == "Automation: Refunds"
    assert fired(decision) == ["esc", "after"]
    escalated = [e for e in decision.effects if isinstance(e, Escalated)]
    assert escalated == [Escalated(T0, 7, "Automation: Refunds", "esc", "Refunds")]


def test_escalation_reason_uses_the_id_when_the_rule_has_no_name() -> None:
    t, _ = run(
        rules({"id": "r-9", "trigger": "ticket_opened", "actions": [ESCALATE]}), TicketOpened(T0)
    )
    assert t.escalation_reason == "Automation: r-9"


def test_escalating_an_escalated_ticket_is_a_no_op() -> None:
    ruleset = rules(
        {"id": "esc", "trigger": "ticket_opened", "actions": [ESCALATE]},
        {"id": "after", "trigger": "ticket_escalated", "actions": [tag("x")]},
    )
    already = ticket(escalated=True, escalation_reason="by hand", replies_paused=True)
    t, decision = run(ruleset, TicketOpened(T0), already)
    assert t.escalation_reason == "by hand"
    assert fired(decision) == ["esc"]
    assert decision.firings[0].outcomes[0].detail == "no-op: the ticket is already escalated"


def test_raised_events_run_after_all_rules_of_the_current_event() -> None:
    ruleset = rules(
        {"id": "first", "trigger": "ticket_opened", "actions": [ESCALATE]},
        {"id": "on-esc", "trigger": "ticket_escalated", "actions": [tag("esc")]},
        {"id": "second", "trigger": "ticket_opened", "actions": [tag("open")]},
    )
    t, decision = run(ruleset, TicketOpened(T0))
    assert fired(decision) == ["first", "second", "on-esc"]
    assert t.tags == ("open", "esc")


def test_each_rule_fires_at_most_once_per_cascade() -> None:
    ruleset = rules(
        {"id": "both", "trigger": "ticket_escalated", "actions": [tag("seen")]},
    )
    # A staff escalation is the incoming event; the rule fires once even though nothing stops it.
    _, decision = run(ruleset, TicketEscalated(T0, "by hand"))
    assert fired(decision) == ["both"]


def test_an_escalating_escalation_rule_cannot_loop() -> None:
    ruleset = rules({"id": "again", "trigger": "ticket_escalated", "actions": [ESCALATE]})
    t, decision = run(ruleset, TicketEscalated(T0, "raised elsewhere"))
    assert fired(decision) == ["again"]
    assert t.escalation_reason == "Automation: again"


def test_the_cascade_depth_limit_stops_raised_events(monkeypatch: pytest.MonkeyPatch) -> None:
    # With escalate as the only raising action a cascade never gets past two levels, so
    # lower the limit to see the guard work.
    assert MAX_DEPTH == 3
    monkeypatch.setattr("thothbot.core.engine.MAX_DEPTH", 1)
    ruleset = rules(
        {"id": "esc", "trigger": "ticket_opened", "actions": [ESCALATE]},
        {"id": "after", "trigger": "ticket_escalated", "actions": [tag("x")]},
    )
    t, decision = run(ruleset, TicketOpened(T0))
    assert t.escalated
    assert fired(decision) == ["esc"]
    assert "depth limit" in decision.firings[0].outcomes[0].detail


def test_csat_negative_fires_at_or_below_the_threshold_without_reopening() -> None:
    ruleset = rules({"id": "sad", "trigger": "csat_negative", "actions": [tag("sad"), ESCALATE]})
    closed = {"status": Status.CLOSED, "closed_at": T0}
    for rating, fires in [(1, True), (2, True), (3, False), (5, False)]:
        t, decision = run(ruleset, TicketRated(at(5), rating), ticket(rating=rating, **closed))
        assert bool(fired(decision)) is fires, rating
        assert t.status is Status.CLOSED
    strict = GuildSettings(csat_negative_max=1)
    assert fired(run(ruleset, TicketRated(at(5), 2), ticket(**closed), strict)[1]) == []
    t, _ = run(ruleset, TicketRated(at(5), 1), ticket(**closed), strict)
    assert t.escalated
    assert t.status is Status.CLOSED


def test_sla_breach_fires_its_rules_on_open_tickets_only() -> None:
    ruleset = rules({"id": "late", "trigger": "sla_breach", "actions": [tag("late")]})
    breach = SlaBreach(at(30), SlaTarget.FIRST_RESPONSE)
    assert fired(run(ruleset, breach)[1]) == ["late"]
    assert fired(run(ruleset, breach, ticket(status=Status.CLOSED))[1]) == []


def test_every_firing_is_recorded_with_each_action_outcome() -> None:
    ruleset = rules(
        {"id": "r", "trigger": "ticket_opened", "actions": [tag("a"), tag("A"), ESCALATE]},
    )
    _, decision = run(ruleset, TicketOpened(T0))
    (firing,) = decision.firings
    assert (firing.at, firing.ticket_id, firing.trigger, firing.rule_id) == (
        T0, 7, Trigger.TICKET_OPENED, "r"
    )  # fmt: skip
    assert [(o.type, o.applied) for o in firing.outcomes] == [
        (ActionType.ADD_TAG, True),
        (ActionType.ADD_TAG, False),
        (ActionType.ESCALATE, True),
    ]


class TestRoundRobin:
    settings = GuildSettings(staff=["S1", "S2", "S3"])
    ruleset = rules({"id": "rr", "trigger": "ticket_opened", "actions": [ASSIGN]})

    def assign(self, routing: RoutingState, **kw: Any) -> tuple[Ticket, Decision]:
        return run(self.ruleset, TicketOpened(T0), ticket(**kw), self.settings, routing)

    def test_walks_the_pool_in_order_continuing_after_the_last_assignee(self) -> None:
        routing = RoutingState(pointers={"": "S2"})
        assignees = []
        for i in range(4):
            t, decision = self.assign(routing, id=i)
            assert decision.routing is not None
            routing = decision.routing
            assignees.append(t.assignee_id)
        assert assignees == ["S3", "S1", "S2", "S3"]
        assert routing.moved_pointers == {""}
        assert routing.load == {"S1": 1, "S2": 1, "S3": 2}

    def test_skips_agents_off_duty_or_at_capacity(self) -> None:
        routing = RoutingState(capacity=2, off_duty=frozenset({"S1"}), load={"S2": 2})
        t, decision = self.assign(routing)
        assert t.assignee_id == "S3"
        assert decision.effects[-1] == Assigned(T0, 7, "S3", "rr")

    def test_queues_when_nobody_is_eligible(self) -> None:
        routing = RoutingState(off_duty=frozenset({"S1", "S2", "S3"}))
        t, decision = self.assign(routing)
        assert t.assignee_id is None
        assert decision.effects[-1] == AssignmentQueued(T0, 7, "rr")
        assert [q.ticket_id for q in decision.queued] == [7]
        assert decision.routing is not None
        assert decision.routing.queued == {7}
        # Queued once: a second round robin on the same ticket is a no-op.
        _, again = run(self.ruleset, TicketOpened(T0), t, self.settings, decision.routing)
        assert again.queued == ()
        assert "already waiting" in again.firings[0].outcomes[0].detail

    def test_leaves_an_assigned_ticket_alone(self) -> None:
        routing = RoutingState()
        t, decision = self.assign(routing, assignee_id="S9")
        assert t.assignee_id == "S9"
        assert "already assigned" in decision.firings[0].outcomes[0].detail
        assert decision.routing is routing

    def test_a_type_with_its_own_staff_uses_its_own_pool_and_pointer(self) -> None:
        settings = GuildSettings.model_validate(
            {"staff": ["S1", "S2"], "types": {"billing": {"staff": ["B1", "B2"]}}}
        )
        routing = RoutingState()
        for i, expected in enumerate(["B1", "B2", "B1"]):
            billing = ticket(id=i, type_id="billing")
            t, decision = run(self.ruleset, TicketOpened(T0), billing, settings, routing)
            assert t.assignee_id == expected
            assert decision.routing is not None
            routing = decision.routing
        other = ticket(id=9, type_id="other")
        t, decision = run(self.ruleset, TicketOpened(T0), other, settings, routing)
        assert t.assignee_id == "S1"
        assert decision.routing is not None
        assert decision.routing.pointers == {"billing": "B1", "": "S1"}


def picture(*values: object) -> str:
    """Every field of ``values``, down to the contents of their tuples, sets and mappings:
    equal pictures taken before and after a call mean the call changed none of them."""
    return repr(values)


class TestInputsStayAsGiven:
    """The engine takes values and returns values: what the caller hands in never changes."""

    settings = GuildSettings(staff=["S1", "S2"])
    ruleset = rules(
        {"id": "open", "trigger": "ticket_opened", "actions": [tag("new"), ESCALATE, ASSIGN]},
        {"id": "esc", "trigger": "ticket_escalated", "actions": [tag("hot"), ASSIGN]},
    )

    @pytest.mark.parametrize(
        "routing",
        [
            RoutingState(capacity=1, load={"S2": 1}, pointers={"": "S2"}),  # S1 takes it
            RoutingState(off_duty=frozenset({"S1", "S2"})),  # nobody can: it queues
        ],
        ids=["assigned", "queued"],
    )
    def test_run_rules_leaves_the_ticket_and_the_routing_state_unchanged(
        self, routing: RoutingState
    ) -> None:
        given = ticket()
        context = Context(self.ruleset, self.settings, routing)
        before = picture(given), picture(context.routing, context.settings)
        decision = run_rules(given, TicketOpened(T0), context)
        assert (picture(given), picture(context.routing, context.settings)) == before
        # Positive control: the pictures show what the rules changed, so a run that turned
        # the given ticket or state into the ones it returns would have failed above.
        assert decision.ticket.tags == ("new", "hot")
        assert picture(decision.ticket) != before[0]
        assert picture(decision.routing, context.settings) != before[1]

    def test_drain_queue_leaves_the_routing_state_unchanged(self) -> None:
        queue = [QueuedTicket(i, None, "open", at(i)) for i in (3, 4, 5)]
        state = RoutingState(capacity=1, pointers={"": "S1"}, queued=frozenset({3}))
        before = picture(state, queue)
        drained = drain_queue(queue, self.settings.pool, self.settings.pools(), state)
        assert picture(state, queue) == before
        assert [(entry.ticket_id, agent) for entry, agent in drained.assignments] == [
            (3, "S2"),
            (4, "S1"),
        ]
        # Positive control: the state as it leaves is a different picture.
        assert picture(drained.routing, queue) != before
        assert drained.routing.load == {"S1": 1, "S2": 1}
        assert drained.routing.queued == frozenset()

    def test_a_mapping_handed_in_and_changed_later_leaves_the_state_as_it_was(self) -> None:
        pointers = {"": "S1"}
        state = RoutingState(pointers=pointers)
        pointers[""] = "S2"
        assert state.next_agent("", ["S1", "S2"]) == "S2"  # after S1, as given
        # Positive control: a state made from the changed mapping goes on after S2.
        assert RoutingState(pointers=pointers).next_agent("", ["S1", "S2"]) == "S1"
