"""The typed seams: rules, destinations and firings cross the store as values, and their JSON
form (what is stored, exported and printed) is the one older versions wrote."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.support import T0, Harness, at
from thothbot.bot import render
from thothbot.core.destinations import (
    DestinationKind,
    DiscordWebhook,
    HttpEndpoint,
    Ops,
    OpsNotice,
    OutboxRef,
)
from thothbot.core.masking import reference
from thothbot.core.models import ActionOutcome, ActionType, Firing, Trigger
from thothbot.core.rules import Action, Rule, load_rules, rules_json, validate_and_normalize

G = "guild-1"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RULES = [
    {
        "id": "refund",
        "enabled": True,
        "name": "Refunds",
        "trigger": "message_contains",
        "match": "Refund",
        "ticketTypeId": "billing",
        "urgency": ["critical", "high"],
        "actions": [{"type": "add_tag", "tag": "refund"}, {"type": "escalate"}],
    },
    {"id": "off", "enabled": False, "trigger": "ticket_opened", "actions": [{"type": "escalate"}]},
]


def test_the_validator_yields_rule_values_whose_json_is_the_normalized_document() -> None:
    validation = validate_and_normalize(json.dumps(RULES))
    first, off = validation.rules
    assert first == Rule(
        id="refund",
        trigger=Trigger.MESSAGE_CONTAINS,
        actions=(Action(ActionType.ADD_TAG, "refund"), Action(ActionType.ESCALATE)),
        name="Refunds",
        match="Refund",
        type_id="billing",
        urgency=("critical", "high"),
    )
    assert first.match_folded == "refund"
    assert not off.enabled
    # Byte for byte: key order included, as exports and `rules validate` print it.
    assert json.dumps(validation.document) == json.dumps(RULES)
    assert load_rules(json.dumps(rules_json(validation.rules))) == validation.rules


async def test_saved_rules_are_stored_as_their_json_and_read_back_as_values(
    tmp_path: Path,
) -> None:
    harness = Harness(tmp_path / "thoth.db")
    desk = await harness.start()
    saved = await desk.save_rules(G, json.dumps(RULES))
    assert saved.saved
    config = await desk.config(G)
    assert config.rules == saved.validation.rules
    assert [r.id for r in config.ruleset.rules] == ["refund"]  # the disabled one is not run
    await harness.close()
    with sqlite3.connect(harness.path) as conn:
        (stored,) = conn.execute("SELECT rules FROM guilds WHERE guild_id = ?", (G,)).fetchone()
    assert stored == json.dumps(RULES, ensure_ascii=False)


@pytest.mark.parametrize(
    ("destination", "stored"),
    [
        (Ops(), {"kind": "ops"}),
        (OpsNotice(), {"kind": "ops_notice"}),
        (DiscordWebhook("https://discord.com/api/webhooks/1/abc"), None),
        (HttpEndpoint("https://example.test/hooks", SECRET), None),
    ],
)
def test_an_outbox_reference_is_stored_as_before_and_read_back_typed(
    destination: Ops | OpsNotice | DiscordWebhook | HttpEndpoint, stored: dict[str, str] | None
) -> None:
    ref = destination.reference
    if isinstance(destination, DiscordWebhook | HttpEndpoint):  # as older versions did it
        stored = reference({"kind": destination.kind.value, "url": destination.url})
    assert stored is not None
    assert ref.to_json() == json.dumps(stored, sort_keys=True)
    assert OutboxRef.from_json(ref.to_json()) == ref
    assert ref.kind is DestinationKind(stored["kind"])
    assert SECRET not in ref.to_json()


async def test_a_logged_firing_reads_back_as_the_firing_the_rules_made(tmp_path: Path) -> None:
    harness = Harness(tmp_path / "thoth.db")
    desk = await harness.start()
    await desk.save_rules(G, json.dumps(RULES))
    dry = await desk.dry_run(G, "a refund please", at(1), "billing")
    assert dry == []  # no urgency known yet: the refund rule does not apply
    await desk.save_rules(G, json.dumps([{**RULES[0], "urgency": None}]))
    [dry] = await desk.dry_run(G, "a refund please", at(1), "billing")
    ticket = await desk.open_ticket(G, "U1", "Money", T0, type_id="billing")
    await desk.post_message(ticket.id, "U1", "a refund please", at(1))
    [logged] = await desk.firings(G)
    await harness.close()

    assert logged.ticket_number == ticket.number
    assert logged.outcomes == dry.outcomes
    assert (logged.trigger, logged.rule_id, logged.at) == (dry.trigger, dry.rule_id, at(1))
    # One renderer: the log's line is the dry run's, with when and which ticket in front.
    [dry_line] = render.firing_lines([dry])
    [logged_line] = render.firing_lines([logged])
    assert logged_line == f"{at(1):%Y-%m-%d %H:%M} #{ticket.number} {dry_line}"
    assert dry_line == (
        'refund (message_contains): add_tag: applied (added the tag "refund");'
        " escalate: applied (escalated; bot replies paused)"
    )


def test_a_no_op_is_rendered_with_its_reason() -> None:
    firing = Firing(
        at(0),
        1,
        Trigger.TICKET_ESCALATED,
        "again",
        (ActionOutcome(ActionType.ESCALATE, False, "no-op: the ticket is already escalated"),),
    )
    assert render.firing_lines([firing]) == [
        "again (ticket_escalated): escalate: no-op (no-op: the ticket is already escalated)"
    ]
