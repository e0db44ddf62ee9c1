"""Pending openings and closings on a real SQLite file: numbers kept or given back, each step
recorded, the kept transcript dropped when a closing finishes, and 0008's upgrade."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support import T0
from thothbot.application import build_services
from thothbot.core.channels import DiscordSetup, Opening
from thothbot.service import CloseSteps, Desk
from thothbot.store import Store
from thothbot.store import sqlite as store_module

G = "guild-1"
SETUP = DiscordSetup(
    G, staff_role_id="111", ops_channel_id="222", log_channel_id=None, categories=("333",)
)
STEPS = CloseSteps("Sam", "solved", upload_limit=1024, delete_after=timedelta(seconds=10))


async def reserve(desk: Desk, customer: str, subject: str, *, body: str = "") -> Opening:
    """An opening taken as the bot takes one (``begin_opening``) in a server set up."""
    await desk.save_setup(SETUP)
    _, opening = await desk.begin_opening(G, customer, subject, T0, body=body)
    assert isinstance(opening, Opening)
    return opening


async def test_an_opening_keeps_its_number_and_the_ticket_finishes_it(desk: Desk) -> None:
    first = await reserve(desk, "C1", " Help ", body="text")
    second = await reserve(desk, "C2", "More")
    assert (first.number, second.number, first.subject) == (1, 2, "Help")
    assert first.channel_id is None
    ticket = await desk.open_ticket(
        G, "C1", "Help", T0, channel_id="900", number=first.number, opening=first.id
    )
    saved = await desk.store.run(lambda tx: tx.opening(first.id))
    assert saved is not None
    # The ticket and its channel are recorded on the opening in one unit of work.
    assert (saved.channel_id, saved.ticket_id, ticket.number) == ("900", ticket.id, 1)
    await desk.store.run(lambda tx: tx.opening_done(first.id))
    assert [o.id for o in await desk.store.run(lambda tx: tx.openings(G))] == [second.id]


async def test_a_given_up_number_is_given_back_only_when_still_the_last(desk: Desk) -> None:
    first = await reserve(desk, "C1", "One")
    second = await reserve(desk, "C2", "Two")
    assert not await desk.store.run(lambda tx: tx.abandon_opening(first))  # 2 was taken since
    assert await desk.store.run(lambda tx: tx.abandon_opening(second))
    third = await reserve(desk, "C3", "Three")
    assert third.number == 2
    assert [o.id for o in await desk.store.run(lambda tx: tx.openings(G))] == [third.id]


async def test_a_close_saves_its_steps_and_each_is_recorded(desk: Desk) -> None:
    ticket = await desk.open_ticket(G, "C1", "Help", T0, channel_id="900")
    await desk.close(ticket.id, "C1", T0 + timedelta(minutes=5), steps=STEPS)
    closed_at = T0 + timedelta(minutes=5)
    assert await desk.store.run(lambda tx: tx.next_closing_at()) == closed_at
    (due,) = await desk.store.run(lambda tx: tx.closings_due(closed_at))
    assert (due.channel_id, due.closed_by_name, due.reason, due.upload_limit) == (
        "900", "Sam", "solved", 1024,
    )  # fmt: skip
    assert due.delete_at == closed_at + timedelta(seconds=10)
    assert due.read is None

    parts = [[("t.html", b"<p>1</p>"), ("t.txt", b"1")], [("t2.html", b"2"), ("t2.txt", b"2")]]
    await desk.store.run(lambda tx: tx.begin_closing(ticket.id, closed_at + timedelta(seconds=5)))
    await desk.store.run(lambda tx: tx.save_transcript(ticket.id, parts, "2 parts"))
    await desk.store.run(lambda tx: tx.closing_step(ticket.id, "logged", "posted"))
    assert await desk.store.run(lambda tx: tx.transcript(ticket.id)) == parts
    assert await desk.store.run(lambda tx: tx.closings_due(closed_at)) == []  # retried later
    now = closed_at + timedelta(seconds=1)
    await desk.store.run(lambda tx: tx.closings_restart(now))  # a restart looks at once
    (again,) = await desk.store.run(lambda tx: tx.closings_due(now))
    assert (again.attempts, again.read, again.logged, again.sent) == (1, "2 parts", "posted", None)
    with pytest.raises(ValueError, match="no closing step"):
        await desk.store.run(lambda tx: tx.closing_step(ticket.id, "read = 'x', sent", "x"))

    await desk.store.run(lambda tx: tx.finish_closing(ticket.id, now))
    assert await desk.store.run(lambda tx: tx.transcript(ticket.id)) == []  # ticket text gone
    assert await desk.store.run(lambda tx: tx.next_closing_at()) is None


async def test_a_close_without_steps_saves_none(desk: Desk) -> None:
    ticket = await desk.open_ticket(G, "C1", "Help", T0)
    await desk.close(ticket.id, "C1", T0)
    assert await desk.store.run(lambda tx: tx.closing(ticket.id)) is None


async def test_0008_turns_scheduled_deletions_into_closings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    every = store_module.migrations()
    monkeypatch.setattr(store_module, "migrations", lambda: [m for m in every if m[0] < 8])
    old = await Store.open(path)
    ticket = await build_services(old).desk.open_ticket(G, "C1", "Help", T0, channel_id="900")
    await old.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO channel_deletions VALUES ('900', '2026-11-23T09:00:10+00:00')")
        db.execute("INSERT INTO channel_deletions VALUES ('901', '2026-11-23T09:00:10+00:00')")
    monkeypatch.undo()

    store = await Store.open(path)
    (closing,) = await store.run(lambda tx: tx.closings_due(T0 + timedelta(minutes=1)))
    await store.close()
    assert (closing.ticket_id, closing.channel_id) == (ticket.id, "900")
    assert (closing.read, closing.logged, closing.sent, closing.asked, closing.deleted) == (
        "before 0008", "before 0008", "before 0008", "before 0008", None,
    )  # fmt: skip
    assert closing.delete_at == T0 + timedelta(seconds=10)


async def test_a_long_subject_opens_a_ticket_cut_with_the_whole_of_it_in_the_description(
    desk: Desk,
) -> None:
    long = "Charged twice " + "z" * 300
    opening = await reserve(desk, "C1", long, body="Order 1042.")
    assert (len(opening.subject), opening.body) == (200, f"{long}\n\nOrder 1042.")
    # The opener passes the opening's subject and body on: they come through unchanged.
    ticket = await desk.open_ticket(
        G, "C1", opening.subject, T0, body=opening.body, number=opening.number
    )
    assert (ticket.subject, ticket.body) == (opening.subject, opening.body)
    direct = await desk.open_ticket(G, "C2", long, T0, source="simulate")
    assert (direct.subject, direct.body) == (opening.subject, long)
    assert await desk.ticket(direct.id) == direct
