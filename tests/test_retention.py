"""Retention (service/retention.py, its loop thothbot/maintenance.py) on a real database file:
each kind of row is deleted once past its period and not before, by moving the clock passed to
``prune``, never by waiting. Stored ingress events and idempotency records are covered with the
ingress (test_ingress.py)."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import T0
from tests.test_ingress import eventually
from thothbot.application import Services, build
from thothbot.config import Config
from thothbot.ingress import serve
from thothbot.maintenance import Maintenance
from thothbot.service import Desk
from thothbot.service.retention import Pruned, Pruner, Retention

G = "guild-1"
RULES = [
    {"id": "tag", "trigger": "ticket_opened", "actions": [{"type": "add_tag", "tag": "new"}]},
    {"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]},
]
OUTBOX = True  # the ``desk`` fixture's escalations go through the outbox (tests/conftest.py)
DAY = timedelta(days=1)


def rows(desk: Desk, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(desk.store.path) as conn:
        return conn.execute(sql).fetchall()


async def opened(desk: Desk, at: datetime) -> int:
    """A ticket opened at ``at``: its rules fire (two firings) and it is escalated (one
    delivery to #ops, pending)."""
    ticket = await desk.open_ticket(G, f"U{at.timestamp()}", "Checkout fails", at)
    return ticket.id


async def test_rule_firings_are_kept_90_days(desk: Desk, services: Services) -> None:
    old = await opened(desk, T0)
    young = await opened(desk, T0 + 60 * DAY)
    maintenance = services.pruner

    assert (await maintenance.prune(T0 + 89 * DAY)).firings == 0
    assert rows(desk, "SELECT ticket_id FROM rule_firings ORDER BY id") == [
        (old,),
        (old,),
        (young,),
        (young,),
    ]
    assert (await maintenance.prune(T0 + 90 * DAY)).firings == 2
    assert rows(desk, "SELECT ticket_id FROM rule_firings") == [(young,), (young,)]
    # The tickets themselves stay: only their log of rule firings goes.
    assert rows(desk, "SELECT COUNT(*) FROM tickets") == [(2,)]


async def test_finished_deliveries_are_kept_30_days_and_pending_ones_always(
    desk: Desk, services: Services
) -> None:
    sent, failed, pending = [await opened(desk, T0) for _ in range(3)]
    young = await opened(desk, T0 + 20 * DAY)

    async def mark(ticket_id: int, status: str) -> None:
        [(delivery_id,)] = rows(desk, f"SELECT id FROM deliveries WHERE ticket_id = {ticket_id}")
        assert isinstance(delivery_id, int)
        if status == "sent":
            await desk.store.run(lambda tx: tx.delivered([delivery_id], T0 + DAY, "m1"))
        else:  # given up: no retry
            await desk.store.run(lambda tx: tx.delivery_failed(delivery_id, "404", None))

    await mark(sent, "sent")
    await mark(failed, "failed")
    await mark(young, "sent")
    maintenance = services.pruner

    assert (await maintenance.prune(T0 + 29 * DAY)).deliveries == 0
    assert (await maintenance.prune(T0 + 30 * DAY)).deliveries == 2
    left = rows(desk, "SELECT ticket_id, status FROM deliveries ORDER BY ticket_id")
    assert left == [(pending, "pending"), (young, "sent")]
    # However old, a pending delivery is never deleted: it has yet to reach #ops.
    assert (await maintenance.prune(T0 + 1000 * DAY)).deliveries == 1
    assert rows(desk, "SELECT ticket_id FROM deliveries") == [(pending,)]


async def test_the_classifier_cache_is_kept_30_days(desk: Desk, services: Services) -> None:
    await services.classifications.put("old", "high", "x", T0)
    await services.classifications.put("young", "low", "y", T0 + 10 * DAY)
    maintenance = services.pruner

    assert (await maintenance.prune(T0 + 29 * DAY)).classifications == 0
    assert (await maintenance.prune(T0 + 30 * DAY)).classifications == 1
    assert rows(desk, "SELECT key FROM classifier_cache") == [("young",)]


async def test_a_large_backlog_is_deleted_in_batches_all_in_one_pass(desk: Desk) -> None:
    for day in range(5):
        await opened(desk, T0 + day * DAY)
    await opened(desk, T0 + 100 * DAY)
    # Built by hand for its small batch: the composition root's deletes 5,000 at a time.
    maintenance = Pruner(desk.store, batch=3)

    pruned = await maintenance.prune(T0 + 100 * DAY)
    assert pruned.firings == 10
    assert rows(desk, "SELECT COUNT(*) FROM rule_firings") == [(2,)]
    assert await desk.store.run(lambda tx: tx.prune_firings(T0 + 1000 * DAY, limit=1)) == 1


async def test_periods_can_be_changed_and_a_pass_says_what_it_deleted(desk: Desk) -> None:
    await opened(desk, T0)
    short = Retention(firings=DAY)
    pruned = await Pruner(desk.store, short).prune(T0 + DAY)  # by hand: periods of its own
    assert pruned == Pruned(firings=2)
    assert str(pruned) == "2 firings"
    assert not Pruned()


async def test_the_loop_prunes_at_start_and_again_each_period(
    desk: Desk, services: Services
) -> None:
    await opened(desk, T0)
    young = await opened(desk, T0 + 95 * DAY)
    clock = [T0 + 100 * DAY]
    maintenance = Maintenance(services.pruner, clock=lambda: clock[0], every=0.01)
    task = asyncio.create_task(maintenance.run())

    async def firings_left(expected: list[tuple[object, ...]]) -> None:
        await eventually(
            lambda: rows(desk, "SELECT DISTINCT ticket_id FROM rule_firings") == expected
        )

    try:
        await firings_left([(young,)])
        clock[0] = T0 + 200 * DAY
        await firings_left([])
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_thothbot_ingress_runs_the_retention_loop(tmp_path: Path) -> None:
    # `thothbot ingress` runs against the real clock: a firing made 100 days ago goes, one
    # made today stays.
    path = tmp_path / "thoth.db"
    config = Config.from_env({"THOTH_DB_PATH": str(path), "THOTH_INGRESS_PORT": "0"})
    async with build(config) as app:
        assert (await app.desk.save_rules(G, json.dumps(RULES))).saved
        now = datetime.now(UTC)
        old = await opened(app.desk, now - 100 * DAY)
        young = await opened(app.desk, now)

    task = asyncio.create_task(serve(config, io.StringIO()))

    def left() -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT DISTINCT ticket_id FROM rule_firings").fetchall()

    try:
        await eventually(lambda: (old,) not in left(), within=10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert left() == [(young,)]
