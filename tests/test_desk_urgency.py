"""A ticket's urgency on the desk, over a real SQLite file: set at opening or later, and kept."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from tests.support import T0, Harness, at
from thothbot.core.errors import DomainError
from thothbot.core.models import Effect, Escalated, RuleFired, TagAdded, Trigger

G = "guild-1"
# What the ``harness`` fixture saves (tests/conftest.py).
RULES = [
    {"id": "tag-new", "trigger": "ticket_opened", "actions": [{"type": "add_tag", "tag": "new"}]},
    {
        "id": "page",
        "name": "Page on-call for critical tickets",
        "trigger": "ticket_opened",
        "urgency": ["critical"],
        "actions": [{"type": "escalate"}],
    },
    {
        "id": "hot",
        "trigger": "ticket_escalated",
        "urgency": ["high", "critical"],
        "actions": [{"type": "add_tag", "tag": "hot"}],
    },
]


def fired(effects: list[Effect]) -> list[tuple[str, Trigger]]:
    return [(e.rule_id, e.trigger) for e in effects if isinstance(e, RuleFired)]


async def test_a_ticket_opened_with_its_urgency_fires_the_urgency_rules(harness: Harness) -> None:
    desk = harness.desk
    ticket = await desk.open_ticket(G, "U1", "Site down", T0, urgency="critical")
    assert ticket.urgency == "critical"
    assert ticket.escalated
    assert ticket.tags == ("new", "hot")
    assert fired(harness.sink.effects) == [
        ("tag-new", Trigger.TICKET_OPENED),
        ("page", Trigger.TICKET_OPENED),
        ("hot", Trigger.TICKET_ESCALATED),
    ]
    await harness.restart()
    stored = await harness.desk.ticket(ticket.id)
    assert (stored.urgency, stored.escalated, stored.tags) == ("critical", True, ("new", "hot"))


async def test_a_ticket_without_urgency_matches_no_urgency_rule(harness: Harness) -> None:
    ticket = await harness.desk.open_ticket(G, "U1", "Site down", T0)
    assert ticket.urgency is None
    assert fired(harness.sink.effects) == [("tag-new", Trigger.TICKET_OPENED)]
    assert not ticket.escalated


async def test_urgency_known_later_runs_the_waiting_rules_once(harness: Harness) -> None:
    desk = harness.desk
    ticket = await desk.open_ticket(G, "U1", "Site down", T0)
    harness.sink.effects.clear()
    effects = await desk.set_urgency(ticket.id, "critical", at(1))
    # tag-new fired at opening and does not fire again; page could not fire until now.
    assert fired(effects) == [("page", Trigger.TICKET_OPENED), ("hot", Trigger.TICKET_ESCALATED)]
    assert effects == harness.sink.effects
    assert [e.at for e in effects if isinstance(e, Escalated)] == [at(1)]
    # A second label changes the urgency and runs nothing.
    assert await desk.set_urgency(ticket.id, "low", at(2)) == []
    assert await desk.set_urgency(ticket.id, "critical", at(3)) == []
    await harness.restart()
    stored = await harness.desk.ticket(ticket.id)
    assert (stored.urgency, stored.tags, stored.escalated) == ("critical", ("new", "hot"), True)
    firings = await harness.desk.firings(G)
    assert [f.rule_id for f in firings] == ["hot", "page", "tag-new"]


async def test_a_low_urgency_known_later_fires_nothing_but_is_kept(harness: Harness) -> None:
    desk = harness.desk
    ticket = await desk.open_ticket(G, "U1", "Question", T0)
    assert await desk.set_urgency(ticket.id, "low", at(1)) == []
    assert (await desk.ticket(ticket.id)).urgency == "low"


async def test_urgency_on_a_closed_ticket_is_kept_and_fires_nothing(harness: Harness) -> None:
    desk = harness.desk
    ticket = await desk.open_ticket(G, "U1", "Question", T0)
    await desk.close(ticket.id, "U1", at(1))
    effects = await desk.set_urgency(ticket.id, "critical", at(2))
    assert not [e for e in effects if isinstance(e, RuleFired | TagAdded)]
    stored = await desk.ticket(ticket.id)
    assert (stored.urgency, stored.escalated) == ("critical", False)


async def test_an_unknown_label_is_refused_and_changes_nothing(harness: Harness) -> None:
    desk = harness.desk
    with pytest.raises(DomainError, match="not an urgency label of this server"):
        await desk.open_ticket(G, "U1", "Question", T0, urgency="p1")
    ticket = await desk.open_ticket(G, "U1", "Question", T0)
    assert ticket.number == 1  # the refused opening left no ticket behind
    with pytest.raises(DomainError, match=r"\(use low, high, critical\)"):
        await desk.set_urgency(ticket.id, "urgent", at(1))
    assert (await desk.ticket(ticket.id)).urgency is None


async def test_a_server_with_its_own_labels(harness: Harness) -> None:
    desk = harness.desk
    await desk.save_settings(G, json.dumps({"classifier": {"labels": ["p3", "p2", "p1"]}}), T0)
    # Rules are checked against the server's labels when saved.
    partly = await desk.save_rules(G, json.dumps(RULES))
    assert [r["id"] for r in partly.validation.document] == ["tag-new"]
    assert {p.path for p in partly.validation.problems} == {"[1].urgency", "[2].urgency"}
    p1_rule = {
        "id": "p1",
        "trigger": "ticket_opened",
        "urgency": "p1",
        "actions": [{"type": "escalate"}],
    }
    saved = await desk.save_rules(G, json.dumps([p1_rule]))
    assert saved.saved
    assert saved.validation.document[0]["urgency"] == ["p1"]
    ticket = await desk.open_ticket(G, "U1", "Down", T0, urgency="p1")
    assert ticket.escalated
    with pytest.raises(DomainError):
        await desk.open_ticket(G, "U1", "Down", T0, urgency="critical")


# The classifier cache's table and its unit-of-work methods.


async def test_the_classifier_cache_table_is_migrated_and_expires(harness: Harness) -> None:
    store = harness.desk.store
    ttl = timedelta(days=30)
    assert await store.run(lambda tx: tx.cached_classification("k", T0, ttl)) is None
    await store.run(lambda tx: tx.cache_classification("k", "high", "Checkout fails.", T0))
    await harness.restart()
    store = harness.desk.store
    hit = await store.run(lambda tx: tx.cached_classification("k", T0 + ttl / 2, ttl))
    assert hit == ("high", "Checkout fails.")
    assert await store.run(lambda tx: tx.cached_classification("k", T0 + ttl, ttl)) is None
    # Caching again under the same key replaces the answer and its age.
    await store.run(lambda tx: tx.cache_classification("k", "low", "Fine now.", T0 + ttl))
    hit = await store.run(lambda tx: tx.cached_classification("k", T0 + ttl, ttl))
    assert hit == ("low", "Fine now.")
    await store.run(lambda tx: tx.cache_classification("old", "low", "x", T0))
    assert await store.run(lambda tx: tx.prune_classifications(T0 + ttl, ttl)) == 1
    with sqlite3.connect(harness.path) as conn:
        keys = [r[0] for r in conn.execute("SELECT key FROM classifier_cache")]
    assert keys == ["k"]


async def test_new_labels_that_orphan_a_rules_urgency_are_a_warning_and_keep_the_rule(
    harness: Harness,
) -> None:
    desk = harness.desk
    labels = {"classifier": {"labels": ["low", "high", "p0"]}}
    result = await desk.save_settings(G, json.dumps(labels), T0)
    assert [path for path, _ in result.warnings] == [
        "classifier.labels (rule page)",
        "classifier.labels (rule hot)",  # "high" stays, "critical" goes
    ]
    assert all('uses urgency "critical",' in message for _, message in result.warnings)
    assert "no longer a label" in result.warnings[0][1]
    assert [rule.id for rule in (await desk.config(G)).rules] == ["tag-new", "page", "hot"]

    kept = await desk.save_settings(G, json.dumps({}), at(1))  # back to low, high, critical
    assert kept.warnings == []
