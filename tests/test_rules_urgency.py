"""Rules with an ``urgency`` condition: validation against the server's labels, and the engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import T0, at
from thothbot.core.engine import Context, RuleSet, run_rules
from thothbot.core.models import (
    AuthorKind,
    Escalated,
    Event,
    MessagePosted,
    RuleFired,
    SlaBreach,
    SlaTarget,
    Status,
    Ticket,
    TicketOpened,
    Trigger,
    UrgencyKnown,
)
from thothbot.core.routing import RoutingState
from thothbot.core.rules import Severity, normalize_rules, validate_and_normalize
from thothbot.core.settings import GuildSettings

ESCALATE = {"type": "escalate"}


def rule(**fields: Any) -> dict[str, Any]:
    return {"trigger": "ticket_opened", "actions": [ESCALATE]} | fields


def validate(*rules: dict[str, Any], labels: list[str] | None = None) -> Any:
    return validate_and_normalize(json.dumps(list(rules)), labels)


# Validation.


def test_a_single_label_becomes_a_one_element_list() -> None:
    result = validate(rule(id="r", urgency="critical"))
    assert result.problems == []
    assert result.document == [
        {
            "id": "r",
            "enabled": True,
            "trigger": "ticket_opened",
            "urgency": ["critical"],
            "actions": [ESCALATE],
        }
    ]


def test_urgency_keeps_its_place_in_the_key_order_and_duplicates_go() -> None:
    raw = {
        "actions": [{"type": "add_tag", "tag": "hot"}],
        "urgency": ["high", "critical", "high"],
        "ticketTypeId": "billing",
        "match": "refund",
        "trigger": "message_contains",
        "name": "Hot refunds",
        "id": "r",
    }
    [normalized] = validate(raw).document
    assert list(normalized) == [
        "id", "enabled", "name", "trigger", "match", "ticketTypeId", "urgency", "actions",
    ]  # fmt: skip
    assert normalized["urgency"] == ["high", "critical"]


def test_a_rule_without_urgency_has_no_urgency_key() -> None:
    assert "urgency" not in validate(rule(id="r")).document[0]
    assert "urgency" not in validate(rule(id="r", urgency=None)).document[0]


@pytest.mark.parametrize(
    ("urgency", "message"),
    [
        ([], '"urgency" is empty (leave it out to match every urgency), so the rule was dropped.'),
        (3, '"urgency" must be a label or an array of labels, but it is a number'),
        ({"is": "high"}, '"urgency" must be a label or an array of labels, but it is an object'),
        (True, "but it is a boolean"),
        (["high", 2], '"urgency" must hold labels, but item 2 is a number'),
        (["high", None], "but item 2 is null"),
        ("urgent", '"urgency" names "urgent", which is not one of this server\'s urgency labels'
         " (use low, high or critical), so the rule was dropped."),
        (["low", "High"], 'names "High"'),
        ("", 'names ""'),
    ],
)  # fmt: skip
def test_a_bad_urgency_drops_the_rule_with_a_clear_message(urgency: object, message: str) -> None:
    result = validate(rule(id="r", urgency=urgency), rule(id="kept"))
    assert [r["id"] for r in result.document] == ["kept"]
    [problem] = result.problems
    assert problem.path == "[0].urgency"
    assert problem.severity is Severity.DROPPED_RULE
    assert message in problem.message


def test_labels_are_checked_against_the_servers_labels() -> None:
    labels = ["p3", "p2", "p1"]
    ok = validate(rule(id="r", urgency=["p1", "p2"]), labels=labels)
    assert ok.problems == []
    assert ok.document[0]["urgency"] == ["p1", "p2"]
    bad = validate(rule(id="r", urgency="critical"), labels=labels)
    assert bad.document == []
    assert "(use p3, p2 or p1)" in bad.problems[0].message
    single = validate(rule(id="r", urgency="critical"), labels=["only"])
    assert "(use only), so the rule was dropped." in single.problems[0].message


def test_normalize_rules_takes_labels_too() -> None:
    assert normalize_rules([rule(urgency="p1")], ["p1"]).document[0]["urgency"] == ["p1"]
    assert normalize_rules([rule(urgency="p1")]).document == []


def test_the_example_rules_page_on_call_for_critical_tickets() -> None:
    text = (Path(__file__).resolve().parents[1] / "rules.example.json").read_text()
    result = validate_and_normalize(text)
    assert not result.dropped
    page = next(r for r in result.document if r.get("urgency"))
    assert page["urgency"] == ["critical"]
    assert page["name"] == "Page on-call for critical tickets"
    assert json.loads(text) == result.document  # the example is in normalized form


labels = st.sampled_from(["low", "high", "critical", "p1", "", "High"])
urgencies = st.none() | labels | st.lists(labels, max_size=4) | st.integers() | st.booleans()


@given(st.lists(st.fixed_dictionaries({}, optional={"urgency": urgencies}), max_size=5))
def test_normalizing_rules_with_urgency_is_idempotent(extras: list[dict[str, Any]]) -> None:
    raw = [rule(**extra) for extra in extras]
    first = validate_and_normalize(json.dumps(raw))
    second = validate_and_normalize(json.dumps(first.document))
    assert second.rules == first.rules
    assert second.problems == []
    for normalized in first.document:
        if "urgency" in normalized:
            value = normalized["urgency"]
            assert value
            assert len(set(value)) == len(value)
            assert set(value) <= {"low", "high", "critical"}


# The engine.


def ruleset(*raw: dict[str, Any], labels: list[str] | None = None) -> RuleSet:
    validation = normalize_rules(list(raw), labels)
    assert not validation.dropped, validation.problems
    return RuleSet(validation.rules)


def fire(rules: RuleSet, event: Event, **ticket_fields: Any) -> list[str]:
    fields: dict[str, Any] = {
        "id": 7, "guild_id": "g", "number": 1, "customer_id": "U1", "subject": "Help",
        "created_at": T0,
    }  # fmt: skip
    ticket = Ticket(**(fields | ticket_fields))
    decision = run_rules(ticket, event, Context(rules, GuildSettings(), RoutingState()))
    return [e.rule_id for e in decision.effects if isinstance(e, RuleFired)]


RULES = ruleset(
    rule(id="any"),
    rule(id="critical", urgency="critical"),
    rule(id="high-or-critical", urgency=["high", "critical"]),
    rule(id="low", urgency="low"),
)


@pytest.mark.parametrize(
    ("urgency", "fired"),
    [
        (None, ["any"]),
        ("low", ["any", "low"]),
        ("high", ["any", "high-or-critical"]),
        ("critical", ["any", "critical", "high-or-critical"]),
        ("p1", ["any"]),  # a label no rule names
    ],
)
def test_urgency_conditions_match_only_tickets_with_one_of_their_labels(
    urgency: str | None, fired: list[str]
) -> None:
    assert fire(RULES, TicketOpened(T0), urgency=urgency) == fired


def test_urgency_combines_with_the_ticket_type() -> None:
    rules = ruleset(rule(id="r", urgency="critical", ticketTypeId="billing"))
    assert fire(rules, TicketOpened(T0), urgency="critical", type_id="billing") == ["r"]
    assert fire(rules, TicketOpened(T0), urgency="critical", type_id="tech") == []
    assert fire(rules, TicketOpened(T0), urgency="high", type_id="billing") == []


def test_urgency_conditions_work_on_every_trigger() -> None:
    rules = ruleset(
        rule(id="msg", trigger="message_contains", match="help", urgency="critical"),
        rule(id="late", trigger="sla_breach", urgency="critical"),
        rule(id="esc", trigger="ticket_escalated", urgency=["critical"]),
    )
    message = MessagePosted(at(1), "U1", AuthorKind.CUSTOMER, "help!")
    assert fire(rules, message, urgency="critical") == ["msg", "esc"]
    assert fire(rules, message, urgency="low") == []
    breach = SlaBreach(at(30), SlaTarget.FIRST_RESPONSE)
    assert fire(rules, breach, urgency="critical") == ["late", "esc"]
    assert fire(rules, breach) == []


def test_urgency_known_late_runs_only_the_opened_rules_with_an_urgency_condition() -> None:
    rules = ruleset(
        rule(id="any"),
        rule(id="critical", urgency="critical"),
        rule(id="esc", trigger="ticket_escalated", actions=[{"type": "add_tag", "tag": "e"}]),
    )
    # The escalation it causes cascades into every ticket_escalated rule, as usual.
    assert fire(rules, UrgencyKnown(at(1)), urgency="critical") == ["critical", "esc"]
    assert fire(rules, UrgencyKnown(at(1)), urgency="low") == []
    assert fire(rules, UrgencyKnown(at(1)), urgency="critical", status=Status.CLOSED) == []


def test_a_rule_set_keeps_urgency_labels_in_the_saved_order() -> None:
    [compiled] = ruleset(rule(id="r", urgency=["high", "critical"])).for_trigger(
        Trigger.TICKET_OPENED
    )
    assert compiled.urgency == ("high", "critical")
    [plain] = ruleset(rule(id="r")).for_trigger(Trigger.TICKET_OPENED)
    assert plain.urgency is None


def test_escalation_by_an_urgency_rule_names_the_rule() -> None:
    rules = ruleset(rule(id="page", name="Page on-call", urgency="critical"))
    ticket = Ticket(7, "g", 1, "U1", "Down", T0, urgency="critical")
    decision = run_rules(ticket, TicketOpened(T0), Context(rules, GuildSettings(), None))
    assert decision.ticket.escalated
    assert [e.reason for e in decision.effects if isinstance(e, Escalated)] == [
        "Automation: Page on-call"
    ]
