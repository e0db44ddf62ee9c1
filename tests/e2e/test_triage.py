"""Urgency triage in flight: the triage loop asks a model (a fake OpenAI-compatible server on
loopback, through the real openai client) without keeping the customer waiting, and urgency
rules run once the label is known, or once the model has had its time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.desk import Live, live_desk, message_text
from tests.fakes.openai_server import FakeOpenAI
from thothbot.llm import UrgencyClassifier
from thothbot.sandbox import Sandbox


@pytest.fixture
async def model() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI("good", label="critical", stall_seconds=5.0)
    await fake.start()
    yield fake
    await fake.stop()


async def triage_desk(
    discord: Sandbox, tmp_path: Path, model: FakeOpenAI, model_timeout: float
) -> AsyncIterator[Live]:
    classifier = UrgencyClassifier(
        "fake-model", base_url=model.base_url, api_key="k", timeout=model_timeout, retries=0
    )
    try:
        async for live in live_desk(discord, tmp_path, bot={"classifier": classifier}):
            yield live
    finally:
        await classifier.close()


@pytest.fixture
async def triage(discord: Sandbox, tmp_path: Path, model: FakeOpenAI) -> AsyncIterator[Live]:
    async for live in triage_desk(discord, tmp_path, model, model_timeout=5.0):
        yield live


@pytest.fixture
async def stalled(discord: Sandbox, tmp_path: Path, model: FakeOpenAI) -> AsyncIterator[Live]:
    """The model never answers in time (0.3 s here)."""
    model.mode = "stall"
    async for live in triage_desk(discord, tmp_path, model, model_timeout=0.3):
        yield live


async def test_the_customer_does_not_wait_for_the_model_and_critical_tickets_page_ops(
    triage: Live, model: FakeOpenAI
) -> None:
    w = triage.world
    model.answering.clear()  # the model answers only when the test says so
    channel = await triage.open_ticket(
        subject="Question about my invoice",  # the keyword heuristic would say low
        description="Reach me at dana@example.com or +1 415 555 2671.",
    )
    # The customer has their answer, and the model, asked, has not answered yet.
    await triage.sandbox.wait_for(lambda: model.in_flight == 1)
    assert triage.messages(w.ops) == []

    model.answering.set()
    await triage.sandbox.wait_for(lambda: triage.messages(w.ops), timeout=5)
    post = message_text(triage.messages(w.ops)[0])
    assert "Reason: Rule: Page on-call for critical tickets" in post
    assert "Urgency: critical" in post
    sent = str(model.requests[0]["messages"])
    assert "dana@example.com" not in sent
    assert "[EMAIL]" in sent
    assert "[PHONE]" in sent
    info = await triage.slash(w.sam, "ticket info", channel=channel)
    assert "Urgency\ncritical" in info.text()


async def test_a_stalled_model_leaves_the_decision_to_the_heuristic(
    stalled: Live, model: FakeOpenAI
) -> None:
    w = stalled.world
    channel = await stalled.open_ticket(
        subject="Production is down", description="Outage for every customer, urgent"
    )
    await stalled.sandbox.wait_for(lambda: stalled.messages(w.ops), timeout=5)
    assert "Urgency: critical" in message_text(stalled.messages(w.ops)[0])
    assert model.count == 1  # asked once, then the heuristic decided
    info = await stalled.slash(w.sam, "ticket info", channel=channel)
    assert "Urgency\ncritical" in info.text()
