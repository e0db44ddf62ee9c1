"""What the bot keeps of its channels, through the service layer on a real SQLite file: the
units that do two things at once (an attempt's start and end, the unused channels), and the
wake-up a close with Discord steps gives the bot's closings loop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support import T0
from thothbot.application import Services
from thothbot.changes import Topic
from thothbot.service import CloseSteps, Desk
from thothbot.service.channels import REMEMBERED

G = "guild-1"
STEPS = CloseSteps("Sam", None, upload_limit=1024, delete_after=timedelta(seconds=10))


async def test_a_close_with_steps_wakes_the_closings_loop(desk: Desk) -> None:
    wake = desk.changes.wake_on(Topic.CLOSINGS)
    plain = await desk.open_ticket(G, "C1", "Help", T0)
    await desk.close(plain.id, "C1", T0)
    assert not wake.is_set()  # nothing for the bot to do in Discord
    ticket = await desk.open_ticket(G, "C2", "Help", T0, channel_id="900")
    await desk.close(ticket.id, "C2", T0, steps=STEPS)
    assert wake.is_set()


async def test_an_attempt_ends_finished_only_with_every_step_and_the_channel_gone(
    desk: Desk, services: Services
) -> None:
    channels = services.channels
    ticket = await desk.open_ticket(G, "C1", "Help", T0, channel_id="900")
    await desk.close(ticket.id, "C1", T0, steps=STEPS)
    (closing,) = await channels.closings_due(T0)
    retry = T0 + timedelta(seconds=5)
    started = await channels.begin_closing(closing.ticket_id, retry)
    assert started is not None
    assert started.id == ticket.id
    assert await channels.closings_due(T0) == []  # counted: due again at the retry
    for step in ("read", "logged", "sent"):
        await channels.step_done(ticket.id, step, "done")

    later = T0 + timedelta(seconds=10)
    assert not await channels.end_attempt(
        ticket.id, T0, deleted=True, next_at=later, error="asked: Discord answered 500"
    )
    assert await channels.next_closing_at() == later
    (again,) = await channels.closings_due(later)
    assert (again.attempts, again.error, again.asked) == (1, "asked: Discord answered 500", None)

    await channels.step_done(ticket.id, "asked", "dm")
    # Every step recorded: finished once the channel is deleted, not before.
    assert not await channels.end_attempt(
        ticket.id, later, deleted=False, next_at=later, error=None
    )
    assert await channels.end_attempt(ticket.id, later, deleted=True, next_at=later, error=None)
    assert await channels.next_closing_at() is None


async def test_the_unused_channels_are_those_no_ticket_has(desk: Desk, services: Services) -> None:
    await desk.open_ticket(G, "C1", "Help", T0, channel_id="900")
    assert await services.channels.unused(["900", "901"]) == {"901"}


def count_units(services: Services, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the units the services run from now on (its one item)."""
    count = [0]
    run = services.store.run

    async def counted(unit: Any) -> Any:
        count[0] += 1
        return await run(unit)

    monkeypatch.setattr(services.store, "run", counted)
    return count


async def test_a_channels_ticket_is_read_once_then_remembered(
    desk: Desk, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = await desk.open_ticket("g", "C1", "Help", T0, channel_id="900")
    channels = services.channels
    reads = count_units(services, monkeypatch)
    assert await channels.ticket_id_in("900") == ticket.id
    assert await channels.ticket_id_in("900") == ticket.id
    assert reads == [1]
    assert await channels.ticket_id_in("901") is None  # not a ticket's: asked each time
    assert await channels.ticket_id_in("901") is None
    assert reads == [3]
    channels.note("902", 7)  # the opener notes the channel it made: nothing to read
    assert await channels.ticket_id_in("902") == 7
    assert reads == [3]


async def test_the_remembered_channels_are_bounded_oldest_first(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = services.channels
    for n in range(REMEMBERED + 2):
        channels.note(f"c{n}", n)
    reads = count_units(services, monkeypatch)
    assert await channels.ticket_id_in(f"c{REMEMBERED + 1}") == REMEMBERED + 1
    assert await channels.ticket_id_in("c2") == 2  # the oldest kept
    assert reads == [0]
    assert await channels.ticket_id_in("c1") is None  # forgotten: read, and no ticket has it
    assert reads == [1]
