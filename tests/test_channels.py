"""What the bot keeps of its channels, through the service layer on a real SQLite file: the
units that do two things at once (an attempt's start and end, the unused channels), and the
wake-up a close with Discord steps gives the bot's closings loop."""

from __future__ import annotations

from datetime import timedelta

from tests.support import T0
from thothbot.application import Services
from thothbot.changes import Topic
from thothbot.service import CloseSteps, Desk

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
