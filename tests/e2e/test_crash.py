"""A crash loses no escalation and posts none twice: `thothbot run` killed with SIGKILL in a
burst of ingress traffic, and a post repeated after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.desk import Live, message_text
from tests.support import services_on
from thothbot.core.channels import DiscordSetup
from thothbot.demo import World, build_world
from thothbot.keys import new_key
from thothbot.sandbox import Sandbox

EVENTS = 300
PACE = 0.04  # seconds between one client's requests: the burst lasts 1.5 s or more
ESCALATE_ALL = [{"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]}]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def run_env(discord: Sandbox, world: World, db_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a `thothbot run` on ``db_path`` serving ``world`` in the sandbox."""
    return {
        **os.environ,
        "DISCORD_TOKEN": discord.bot_token,
        "THOTH_DB_PATH": str(db_path),
        "THOTH_DISCORD_API_URL": discord.api_url,
        "THOTH_DISCORD_GATEWAY_URL": discord.gateway_url,
        "THOTH_GUILD_IDS": world.guild,
        # The health server always listens: a port of its own, never 8080 (another program's).
        "THOTH_INGRESS_PORT": "0",
        **settings,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def thothbot_run(env: dict[str, str], cwd: Path, log: Path) -> AsyncIterator[int]:
    """`python -m thothbot run` in its own process; yields its pid until killed or done."""
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "thothbot", "run", env=env, cwd=cwd,
            stdout=output, stderr=output,
        )  # fmt: skip
    try:
        yield process.pid
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def healthy(url: str, timeout: float = 20.0, path: str = "/healthz") -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{url}{path}") as response:
                    if response.status == 200:
                        return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{url} did not come up")
            await asyncio.sleep(0.05)


async def send_all(
    url: str, api_key: str, numbers: list[int], accepted: set[int], pace: float = 0.0
) -> None:
    """Post each event once (8 at a time); note the ones answered 202, ignore failures."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in numbers:
        queue.put_nowait(n)

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            event = {
                "ticket_id": f"EXT-{n}",
                "subject": f"Outage report {n}",
                "body": "Checkout fails",
                "customer_tier": "pro",
                "channel": "email",
            }
            headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": f"event-{n}"}
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.post(
                    f"{url}/v1/events/support.ticket.created", json=event, headers=headers
                ) as response:
                    if response.status == 202:
                        accepted.add(n)
            await asyncio.sleep(pace)

    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.gather(*(client(http) for _ in range(8)))


def nothing_pending(db_path: Path) -> bool:
    """No event waits to become a ticket and no post waits to be sent (or sent again)."""
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        (waiting,) = db.execute(
            "SELECT (SELECT count(*) FROM ingress_events WHERE status = 'pending')"
            " + (SELECT count(*) FROM deliveries WHERE status = 'pending')"
        ).fetchone()
    return bool(waiting == 0)


async def test_sigkill_in_a_burst_loses_no_escalation_and_posts_none_twice(
    discord: Sandbox, tmp_path: Path
) -> None:
    world = build_world(discord)
    category = discord.add_channel(world.guild, "Tickets", type=4)
    db_path = tmp_path / "thoth.db"
    key = new_key(world.guild, datetime.now(UTC))
    async with services_on(db_path) as services:
        await services.desk.save_setup(
            DiscordSetup(world.guild, world.staff_role, world.ops, world.log, (category,))
        )
        assert (await services.desk.save_rules(world.guild, json.dumps(ESCALATE_ALL))).saved
        await services.keys.create(key.row)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = run_env(
        discord, world, db_path,
        THOTH_INGRESS_PORT=str(port),
        THOTH_INGRESS_RATE="100000",
        THOTH_INGRESS_BURST="100000",
        LOG_LEVEL="WARNING",
    )  # fmt: skip
    log = tmp_path / "thothbot.log"
    numbers = list(range(EVENTS))
    accepted: set[int] = set()

    async with thothbot_run(env, tmp_path, log) as pid:
        await healthy(url)
        # The first event's post shows the bot is connected and delivering; then the burst.
        await send_all(url, key.api_key, numbers[:1], accepted)
        await discord.wait_for(lambda: discord.messages(world.ops), timeout=20)
        sending = asyncio.create_task(send_all(url, key.api_key, numbers[1:], accepted, PACE))
        await discord.wait_for(lambda: len(discord.messages(world.ops)) >= 10, timeout=20)
        os.kill(pid, signal.SIGKILL)  # mid-burst: some events accepted and posted, some not
        await sending
    assert 10 <= len(accepted) < EVENTS, "the kill did not come in the middle of the burst"

    async with thothbot_run(env, tmp_path, log):
        await healthy(url)
        # The sender retries what was not acknowledged, and, as senders do, some that were.
        again: set[int] = set()
        await send_all(url, key.api_key, numbers, again)
        assert again == set(numbers), log.read_text()
        await discord.wait_for(lambda: len(discord.messages(world.ops)) >= EVENTS, timeout=30)
        # Every event taken and every post recorded as sent: a duplicate would be posted by now.
        await discord.wait_for(lambda: nothing_pending(db_path), timeout=30)

    posts = [message_text(m) for m in discord.messages(world.ops)]
    subjects = [
        next(line for line in text.splitlines() if line.startswith("Escalated: ")) for text in posts
    ]
    assert sorted(subjects) == sorted(f"Escalated: Outage report {n}" for n in numbers)
    assert len(posts) == EVENTS  # none lost, none twice


async def test_a_post_repeated_after_a_crash_returns_the_first_message(live: Live) -> None:
    """The crash came after Discord took the #ops post, before it was recorded as sent."""
    w = live.world
    channel = await live.open_ticket(type="billing")
    await live.say(channel, w.customer, "refund please")
    await live.sandbox.wait_for(lambda: live.messages(w.ops))
    with sqlite3.connect(live.db_path) as db:
        db.execute("UPDATE deliveries SET status = 'pending', sent_at = NULL")
    assert live.bot is not None
    await live.bot.deliveries.send_due()
    await live.settle()
    assert len(live.messages(w.ops)) == 1
    counts = await live.bot.deliveries.outbox.counts()
    assert counts == {"sent": 1}
