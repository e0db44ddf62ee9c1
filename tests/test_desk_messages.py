"""Which messages a ticket takes, on every path: one rule (``tickets.takes_message``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import at
from tests.support import Harness
from thothbot.core.errors import InvalidTransition
from thothbot.core.models import RuleFired, Ticket

G = "guild-1"
REFUND_RULE = {
    "id": "refund",
    "trigger": "message_contains",
    "match": "refund",
    "actions": [{"type": "add_tag", "tag": "billing"}],
}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path / "thoth.db")
    await harness.start_with_rules(G, [REFUND_RULE])
    yield harness
    await harness.desk.store.close()


async def opened(harness: Harness, channel_id: str) -> Ticket:
    ticket = await harness.desk.open_ticket(G, "U1", "Help", at(0), channel_id=channel_id)
    harness.take()
    return ticket


async def test_a_ticket_channel_takes_its_customers_message(harness: Harness) -> None:
    ticket = await opened(harness, "900")
    effects = await harness.desk.post_in_channel("900", "U1", "a refund?", at(1), is_bot=False)
    assert [e.rule_id for e in effects if isinstance(e, RuleFired)] == ["refund"]
    assert (await harness.desk.ticket(ticket.id)).tags == ("billing",)


async def test_bots_closed_tickets_and_other_channels_take_nothing_and_say_nothing(
    harness: Harness,
) -> None:
    desk = harness.desk
    ticket = await opened(harness, "900")
    assert await desk.post_in_channel("900", "B1", "refund", at(1), is_bot=True) == []
    assert await desk.post_in_channel("555", "U1", "refund", at(1), is_bot=False) == []
    assert (await desk.ticket(ticket.id)).tags == ()
    await desk.close(ticket.id, "U1", at(2))
    assert await desk.post_in_channel("900", "U1", "refund", at(3), is_bot=False) == []
    assert (await desk.ticket(ticket.id)).tags == ()
    assert harness.take() == []


async def test_a_message_to_a_closed_ticket_by_id_is_refused_in_words(harness: Harness) -> None:
    ticket = await opened(harness, "900")
    await harness.desk.close(ticket.id, "U1", at(1))
    with pytest.raises(InvalidTransition, match="closed; messages are not accepted"):
        await harness.desk.post_message(ticket.id, "U1", "refund", at(2))
