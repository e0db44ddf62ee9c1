"""`thothbot run` runs the retention loop (thothbot/maintenance.py), with or without the ingress:
against the sandbox and the real clock, a rule firing made 100 days ago is deleted at start and
one made today stays. The command runs in its own process, killed at the end, as an operator's
would be."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support import services_on
from tests.test_ingress import eventually
from thothbot.sandbox import Sandbox

RULES = [{"id": "tag", "trigger": "ticket_opened", "actions": [{"type": "add_tag", "tag": "x"}]}]


async def test_thothbot_run_deletes_what_is_past_its_retention(
    discord: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "thoth.db"
    now = datetime.now(UTC)
    async with services_on(path) as services:
        desk = services.desk
        assert (await desk.save_rules("g", json.dumps(RULES))).saved
        old = await desk.open_ticket("g", "U1", "Old", now - timedelta(days=100))
        young = await desk.open_ticket("g", "U2", "New", now)

    def firings() -> list[tuple[int]]:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT ticket_id FROM rule_firings").fetchall()

    assert firings() == [(old.id,), (young.id,)]
    env = {
        **os.environ,
        "DISCORD_TOKEN": discord.bot_token,
        "THOTH_DB_PATH": str(path),
        "THOTH_DISCORD_API_URL": discord.api_url,
        "THOTH_DISCORD_GATEWAY_URL": discord.gateway_url,
        "THOTH_INGRESS_PORT": "0",  # the health server's port: any free one, never 8080
    }
    with (tmp_path / "run.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "thothbot", "run", env=env, cwd=tmp_path,
            stdout=log, stderr=log,
        )  # fmt: skip
    try:
        await eventually(lambda: firings() == [(young.id,)], within=30)
    finally:
        process.kill()
        await process.wait()
