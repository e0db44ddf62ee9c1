"""Batches on a real SQLite file: units share transactions, each under its own savepoint, and
what a batch remembers between its units never outlives a rollback or another connection's
write. A second connection reads the file as any other process would."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from tests.support import T0, Harness
from thothbot.core.errors import DomainError
from thothbot.core.models import Ticket
from thothbot.service import Desk
from thothbot.store import Tx

G = "guild-1"


def committed(path: Path) -> list[tuple[int, str]]:
    """The tickets another connection sees: only what was committed."""
    with contextlib.closing(sqlite3.connect(path)) as other:
        return other.execute("SELECT id, subject FROM tickets ORDER BY id").fetchall()


def write_elsewhere(path: Path, sql: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as other:
        other.execute(sql)
        other.commit()


async def test_units_in_a_batch_are_committed_together_at_its_end(
    harness: Harness, desk: Desk
) -> None:
    alone = await desk.open_ticket(G, "C1", "Alone", T0)
    assert committed(harness.path) == [(alone.id, "Alone")]  # outside a batch: at once
    async with desk.batch():
        one = await desk.open_ticket(G, "C2", "One", T0)
        two = await desk.open_ticket(G, "C3", "Two", T0)
        assert committed(harness.path) == [(alone.id, "Alone")]
    assert committed(harness.path) == [(alone.id, "Alone"), (one.id, "One"), (two.id, "Two")]


async def test_a_batch_commits_every_so_many_units(harness: Harness, desk: Desk) -> None:
    async with desk.store.batch(every=2):
        one = await desk.open_ticket(G, "C1", "One", T0)
        assert committed(harness.path) == []
        two = await desk.open_ticket(G, "C2", "Two", T0)
        assert committed(harness.path) == [(one.id, "One"), (two.id, "Two")]
        three = await desk.open_ticket(G, "C3", "Three", T0)
        assert committed(harness.path) == [(one.id, "One"), (two.id, "Two")]
    assert [i for i, _ in committed(harness.path)] == [one.id, two.id, three.id]


async def test_a_unit_that_raises_in_a_batch_is_rolled_back_alone(
    harness: Harness, desk: Desk
) -> None:
    def half_done(tx: Tx) -> None:
        tx.insert_ticket(Ticket(0, G, 0, "C2", "Half done", T0))
        raise DomainError("refused after writing")

    async with desk.batch():
        before = await desk.open_ticket(G, "C1", "Before", T0)
        with pytest.raises(DomainError):
            await desk.store.run(half_done)
        after = await desk.open_ticket(G, "C3", "After", T0)
    assert committed(harness.path) == [(before.id, "Before"), (after.id, "After")]


async def test_a_rolled_back_unit_leaves_nothing_remembered(desk: Desk) -> None:
    opened = await desk.open_ticket(G, "C1", "Help", T0)

    def change_then_fail(tx: Tx) -> None:
        stored = tx.ticket(opened.id)
        assert stored is not None
        tx.save_ticket(dataclasses.replace(stored, tags=("changed",)))
        assert tx.ticket(opened.id) != stored  # the unit sees its own change
        raise DomainError("refused after writing")

    async with desk.batch():
        assert (await desk.ticket(opened.id)).tags == ()
        with pytest.raises(DomainError):
            await desk.store.run(change_then_fail)
        assert (await desk.ticket(opened.id)).tags == ()


async def test_a_batch_reads_what_another_connection_wrote_between_its_commits(
    harness: Harness, desk: Desk
) -> None:
    opened = await desk.open_ticket(G, "C1", "Help", T0)
    async with desk.store.batch(every=1):
        assert (await desk.ticket(opened.id)).tags == ()
        revision = (await desk.config(G)).revision
        write_elsewhere(harness.path, f"UPDATE tickets SET tags = '[\"x\"]' WHERE id = {opened.id}")
        write_elsewhere(harness.path, "UPDATE guilds SET revision = revision + 1")
        assert (await desk.ticket(opened.id)).tags == ("x",)
        assert (await desk.config(G)).revision == revision + 1
