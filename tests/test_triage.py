"""The triage loop: tickets opened without their urgency are labelled in the background, a few
at a time, and those a killed process left unlabelled are labelled after its restart. A real
SQLite file, the real openai client against a fake OpenAI-compatible server on 127.0.0.1, and
for the crash a real ``thothbot ingress`` process killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from tests.e2e.test_crash import free_port, healthy
from tests.fakes.openai_server import FakeOpenAI
from tests.support import Harness, services_on
from thothbot import keys
from thothbot.llm import UrgencyClassifier
from thothbot.triage import Triage

G = "guild-1"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PAGE_CRITICAL = [
    {"id": "page", "trigger": "ticket_opened", "urgency": "critical",
     "actions": [{"type": "escalate"}]},
]  # fmt: skip

T = TypeVar("T")


async def eventually(check: Callable[[], T], within: float = 10.0) -> T:
    value = check()
    try:
        async with asyncio.timeout(within):
            while not value:
                await asyncio.sleep(0.01)
                value = check()
    except TimeoutError:
        raise AssertionError(f"still {value!r} after {within:g} s") from None
    return value


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


@contextlib.asynccontextmanager
async def fake_model(**options: Any) -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(label="critical", **options)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def labelled_with_at_most(tmp_path: Path, concurrency: int) -> int:
    """Five tickets labelled by a triage loop allowed ``concurrency`` at once, while the model
    answers only once that many are asked: how many were ever asked at the same time."""
    async with fake_model() as fake:
        fake.answering.clear()
        harness = Harness(tmp_path / f"thoth-{concurrency}.db")
        desk = await harness.start()
        classifier = UrgencyClassifier(
            "fake-model", base_url=fake.base_url, api_key="k", concurrency=10, timeout=10
        )
        try:
            for n in range(5):
                await desk.open_ticket(G, f"c{n}", f"Question {n}", T0)
            labelling = asyncio.create_task(Triage(desk, classifier, concurrency=concurrency).run())
            await eventually(lambda: fake.in_flight == concurrency)
            fake.answering.set()
            await eventually(lambda: fake.count == 5)
            await eventually(
                lambda: (
                    rows(tmp_path / f"thoth-{concurrency}.db", "SELECT urgency FROM tickets")
                    == [("critical",)] * 5
                )
            )
            labelling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await labelling
            return fake.max_in_flight
        finally:
            await classifier.close()
            await harness.close()


async def test_at_most_concurrency_tickets_are_classified_at_once(tmp_path: Path) -> None:
    assert await labelled_with_at_most(tmp_path, 2) == 2
    # Positive control: allowed five, the loop does ask about all five at once.
    assert await labelled_with_at_most(tmp_path, 5) == 5


def ingress_env(db: Path, port: int, fake: FakeOpenAI) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THOTH_", "DISCORD_"))}
    return {
        **env,
        "THOTH_DB_PATH": str(db),
        "THOTH_INGRESS_PORT": str(port),
        "THOTH_LLM_MODEL": "fake-model",
        "THOTH_LLM_BASE_URL": fake.base_url,
        "THOTH_LLM_API_KEY": "k",
    }


@contextlib.asynccontextmanager
async def thothbot_ingress(env: dict[str, str], log: Path) -> AsyncIterator[int]:
    """``python -m thothbot ingress`` in its own process; yields its pid until it ends."""
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "thothbot", "ingress", env=env, stdout=output, stderr=output
        )
    try:
        yield process.pid
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_a_ticket_left_unlabelled_by_sigkill_is_labelled_after_the_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "thoth.db"
    created = keys.new_key(G, datetime.now(UTC))
    async with services_on(db) as services:
        await services.keys.create(created.row)
        assert (await services.desk.save_rules(G, json.dumps(PAGE_CRITICAL))).saved
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "thothbot.log"
    event = {
        "ticket_id": "T-9",
        "subject": "A question about my invoice",  # the keyword heuristic would say low
        "body": "Nothing urgent.",
        "customer_tier": "pro",
        "channel": "email",
    }
    async with fake_model() as fake:
        fake.answering.clear()  # asked, the model does not answer before the kill
        env = ingress_env(db, port, fake)
        async with thothbot_ingress(env, log) as pid:
            await healthy(url)
            async with aiohttp.ClientSession() as http:
                response = await http.post(
                    f"{url}/v1/events/support.ticket.created",
                    json=event,
                    headers={"Authorization": f"Bearer {created.api_key}"},
                )
                assert response.status == 202, await response.text()
            await eventually(lambda: fake.in_flight == 1)  # the ticket is open, being labelled
            os.kill(pid, signal.SIGKILL)
        assert rows(db, "SELECT ref, urgency, escalated FROM tickets") == [("T-9", None, 0)]

        fake.answering.set()
        async with thothbot_ingress(env, log):
            await eventually(
                lambda: (
                    rows(db, "SELECT ref, urgency, escalated FROM tickets")
                    == [("T-9", "critical", 1)]
                ),
            )
        assert rows(db, "SELECT rule_id FROM rule_firings") == [("page",)]
        assert rows(db, "SELECT status FROM ingress_events") == [("done",)]
