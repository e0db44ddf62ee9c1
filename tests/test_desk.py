"""The desk over a real SQLite file: units of work, persistence across restarts, SLA clocks."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support import T0, Harness, at
from thothbot.core.errors import DomainError, InvalidTransition, SettingsInvalid, TicketNotFound
from thothbot.core.models import (
    Assigned,
    AssignmentQueued,
    Effect,
    Escalated,
    RuleFired,
    SlaBreached,
    SlaTarget,
    Status,
    TagAdded,
)
from thothbot.service import Desk
from thothbot.store import Store, migrations

G = "guild-1"

# What the ``harness`` fixture saves (tests/conftest.py).
RULES = [
    {"id": "assign", "trigger": "ticket_opened", "actions": [{"type": "assign_round_robin"}]},
    {
        "id": "refund",
        "name": "Refunds",
        "trigger": "message_contains",
        "match": "refund",
        "actions": [{"type": "add_tag", "tag": "refund"}, {"type": "escalate"}],
    },
    {"id": "late", "trigger": "sla_breach", "actions": [{"type": "add_tag", "tag": "late"}]},
    {"id": "sad", "trigger": "csat_negative", "actions": [{"type": "add_tag", "tag": "sad"}]},
]
SETTINGS: dict[str, Any] = {
    "staff": ["S1", "S2"],
    "capacity": 1,
    "sla": {"first_response_minutes": 30, "resolution_minutes": 120},
}


async def test_the_database_file_uses_wal_and_records_its_migrations(harness: Harness) -> None:
    with sqlite3.connect(harness.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [v for v, _, _ in migrations()]
    # Reopening applies nothing twice.
    await harness.restart()
    with sqlite3.connect(harness.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(versions)


async def test_a_failing_unit_changes_nothing(harness: Harness) -> None:
    desk = harness.desk
    ticket = await desk.open_ticket(G, "U1", "Hello", T0)

    def half_then_fail(tx: Any) -> None:
        tx.set_duty(G, "S1", False)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await desk.store.run(half_then_fail)
    state = await desk.store.run(lambda tx: tx.routing_state(G, None))
    assert state.off_duty == set()
    assert (await desk.ticket(ticket.id)).status is Status.OPEN


async def test_ticket_numbers_count_per_server_even_when_opened_concurrently(
    harness: Harness,
) -> None:
    desk = harness.desk
    opened = await asyncio.gather(
        *(desk.open_ticket(G, f"U{i}", f"Question {i}", at(i)) for i in range(20)),
        desk.open_ticket("other-guild", "U1", "Elsewhere", T0),
    )
    assert sorted(t.number for t in opened[:20]) == list(range(1, 21))
    assert opened[20].number == 1


async def test_a_scenario_survives_a_restart_at_every_step(tmp_path: Path) -> None:
    """Run one story twice, once restarting the desk between every step: same effects."""

    async def story(restart_between_steps: bool) -> list[Effect]:
        h = Harness(tmp_path / f"restart-{restart_between_steps}.db")
        desk = await h.start()
        await desk.save_rules(G, json.dumps(RULES))
        await desk.save_settings(G, json.dumps(SETTINGS), T0)
        ids: dict[str, int] = {}

        async def step(action: str) -> None:
            nonlocal desk
            d = desk
            match action:
                case "open-1":
                    ids["1"] = (await d.open_ticket(G, "U1", "Charged twice", at(0))).id
                case "open-2":
                    ids["2"] = (await d.open_ticket(G, "U2", "Login", at(1))).id
                case "open-3":
                    ids["3"] = (await d.open_ticket(G, "U3", "Export", at(2))).id
                case "refund":
                    await d.post_message(ids["1"], "U1", "I need a REFUND", at(3))
                case "reply":
                    await d.post_message(ids["1"], "S1", "On it", at(4))
                case "sla":
                    await d.process_due(at(40))
                case "close-1":
                    await d.close(ids["1"], "S1", at(50))
                case "rate-1":
                    await d.rate(ids["1"], "U1", 1, at(51))
                case "duty":
                    await d.set_duty(G, "S2", False, at(52))
            if restart_between_steps:
                desk = await h.restart()

        for action in ["open-1", "open-2", "open-3", "refund", "reply", "sla", "close-1"]:
            await step(action)
        await step("rate-1")
        await step("duty")
        await h.desk.store.close()
        return h.take()

    straight = await story(False)
    restarted = await story(True)
    assert restarted == straight
    kinds = [type(e).__name__ for e in straight]
    # Capacity 1: S1 takes #1, S2 takes #2, #3 waits until #1 closes and frees S1.
    assert kinds.count("AssignmentQueued") == 1
    assert [e.assignee_id for e in straight if isinstance(e, Assigned)] == ["S1", "S2", "S1"]
    assert [e.target for e in straight if isinstance(e, SlaBreached)] == [
        SlaTarget.FIRST_RESPONSE,
        SlaTarget.FIRST_RESPONSE,
    ]


async def test_a_breach_fires_once_even_across_restarts(harness: Harness) -> None:
    desk = harness.desk
    ticket = await desk.open_ticket(G, "U1", "Slow", T0)
    harness.take()
    assert await desk.next_deadline() == at(30)
    assert await desk.process_due(at(29)) == []
    effects = await desk.process_due(at(30))
    assert effects[0] == SlaBreached(at(30), ticket.id, SlaTarget.FIRST_RESPONSE)
    assert [type(e) for e in effects] == [SlaBreached, RuleFired, TagAdded]
    desk = await harness.restart()
    assert await desk.process_due(at(31)) == []
    assert await desk.next_deadline() == at(120)
    assert [type(e) for e in await desk.process_due(at(500))] == [SlaBreached, RuleFired]


async def test_a_staff_reply_exactly_at_the_deadline_meets_it(harness: Harness) -> None:
    desk = harness.desk
    ticket = await desk.open_ticket(G, "U1", "Slow", T0)
    await desk.post_message(ticket.id, "S2", "Hello!", at(30))
    effects = await desk.process_due(at(60))
    assert effects == []
    clocks = await desk.store.run(lambda tx: tx.clocks(ticket.id))
    assert (SlaTarget.FIRST_RESPONSE, at(30), "met") in clocks


async def test_a_late_reply_still_breaches_and_a_closed_ticket_never_does(harness: Harness) -> None:
    desk = harness.desk
    late = await desk.open_ticket(G, "U1", "Late", T0)
    closed = await desk.open_ticket(G, "U2", "Done", T0)
    await desk.post_message(late.id, "S1", "sorry", at(45))  # the checker has not run yet
    await desk.close(closed.id, "U2", at(10))
    effects = await desk.process_due(at(200))
    assert {(e.ticket_id, e.target) for e in effects if isinstance(e, SlaBreached)} == {
        (late.id, SlaTarget.FIRST_RESPONSE),
        (late.id, SlaTarget.RESOLUTION),
    }


async def test_customer_messages_do_not_stop_the_first_response_clock(harness: Harness) -> None:
    desk = harness.desk
    ticket = await desk.open_ticket(G, "S1", "A staff member's own ticket", T0)
    await desk.post_message(ticket.id, "S1", "anyone?", at(1))
    await desk.post_message(ticket.id, "bot", "Thanks, we got it", at(2), is_bot=True)
    assert (await desk.ticket(ticket.id)).first_staff_reply_at is None
    await desk.post_message(ticket.id, "S2", "Yes", at(3))
    assert (await desk.ticket(ticket.id)).first_staff_reply_at == at(3)


async def test_domain_refusals_are_clear_and_change_nothing(harness: Harness) -> None:
    desk = harness.desk
    ticket = await desk.open_ticket(G, "U1", "Question", T0)
    with pytest.raises(InvalidTransition, match="still open"):
        await desk.rate(ticket.id, "U1", 3, at(1))
    with pytest.raises(InvalidTransition, match="Only staff or the ticket's customer"):
        await desk.close(ticket.id, "U2", at(1))
    with pytest.raises(InvalidTransition, match="Only staff can escalate"):
        await desk.escalate(ticket.id, "U1", at(1))
    await desk.close(ticket.id, "U1", at(2))
    with pytest.raises(InvalidTransition, match="already closed"):
        await desk.close(ticket.id, "S1", at(3))
    with pytest.raises(InvalidTransition, match="closed"):
        await desk.post_message(ticket.id, "U1", "hello?", at(3))
    with pytest.raises(InvalidTransition, match="Only the ticket's customer"):
        await desk.rate(ticket.id, "S1", 5, at(4))
    with pytest.raises(InvalidTransition, match="from 1 to 5"):
        await desk.rate(ticket.id, "U1", 6, at(4))
    await desk.rate(ticket.id, "U1", 4, at(5))
    with pytest.raises(InvalidTransition, match="already rated 4"):
        await desk.rate(ticket.id, "U1", 1, at(6))
    with pytest.raises(TicketNotFound):
        await desk.post_message(9999, "U1", "hi", at(7))
    with pytest.raises(DomainError, match="subject"):
        await desk.open_ticket(G, "U1", "   ", at(8))
    with pytest.raises(DomainError, match="Only staff go on or off duty"):
        await desk.set_duty(G, "U1", False, at(8))
    stored = await desk.ticket(ticket.id)
    assert (stored.status, stored.rating) == (Status.CLOSED, 4)


async def test_staff_escalation_runs_ticket_escalated_rules(harness: Harness) -> None:
    desk = harness.desk
    await desk.save_rules(
        G,
        json.dumps([{"id": "esc", "trigger": "ticket_escalated", "actions": [
            {"type": "add_tag", "tag": "hot"}]}]),
    )  # fmt: skip
    ticket = await desk.open_ticket(G, "U1", "Outage", T0)
    effects = await desk.escalate(ticket.id, "S1", at(1), "  ")
    assert effects[0] == Escalated(at(1), ticket.id, "Escalated by staff", None)
    assert [type(e) for e in effects] == [Escalated, RuleFired, TagAdded]
    with pytest.raises(InvalidTransition, match="already escalated"):
        await desk.escalate(ticket.id, "S1", at(2), "again")
    log = await desk.firings(G)
    assert [(f.rule_id, f.ticket_number, f.outcomes[0].applied) for f in log] == [
        ("esc", ticket.number, True)
    ]


async def test_manual_assignment_takes_the_ticket_out_of_the_queue(harness: Harness) -> None:
    desk = harness.desk
    await desk.set_duty(G, "S1", False, T0)
    await desk.set_duty(G, "S2", False, T0)
    ticket = await desk.open_ticket(G, "U1", "Anyone?", T0)
    assert isinstance(harness.take()[-1], AssignmentQueued)
    effects = await desk.assign(ticket.id, "S2", "S1", at(1))
    assert effects == [Assigned(at(1), ticket.id, "S2", None)]
    assert await desk.store.run(lambda tx: list(tx.queue(G))) == []
    with pytest.raises(InvalidTransition, match="only be assigned to staff"):
        await desk.assign(ticket.id, "U7", "S1", at(2))


async def test_coming_on_duty_assigns_the_oldest_queued_ticket_first(harness: Harness) -> None:
    desk = harness.desk
    await desk.set_duty(G, "S1", False, T0)
    await desk.set_duty(G, "S2", False, T0)
    first = await desk.open_ticket(G, "U1", "First", at(1))
    second = await desk.open_ticket(G, "U2", "Second", at(2))
    effects = await desk.set_duty(G, "S2", True, at(3))
    # Capacity 1: S2 takes the oldest ticket only.
    assert effects == [Assigned(at(3), first.id, "S2", "assign")]
    effects = await desk.set_duty(G, "S1", True, at(4))
    assert effects == [Assigned(at(4), second.id, "S1", "assign")]


async def test_saving_settings_can_drain_the_queue(harness: Harness) -> None:
    desk = harness.desk
    await desk.save_settings(G, json.dumps({"staff": []}), T0)
    ticket = await desk.open_ticket(G, "U1", "Nobody here", T0)
    effects = await desk.save_settings(G, json.dumps({"staff": ["S9"]}), at(5))
    assert effects.warnings == []
    assert (await desk.ticket(ticket.id)).assignee_id == "S9"


async def test_refused_or_empty_rule_pastes_keep_the_saved_rules(harness: Harness) -> None:
    desk = harness.desk
    refused = await desk.save_rules(G, "{not json")
    assert not refused.saved
    assert refused.validation.refused
    nothing_valid = await desk.save_rules(G, json.dumps([{"trigger": "nope", "actions": []}]))
    assert not nothing_valid.saved
    assert nothing_valid.reason
    assert [r.id for r in (await desk.config(G)).rules] == [r["id"] for r in RULES]
    cleared = await desk.save_rules(G, "[]")
    assert cleared.saved
    assert (await desk.config(G)).rules == []


async def test_invalid_settings_change_nothing(harness: Harness) -> None:
    desk = harness.desk
    with pytest.raises(SettingsInvalid) as caught:
        await desk.save_settings(G, json.dumps({"staff": "S1", "capacity": 0}), T0)
    assert {path for path, _ in caught.value.problems} == {"staff", "capacity"}
    assert (await desk.config(G)).settings.staff == ["S1", "S2"]


async def test_cached_config_follows_saves_from_another_process(harness: Harness) -> None:
    desk = harness.desk
    assert (await desk.config(G)).ruleset.uses_round_robin
    other = Desk(await Store.open(harness.path))
    await other.save_rules(G, "[]")
    await other.store.close()
    assert not (await desk.config(G)).ruleset.uses_round_robin
