"""`thothbot run` as an operator sees it, in its own process against the sandbox: the health
server, the ready line, a clean stop on SIGTERM, JSON logs without what customers wrote."""

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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.test_crash import send_all
from tests.support import services_on
from thothbot.core.channels import DiscordSetup
from thothbot.demo import World, build_world
from thothbot.keys import new_key
from thothbot.sandbox import Sandbox

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX")

ESCALATE_ALL = [{"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]}]
PII = ("dana.customer@example.org", "+44 7700 900123", "4111 1111 1111 1111")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Bot:
    """`python -m thothbot run` in its own process."""

    process: asyncio.subprocess.Process
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return await asyncio.wait_for(self.process.wait(), 30)

    async def get(self, path: str) -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(self.url + path) as response,
        ):
            return response.status, await response.text()

    async def until(self, path: str, status: int, timeout: float = 20.0) -> str:  # noqa: ASYNC109
        """Poll ``path`` until it answers ``status``; its body."""
        deadline = asyncio.get_running_loop().time() + timeout
        last: object = None
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                got, body = await self.get(path)
                if got == status:
                    return body
                last = (got, body)
            if self.process.returncode is not None:
                raise AssertionError(f"thothbot run exited: {self.output()}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"{path} never answered {status} (last: {last}): {self.output()}")


@contextlib.asynccontextmanager
async def thothbot_run(env: dict[str, str], cwd: Path) -> AsyncIterator[Bot]:
    log = cwd / "thothbot.log"
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "thothbot", "run", env=env, cwd=cwd,
            stdout=output, stderr=output,
        )  # fmt: skip
    bot = Bot(process, f"http://127.0.0.1:{env['THOTH_INGRESS_PORT']}", log)
    try:
        yield bot
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def server(discord: Sandbox, db_path: Path, *, with_key: bool = False) -> World:
    """The sample server set up in the database: escalate every ticket to #ops."""
    world = build_world(discord)
    category = discord.add_channel(world.guild, "Tickets", type=4)
    async with services_on(db_path) as services:
        await services.desk.save_setup(
            DiscordSetup(world.guild, world.staff_role, world.ops, world.log, (category,))
        )
        assert (await services.desk.save_rules(world.guild, json.dumps(ESCALATE_ALL))).saved
        if with_key:
            await services.keys.create(new_key(world.guild, datetime.now(UTC)).row)
    return world


def environment(discord: Sandbox, db_path: Path, world: World, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THOTH_", "LOG_"))}
    return env | {
        "DISCORD_TOKEN": discord.bot_token,
        "THOTH_DB_PATH": str(db_path),
        "THOTH_DISCORD_API_URL": discord.api_url,
        "THOTH_DISCORD_GATEWAY_URL": discord.gateway_url,
        "THOTH_GUILD_IDS": world.guild,
        "THOTH_INGRESS_PORT": str(free_port()),
        "LOG_LEVEL": "INFO",
        **extra,
    }


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {name} in the metrics:\n{text}")


async def test_health_ready_metrics_then_sigterm_stops_cleanly(
    discord: Sandbox, tmp_path: Path
) -> None:
    db_path = tmp_path / "data" / "thoth.db"
    world = await server(discord, db_path)
    # The first command sync is rate limited once: discord.py waits, retries, and we count it.
    discord.fail_next("PUT", r"/commands$", status=429, retry_after=0.05)
    env = environment(discord, db_path, world)
    async with thothbot_run(env, tmp_path) as bot:
        assert json.loads(await bot.until("/healthz", 200)) == {"status": "ok"}
        ready = json.loads(await bot.until("/readyz", 200))
        assert ready == {"status": "ready", "gateway": "ready"}
        status, metrics = await bot.get("/metrics")
        assert status == 200
        assert metric(metrics, "thothbot_gateway_ready") == 1
        assert metric(metrics, 'thothbot_gateway_state{state="ready"}') == 1
        assert metric(metrics, "thothbot_discord_rest_rate_limited_total") == 1
        assert metric(metrics, "thothbot_discord_rest_retries_total") >= 1
        assert metric(metrics, 'thothbot_deliveries{status="pending"}') == 0
        assert "thothbot_ingress_events_accepted_total" in metrics
        # Without an API key only the health routes answer: the ingress's are not there.
        status, _ = await bot.get("/v1/events/support.ticket.created")
        assert status in (404, 405)

        # An escalation whose #ops post Discord keeps refusing stays in the outbox.
        discord.fail_next("POST", rf"/channels/{world.ops}/messages", status=500, count=1000)
        interaction = await discord.slash(
            world.guild, world.help, world.customer, "ticket open", {"subject": "Broken"}
        )
        await interaction.done(timeout=10)
        await discord.wait_for(
            lambda: discord.requests_to("POST", rf"/channels/{world.ops}/messages"), timeout=10
        )
        assert discord.gateway.sessions, "no gateway session while running"
        code = await bot.stop(signal.SIGTERM)

    output = bot.output()
    assert code == 0, output
    assert "Traceback" not in output
    ready_lines = [line for line in output.splitlines() if "ready: logged in as" in line]
    assert len(ready_lines) == 1, output
    assert "in 1 server;" in ready_lines[0]
    assert f"health on {bot.url}/healthz" in ready_lines[0]
    assert "no ingress" in ready_lines[0]
    assert "SIGTERM received: stopping" in output
    assert output.rstrip().endswith("stopped"), output
    # The bot closed its gateway session with a normal close (a killed process leaves it open,
    # to resume): the sandbox sees the close frame as soon as its loop runs.
    await discord.wait_for(lambda: not discord.gateway.sessions, timeout=5)
    with sqlite3.connect(db_path) as db:
        statuses = [row[0] for row in db.execute("SELECT status FROM deliveries")]
        tickets = db.execute("SELECT count(*) FROM tickets").fetchone()[0]
    assert tickets == 1
    assert statuses == ["pending"]


async def test_the_ingress_shares_the_health_servers_port(discord: Sandbox, tmp_path: Path) -> None:
    db_path = tmp_path / "thoth.db"
    world = await server(discord, db_path, with_key=True)
    env = environment(discord, db_path, world)
    async with thothbot_run(env, tmp_path) as bot:
        await bot.until("/readyz", 200)
        _, body = await bot.get("/metrics")
        assert metric(body, "thothbot_gateway_ready") == 1
        accepted = 'thothbot_ingress_events_accepted_total{event="support.ticket.created"}'
        assert metric(body, accepted) == 0
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(f"{bot.url}/v1/events/support.ticket.created", json={}) as response,
        ):
            assert response.status == 401  # the ingress's route: it wants a key
        await discord.wait_for(lambda: "ready: logged in" in bot.output(), timeout=10)
        assert await bot.stop(signal.SIGINT) == 0
    ready = next(line for line in bot.output().splitlines() if "ready: logged in" in line)
    assert f"the ingress on {bot.url}" in ready


async def test_readyz_is_503_until_the_gateway_is_ready_and_after_it_is_lost(
    discord: Sandbox, tmp_path: Path
) -> None:
    db_path = tmp_path / "thoth.db"
    world = await server(discord, db_path)
    # REST answers, the gateway does not (yet): the process is healthy, not ready.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        closed = f"ws://127.0.0.1:{held.getsockname()[1]}/"
        env = environment(discord, db_path, world, THOTH_DISCORD_GATEWAY_URL=closed)
        async with thothbot_run(env, tmp_path) as bot:
            await bot.until("/healthz", 200)
            body = json.loads(await bot.until("/readyz", 503))
            assert body["status"] == "not_ready"
            _, metrics = await bot.get("/metrics")
            assert metric(metrics, "thothbot_gateway_ready") == 0
            assert await bot.stop() == 0

    env = environment(discord, db_path, world)
    async with thothbot_run(env, tmp_path) as bot:
        await bot.until("/readyz", 200)
        await discord.stop()  # Discord goes away: the bot cannot reconnect
        body = json.loads(await bot.until("/readyz", 503))
        assert body == {"status": "not_ready", "gateway": "disconnected"}
        await bot.until("/healthz", 200)  # the process itself is fine
        _, metrics = await bot.get("/metrics")
        assert metric(metrics, "thothbot_gateway_disconnects_total") >= 1
        assert await bot.stop() == 0
    assert "Traceback" not in bot.output()


async def test_healthz_is_503_while_the_database_does_not_answer(
    discord: Sandbox, tmp_path: Path
) -> None:
    db_path = tmp_path / "thoth.db"
    world = await server(discord, db_path)
    env = environment(discord, db_path, world)
    async with thothbot_run(env, tmp_path) as bot:
        await bot.until("/readyz", 200)
        await bot.until("/healthz", 200)
        holder = sqlite3.connect(db_path, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # another program locks the database
            status, body = await bot.get("/healthz")
            assert status == 503
            assert json.loads(body)["status"] == "failing"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await bot.until("/healthz", 200)
        assert await bot.stop() == 0


async def test_json_logs_hold_ids_and_nothing_customers_wrote(
    discord: Sandbox, tmp_path: Path
) -> None:
    db_path = tmp_path / "thoth.db"
    world = await server(discord, db_path)
    env = environment(discord, db_path, world, LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    email, phone, card = PII
    async with thothbot_run(env, tmp_path) as bot:
        await bot.until("/readyz", 200)
        interaction = await discord.slash(
            world.guild, world.help, world.customer, "ticket open",
            {"subject": f"Refund to {email}", "description": f"Call me on {phone}"},
        )  # fmt: skip
        await interaction.done(timeout=10)
        channel = await discord.wait_for(
            lambda: next(
                (c for c in discord.channels(world.guild) if c["name"] == "ticket-0001"), None
            ),
            timeout=10,
        )
        assert channel is not None
        await discord.send_message(channel["id"], world.customer, f"My card is {card}")
        await discord.wait_for(lambda: discord.messages(world.ops), timeout=10)
        await discord.wait_for(lambda: '"ticket_id": "1"' in bot.output(), timeout=10)
        assert await bot.stop() == 0

    lines = bot.output().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r.get("ticket_id") == "1" and r.get("guild_id") == world.guild for r in records)
    assert any(r["message"].startswith("ready: logged in as") for r in records)
    text = bot.output()
    for secret in (*PII, "4111111111111111", "7700 900123", "example.org"):
        assert secret not in text
    # The control: the PII did reach Discord, so its absence from the log means something.
    assert any(email in m.get("content", "") + json.dumps(m.get("embeds", [])) for m in
               discord.messages(channel["id"]) + discord.messages(world.ops))  # fmt: skip


async def test_sigterm_in_a_burst_of_events_keeps_every_accepted_event(
    discord: Sandbox, tmp_path: Path
) -> None:
    db_path = tmp_path / "thoth.db"
    world = await server(discord, db_path)
    key = new_key(world.guild, datetime.now(UTC))
    async with services_on(db_path) as services:
        await services.keys.create(key.row)
    env = environment(
        discord, db_path, world, THOTH_INGRESS_RATE="100000", THOTH_INGRESS_BURST="100000"
    )
    accepted: set[int] = set()
    async with thothbot_run(env, tmp_path) as bot:
        await bot.until("/readyz", 200)
        sending = asyncio.create_task(
            send_all(bot.url, key.api_key, list(range(300)), accepted, 0.02)
        )
        await discord.wait_for(lambda: len(accepted) >= 20, timeout=20)
        code = await bot.stop(signal.SIGTERM)  # requests are under way
        await sending
    assert code == 0, bot.output()
    assert "Traceback" not in bot.output()
    assert 20 <= len(accepted) < 300, "the stop did not come in the middle of the burst"
    with sqlite3.connect(db_path) as db:
        refs = {
            row[0]
            for row in db.execute("SELECT json_extract(payload, '$.ticket_id') FROM ingress_events")
        }
    # Every event answered 202 was committed before the answer, and is still there.
    assert {f"EXT-{n}" for n in accepted} <= refs
