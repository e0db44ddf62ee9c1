"""Nothing doubled when `thothbot run` is killed between "Discord took the post" and "we
recorded it", counted in what people see, long after Discord has forgotten the nonce.

The sandbox holds the answer to the post (the post itself is stored and shown), the test kills
the process with SIGKILL from outside at that moment, moves the sandbox's clock past the nonce
window, and restarts. The controls take away the bot's Read Message History, so it cannot find
its marker: then the count shows the post twice, which proves the count would catch it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.desk import Live, live_desk
from tests.e2e.test_crash import free_port, healthy, run_env, send_all, thothbot_run
from thothbot.application import build
from thothbot.config import Config
from thothbot.core.channels import DiscordSetup
from thothbot.demo import World, build_world
from thothbot.keys import new_key
from thothbot.sandbox import Sandbox
from thothbot.sandbox.world import NONCE_WINDOW, READ_MESSAGE_HISTORY
from thothbot.store.outbox import HELD

ESCALATE_ALL = [{"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]}]
LOOPBACK = "127.0.0.1/32"  # the sandbox and the ingress are on this host

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


# -- the sandbox behaves like Discord where it matters -------------------------------------------


@dataclass
class Api:
    sandbox: Sandbox
    http: aiohttp.ClientSession
    channel: str

    async def call(
        self, method: str, path: str, body: Any = None, *, auth: bool = True
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bot {self.sandbox.bot_token}"} if auth else {}
        url = path if path.startswith("http") else self.sandbox.api_url + path
        async with self.http.request(method, url, json=body, headers=headers) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)


@pytest.fixture
async def api(discord: Sandbox) -> Any:
    world = build_world(discord)
    async with aiohttp.ClientSession() as http:
        yield Api(discord, http, world.ops)


async def test_a_nonce_is_remembered_for_a_few_minutes_of_the_sandboxs_clock(api: Api) -> None:
    post = {"content": "page", "nonce": "thoth-d1", "enforce_nonce": True}
    status, first = await api.call("POST", f"/channels/{api.channel}/messages", post)
    assert status == 200
    assert first["nonce"] == "thoth-d1"  # the answer to the post carries it

    api.sandbox.advance_clock(NONCE_WINDOW - 10)
    _, again = await api.call("POST", f"/channels/{api.channel}/messages", post)
    assert again["id"] == first["id"]  # within the window: the first message, not a second
    assert len(api.sandbox.messages(api.channel)) == 1

    api.sandbox.advance_clock(20)
    _, later = await api.call("POST", f"/channels/{api.channel}/messages", post)
    assert later["id"] != first["id"]  # forgotten: a second post
    assert len(api.sandbox.messages(api.channel)) == 2

    _, history = await api.call("GET", f"/channels/{api.channel}/messages")
    assert [m["id"] for m in history] == [later["id"], first["id"]]
    assert all("nonce" not in m for m in history)  # Discord does not return nonces here


async def test_a_channel_webhook_posts_and_answers_the_message_only_when_asked_to_wait(
    api: Api,
) -> None:
    url = api.sandbox.add_webhook(api.channel, "Escalations")
    body = {"content": "", "embeds": [{"title": "Escalated: x", "footer": {"text": "ref m1"}}]}

    status, answer = await api.call("POST", url, body, auth=False)
    assert (status, answer) == (204, None)
    status, message = await api.call("POST", url + "?wait=true", body, auth=False)
    assert status == 200
    [_, second] = api.sandbox.messages(api.channel)
    assert message["id"] == second["id"]
    assert message["webhook_id"] == second["author"]["id"] == url.split("/")[-2]
    assert message["author"]["username"] == "Escalations"
    assert message["embeds"][0]["footer"] == {"text": "ref m1"}

    status, hook = await api.call("GET", url, auth=False)
    assert (status, hook["channel_id"], "token" in hook) == (200, api.channel, False)
    status, _ = await api.call("POST", url.rsplit("/", 1)[0] + "/wrong", body, auth=False)
    assert status == 401
    assert len(api.sandbox.messages(api.channel)) == 2


async def test_a_held_request_is_carried_out_and_its_answer_waits_for_release(api: Api) -> None:
    hold = api.sandbox.hold_next("POST", rf"^/channels/{api.channel}/messages$", after=True)
    sending = asyncio.create_task(
        api.call("POST", f"/channels/{api.channel}/messages", {"content": "page"})
    )
    await hold.wait(5)
    assert [m["content"] for m in api.sandbox.messages(api.channel)] == ["page"]  # stored
    assert not sending.done()  # and not answered
    hold.release()
    status, message = await sending
    assert (status, message["content"]) == (200, "page")
    # One request only: the next one is answered at once.
    assert (await api.call("POST", f"/channels/{api.channel}/messages", {"content": "2"}))[0] == 200


# -- killed at the crash point, counted in the channel ------------------------------------------


@dataclass
class Desked:
    world: World
    env: dict[str, str]
    url: str
    api_key: str
    db_path: Path


async def set_up(discord: Sandbox, tmp_path: Path, settings: dict[str, Any]) -> Desked:
    world = build_world(discord)
    category = discord.add_channel(world.guild, "Tickets", type=4)
    db_path = tmp_path / "thoth.db"
    key = new_key(world.guild, datetime.now(UTC))
    async with build(guarded(discord, db_path)) as app:  # the guard as `thothbot run` has it
        await app.desk.save_setup(
            DiscordSetup(world.guild, world.staff_role, world.ops, world.log, (category,))
        )
        await app.desk.save_settings(world.guild, json.dumps(settings), datetime.now(UTC))
        assert (await app.desk.save_rules(world.guild, json.dumps(ESCALATE_ALL))).saved
        await app.services.keys.create(key.row)
    port = free_port()
    env = run_env(
        discord, world, db_path,
        THOTH_INGRESS_PORT=str(port),
        THOTH_OUTBOUND_ALLOW=LOOPBACK,
        LOG_LEVEL="INFO",
    )  # fmt: skip
    return Desked(world, env, f"http://127.0.0.1:{port}", key.api_key, db_path)


def escalations(discord: Sandbox, channel: str) -> list[str]:
    """The escalation posts people see in the channel (their titles)."""
    return [
        embed["title"]
        for message in discord.messages(channel)
        for embed in message["embeds"]
        if embed.get("title", "").startswith("Escalated: ")
    ]


def all_delivered(db_path: Path) -> Callable[[], bool]:
    def check() -> bool:
        with contextlib.closing(sqlite3.connect(db_path)) as db:
            pending, total = db.execute(
                "SELECT sum(status = 'pending'), count(*) FROM deliveries"
            ).fetchone()
        return bool(total) and not pending

    return check


async def kill_at_the_post_then_restart(
    discord: Sandbox,
    desk: Desked,
    tmp_path: Path,
    post_path: str,
    channel: str,
    *,
    discord_took_it: bool = True,
) -> bool:
    """Escalate one ticket; SIGKILL once Discord has stored its post and before the answer
    reaches the bot (or, without ``discord_took_it``, once the post is asked for and before
    Discord acts on it); forget the nonce; run again until the outbox is empty. Whether the
    killed process held the delivery for its own worker (the desk's handoff)."""
    log = tmp_path / "thothbot.log"
    hold = discord.hold_next("POST", post_path, after=discord_took_it)
    accepted: set[int] = set()
    async with thothbot_run(desk.env, tmp_path, log) as pid:
        await healthy(desk.url)
        if not discord_took_it:
            # Connected: the delivery worker has opened the desk's handoff of #ops posts.
            await healthy(desk.url, path="/readyz")
        await send_all(desk.url, desk.api_key, [1], accepted)
        assert accepted == {1}
        await hold.wait(20)
        os.kill(pid, signal.SIGKILL)
    with contextlib.closing(sqlite3.connect(desk.db_path)) as db:
        held = db.execute("SELECT count(*) FROM deliveries WHERE next_at = ?", (HELD,)).fetchone()
    expected = ["Escalated: Outage report 1"] if discord_took_it else []
    assert escalations(discord, channel) == expected  # what Discord has at the kill
    discord.advance_clock(NONCE_WINDOW + 60)  # long enough for Discord to forget the nonce
    hold.release()

    async with thothbot_run(desk.env, tmp_path, log):
        await healthy(desk.url)
        await discord.wait_for(all_delivered(desk.db_path), timeout=30)
    return bool(held[0])


@pytest.mark.parametrize("can_read", [True, False], ids=["look", "control-cannot-look"])
async def test_killed_after_the_ops_webhook_took_the_post_it_is_posted_once(
    discord: Sandbox, tmp_path: Path, can_read: bool
) -> None:
    desk = await set_up(discord, tmp_path, {})
    hook = discord.add_webhook(desk.world.ops, "Escalations")
    await save_settings(desk, discord, {"ops_webhook": hook})
    if not can_read:
        discord.set_overwrite(desk.world.ops, discord.bot_user["id"], deny=READ_MESSAGE_HISTORY)

    await kill_at_the_post_then_restart(
        discord, desk, tmp_path, r"^/webhooks/\d+/[^/]+$", desk.world.ops
    )

    seen = escalations(discord, desk.world.ops)
    assert seen.count("Escalated: Outage report 1") == (1 if can_read else 2), seen
    assert all(m.get("webhook_id") for m in discord.messages(desk.world.ops))  # none by the bot


@pytest.mark.parametrize("can_read", [True, False], ids=["look", "control-cannot-look"])
async def test_killed_after_discord_took_the_bots_ops_post_it_is_posted_once(
    discord: Sandbox, tmp_path: Path, can_read: bool
) -> None:
    desk = await set_up(discord, tmp_path, {})
    if not can_read:
        discord.set_overwrite(desk.world.ops, discord.bot_user["id"], deny=READ_MESSAGE_HISTORY)

    await kill_at_the_post_then_restart(
        discord, desk, tmp_path, rf"^/channels/{desk.world.ops}/messages$", desk.world.ops
    )

    seen = escalations(discord, desk.world.ops)
    assert seen.count("Escalated: Outage report 1") == (1 if can_read else 2), seen


async def test_killed_after_the_desk_handed_the_ops_post_before_discord_took_it_it_is_posted_once(
    discord: Sandbox, tmp_path: Path
) -> None:
    # The desk's unit saved the #ops delivery marked "attempting" and held it for this process's
    # worker; the process dies while the worker's post waits, before Discord acts. After the
    # restart the held row is released, the bot looks in #ops, finds nothing, and posts.
    desk = await set_up(discord, tmp_path, {})

    handed_and_held = await kill_at_the_post_then_restart(
        discord,
        desk,
        tmp_path,
        rf"^/channels/{desk.world.ops}/messages$",
        desk.world.ops,
        discord_took_it=False,
    )

    assert handed_and_held, "the post did not go through the desk's handoff"
    assert escalations(discord, desk.world.ops) == ["Escalated: Outage report 1"]


def guarded(discord: Sandbox, db_path: Path) -> Config:
    """`thothbot run`'s configuration here: destinations on this host allowed."""
    return Config(db_path=str(db_path), discord_api_url=discord.api_url, outbound_allow=(LOOPBACK,))


async def save_settings(desk: Desked, discord: Sandbox, settings: dict[str, Any]) -> None:
    async with build(guarded(discord, desk.db_path)) as app:
        await app.desk.save_settings(desk.world.guild, json.dumps(settings), datetime.now(UTC))


# -- a deleted ops webhook, through the real bot ------------------------------------------------


@pytest.fixture
async def guarded_live(discord: Sandbox, tmp_path: Path) -> AsyncIterator[Live]:
    """The configured bot, with destinations on this host allowed (THOTH_OUTBOUND_ALLOW)."""
    async for live in live_desk(discord, tmp_path, bot={"outbound_allow": [LOOPBACK]}):
        yield live


async def test_a_deleted_ops_webhook_is_disabled_the_admins_told_and_ops_gets_the_post(
    guarded_live: Live,
) -> None:
    live = guarded_live
    w = live.world
    assert live.bot is not None
    desk = live.bot.desk
    escalations_channel = live.sandbox.add_channel(w.guild, "escalations")
    hook = live.sandbox.add_webhook(escalations_channel, "Escalations")
    document = (await desk.config(w.guild)).document
    await desk.save_settings(
        w.guild, json.dumps({**document, "ops_webhook": hook}), live.clock.now()
    )

    channel = await live.open_ticket(type="billing")
    await live.say(channel, w.customer, "refund please")
    await live.sandbox.wait_for(lambda: escalations(live.sandbox, escalations_channel))

    live.sandbox.delete_webhook(hook)  # an admin removed it in Discord
    second = await live.open_ticket(subject="Another refund", type="billing")
    await live.say(second, w.customer, "refund please, again")
    # The admins are told, and the escalation still reaches #ops, through the bot.
    await live.sandbox.wait_for(lambda: len(live.messages(w.ops)) >= 2)
    [notice] = [m for m in live.messages(w.ops) if m["content"]]
    assert escalations(live.sandbox, w.ops) == ["Escalated: Another refund"]
    assert notice["content"].startswith(
        "Escalations are no longer sent to the Discord webhook at 127.0.0.1:"
    )
    assert "saving the settings again turns it back on" in notice["content"]
    assert hook.rsplit("/", 1)[1] not in notice["content"]  # no token shown
    assert (notice["mentions"], notice["mention_roles"]) == ([], [])
    assert len(escalations(live.sandbox, escalations_channel)) == 1
