"""A ticket's open and close survive SIGKILL at every step: `thothbot run` is killed while the
sandbox holds one of its requests, restarted, and the test counts what people see in Discord:
one transcript in the log channel, one transcript DM, one rating request, the channel deleted,
one channel and one card per ticket, no orphan channel, no number used twice, the customer told.

Two positive controls show the counting catches a double and a loss.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Live, message_text
from tests.e2e.test_crash import run_env, thothbot_run
from tests.support import services_on
from thothbot.core.channels import DiscordSetup
from thothbot.demo import World, build_world
from thothbot.sandbox import RecordedRequest, Sandbox

JSON = dict[str, Any]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


@dataclass
class Seen:
    """What people see of ticket #1 in the sandbox."""

    log_transcripts: int  # posts in the log channel
    dm_transcripts: int  # transcript DMs to the customer
    rating_requests: int  # in DMs and in the ticket channel
    ticket_channels: list[str]  # the names of ticket channels left in the server
    cards: int  # ticket cards in ticket-0001
    told_open: int  # messages telling the customer their ticket is open (in its channel)
    told_not_opened: int  # DMs telling the customer their ticket could not be opened


def rating_buttons(message: JSON, ticket_id: int | None = None) -> bool:
    prefix = f"thoth:rate:{ticket_id}:" if ticket_id is not None else "thoth:rate:"
    return any(
        str(c.get("custom_id", "")).startswith(prefix)
        for row in message.get("components") or []
        for c in row.get("components") or []
    )


def card(message: JSON) -> bool:
    return any(
        str(c.get("custom_id", "")).startswith("thoth:close:")
        for row in message.get("components") or []
        for c in row.get("components") or []
    )


@dataclass
class Crashable:
    """The sample server, a database set up for it, and `thothbot run` to start and kill."""

    discord: Sandbox
    world: World
    db_path: Path
    env: dict[str, str]
    cwd: Path
    log: Path

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[int]:
        """`thothbot run`, connected; yields its pid."""
        before = set(self.discord.gateway.sessions)
        async with thothbot_run(self.env, self.cwd, self.log) as pid:
            sessions = self.discord.gateway.sessions

            def connected() -> bool:
                return any(s.conn is not None for i, s in sessions.items() if i not in before)

            await self.discord.wait_for(connected, timeout=30)
            yield pid

    async def open_ticket(self, subject: str = "Charged twice") -> str:
        w = self.world
        answer = await self.discord.slash(
            w.guild, w.help, w.customer, "ticket open", {"subject": subject}
        )
        await answer.done(timeout=10)
        assert "Your ticket is open" in answer.text(), answer.text()
        return self.ticket_channel(f"ticket-{self.number_of(subject):04d}")

    def number_of(self, subject: str) -> int:
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            (number,) = db.execute(
                "SELECT number FROM tickets WHERE subject = ?", (subject,)
            ).fetchone()
        return int(number)

    def ticket_channel(self, name: str) -> str:
        found = [c["id"] for c in self.discord.channels(self.world.guild) if c["name"] == name]
        assert len(found) == 1, f"{len(found)} channels named {name}"
        return str(found[0])

    async def close(self, channel: str) -> None:
        w = self.world
        await self.discord.send_message(channel, w.customer, "My card shows two charges.")
        await self.discord.slash(w.guild, channel, w.customer, "ticket close")

    def seen(self) -> Seen:
        w, sb = self.world, self.discord
        log = [m for m in sb.messages(w.log) if m["author"]["id"] == sb.world.bot_id]
        dms = sb.dm_messages(w.customer)
        channels = [c for c in sb.channels(w.guild) if re.fullmatch(r"ticket-\d{4}", c["name"])]
        first = next((c["id"] for c in channels if c["name"] == "ticket-0001"), None)
        in_channel = sb.messages(first) if first is not None else []
        ticket = self.db("SELECT id FROM tickets WHERE number = 1")
        ticket_id = ticket[0][0] if ticket else 0
        return Seen(
            log_transcripts=sum(
                message_text(m).startswith("Transcript of ticket #1 (") for m in log
            ),
            dm_transcripts=sum(message_text(m).startswith("Your ticket #1 (") for m in dms),
            rating_requests=sum(rating_buttons(m, ticket_id) for m in [*dms, *in_channel]),
            ticket_channels=sorted(c["name"] for c in channels),
            cards=sum(card(m) for m in in_channel),
            told_open=sum(
                f"<@{w.customer}>, " in (m.get("content") or "")
                and any(u["id"] == w.customer for u in m["mentions"])
                for m in in_channel
            ),
            told_not_opened=sum("could not be opened" in (m.get("content") or "") for m in dms),
        )

    async def closed(self, channel: str) -> Seen:
        """Wait for the channel's deletion, the closing's last step, and its record; count."""
        await self.discord.wait_for(lambda: self.discord.channel(channel) is None, timeout=30)
        await self.discord.wait_for(
            lambda: self.db("SELECT count(*) FROM closings WHERE finished_at IS NULL") == [(0,)],
            timeout=30,
        )
        return self.seen()

    def db(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with contextlib.closing(sqlite3.connect(self.db_path)) as db, db:
            return db.execute(sql, params).fetchall()


async def crashable(discord: Sandbox, tmp_path: Path, **settings: str) -> Crashable:
    """The sample server set up on a database in ``tmp_path``, for `thothbot run` with
    ``settings`` (environment variables)."""
    world = build_world(discord)
    category = discord.add_channel(world.guild, "Tickets", type=4)
    db_path = tmp_path / "thoth.db"
    async with services_on(db_path) as services:
        await services.desk.save_setup(
            DiscordSetup(world.guild, world.staff_role, world.ops, world.log, (category,))
        )
    env = run_env(discord, world, db_path, **settings)
    return Crashable(discord, world, db_path, env, tmp_path, tmp_path / "thothbot.log")


@pytest.fixture
async def desk(discord: Sandbox, tmp_path: Path) -> Crashable:
    return await crashable(discord, tmp_path, THOTH_CLOSE_DELAY="0.5", LOG_LEVEL="INFO")


def content_starts(prefix: str) -> Callable[[RecordedRequest], bool]:
    return lambda r: str((r.json or {}).get("content") or "").startswith(prefix)


def asks_rating(r: RecordedRequest) -> bool:
    return rating_buttons(r.json or {})


# Where a close is stopped: (method, path, held after Discord acted, which request)
CLOSE_POINTS: dict[str, tuple[str, str, bool, Callable[[RecordedRequest], bool] | None]] = {
    "reading the history": ("GET", r"^/channels/{channel}/messages$", False, None),
    "the log upload taken": ("POST", r"^/channels/{log}/messages$", True, None),
    "the log upload not taken": ("POST", r"^/channels/{log}/messages$", False, None),
    "the transcript DM taken": (
        "POST", r"^/channels/{dm}/messages$", True, content_starts("Your ticket #1"),
    ),
    "the rating request taken": ("POST", r"^/channels/{dm}/messages$", True, asks_rating),
    "the channel deletion taken": ("DELETE", r"^/channels/{channel}$", True, None),
}  # fmt: skip


async def kill_during_close(desk: Crashable, point: str) -> str:
    """Open a ticket, close it, and SIGKILL the bot while the sandbox holds ``point``."""
    method, path, after, where = CLOSE_POINTS[point]
    async with desk.running() as pid:
        channel = await desk.open_ticket()
        dm = desk.discord.dm_channel(desk.world.customer)
        place = path.format(channel=channel, log=desk.world.log, dm=dm)
        hold = desk.discord.hold_next(method, place, after=after, where=where)
        await desk.close(channel)
        await hold.wait(timeout=20)
        os.kill(pid, signal.SIGKILL)
    hold.drop()
    return channel


@pytest.mark.parametrize("point", list(CLOSE_POINTS))
async def test_a_close_killed_at_each_step_is_seen_once_after_a_restart(
    desk: Crashable, point: str
) -> None:
    channel = await kill_during_close(desk, point)
    async with desk.running():
        seen = await desk.closed(channel)
    assert (seen.log_transcripts, seen.dm_transcripts, seen.rating_requests) == (1, 1, 1), (
        desk.log.read_text()
    )
    assert seen.ticket_channels == []
    assert desk.db("SELECT count(*) FROM closings WHERE finished_at IS NULL") == [(0,)]
    assert desk.db("SELECT count(*) FROM transcript_parts") == [(0,)]  # ticket text not kept


async def test_a_rating_asked_in_the_channel_before_a_crash_is_asked_once(
    desk: Crashable,
) -> None:
    """A customer without DMs is asked in the ticket channel; the crash came after Discord took
    that request and before it was recorded."""
    w = desk.world
    desk.discord.world.dms_open[w.customer] = False
    async with desk.running() as pid:
        channel = await desk.open_ticket()
        hold = desk.discord.hold_next(
            "POST", rf"^/channels/{channel}/messages$", after=True, where=asks_rating
        )
        await desk.close(channel)
        await hold.wait(timeout=20)
        os.kill(pid, signal.SIGKILL)
    hold.drop()
    asked = [m for m in desk.discord.messages(channel) if rating_buttons(m)]
    async with desk.running():
        seen = await desk.closed(channel)
    assert len(asked) == 1  # what the crash left: the request, in the channel
    assert (seen.log_transcripts, seen.dm_transcripts) == (1, 0)
    (ask,) = [r for r in desk.discord.requests_to("POST", rf"^/channels/{channel}/messages$")
              if asks_rating(r)]  # fmt: skip
    assert ask.status == 200  # asked once: no second request after the restart


async def test_control_the_count_sees_a_double_post(desk: Crashable) -> None:
    """Without the look before posting (the attempt count wiped), the log upload Discord took
    before the crash is posted again, and the count shows it."""
    channel = await kill_during_close(desk, "the log upload taken")
    desk.db("UPDATE closings SET attempts = 0")
    async with desk.running():
        seen = await desk.closed(channel)
    assert seen.log_transcripts == 2
    assert (seen.dm_transcripts, seen.rating_requests) == (1, 1)


async def test_control_the_count_sees_a_lost_close(desk: Crashable) -> None:
    """Without the saved closing (as before), a crash while reading loses the transcript, the
    DM and the rating request, and the count shows it."""
    channel = await kill_during_close(desk, "reading the history")
    desk.db("DELETE FROM closings")
    async with desk.running():
        # Another ticket closed from start to end: the closing worker has done all it had.
        second = await desk.open_ticket("Another question")
        await desk.close(second)
        await desk.closed(second)
    seen = desk.seen()
    assert (seen.log_transcripts, seen.dm_transcripts, seen.rating_requests) == (0, 0, 0)
    assert desk.discord.channel(channel) is not None  # and nothing deletes the channel


# Opening


async def test_killed_after_discord_made_the_channel_the_ticket_is_finished(
    desk: Crashable,
) -> None:
    """The crash came between the channel's creation and the bot hearing of it: after the
    restart the channel is adopted (ticket saved, card posted, customer pinged there)."""
    w = desk.world
    async with desk.running() as pid:
        hold = desk.discord.hold_next("POST", rf"^/guilds/{w.guild}/channels$", after=True)
        await desk.discord.slash(w.guild, w.help, w.customer, "ticket open", {"subject": "Lost"})
        await hold.wait(timeout=20)
        os.kill(pid, signal.SIGKILL)
    hold.drop()
    assert [c["name"] for c in desk.discord.channels(w.guild) if c["type"] == 0][-1] == (
        "ticket-0001"
    )  # the orphan the crash left
    async with desk.running():
        await desk.discord.wait_for(lambda: desk.seen().cards, timeout=30)
        second = await desk.open_ticket("Another question")
    seen = desk.seen()
    assert seen.ticket_channels == ["ticket-0001", "ticket-0002"], desk.log.read_text()
    assert (seen.cards, seen.told_open) == (1, 1)
    assert "your ticket is open" in message_text(desk.discord.messages(desk.ticket_channel(
        "ticket-0001"))[0])  # fmt: skip
    assert desk.discord.channel(second) is not None
    assert desk.db("SELECT number, subject FROM tickets ORDER BY number") == [
        (1, "Lost"), (2, "Another question"),
    ]  # fmt: skip
    assert desk.db("SELECT count(*) FROM openings") == [(0,)]


@pytest.mark.parametrize("customer_stays", [True, False])
async def test_killed_before_discord_made_the_channel_it_is_made_or_the_customer_told(
    desk: Crashable, customer_stays: bool
) -> None:
    """The crash came before Discord made the channel. After the restart the ticket is opened
    for the customer, or, when they left the server meanwhile, given up: no channel, the
    number given back, and a DM saying so."""
    w = desk.world
    async with desk.running() as pid:
        hold = desk.discord.hold_next("POST", rf"^/guilds/{w.guild}/channels$")
        await desk.discord.slash(w.guild, w.help, w.customer, "ticket open", {"subject": "Lost"})
        await hold.wait(timeout=20)
        os.kill(pid, signal.SIGKILL)
    hold.drop()
    assert desk.seen().ticket_channels == []
    if not customer_stays:
        desk.discord.remove_member(w.guild, w.customer)
    async with desk.running():
        await desk.discord.wait_for(
            lambda: desk.db("SELECT count(*) FROM openings") == [(0,)], timeout=30
        )
        if not customer_stays:
            desk.discord.add_member(w.guild, w.customer)
        await desk.open_ticket("Another question")
    seen = desk.seen()
    if customer_stays:
        assert seen.ticket_channels == ["ticket-0001", "ticket-0002"], desk.log.read_text()
        assert (seen.cards, seen.told_open, seen.told_not_opened) == (1, 1, 0)
        numbers = [(1, "Lost"), (2, "Another question")]
    else:
        assert seen.ticket_channels == ["ticket-0001"], desk.log.read_text()
        assert seen.told_not_opened == 1
        numbers = [(1, "Another question")]  # the number given up was given back
    assert desk.db("SELECT number, subject FROM tickets ORDER BY number") == numbers


@pytest.mark.parametrize("taken", [True, False])
async def test_killed_while_the_card_is_posted_it_is_there_once(
    desk: Crashable, taken: bool
) -> None:
    """The ticket is saved; the crash came as its card was posted, before or after Discord
    took it: after the restart the card is there once (looked for before posting)."""
    w = desk.world
    async with desk.running() as pid:
        hold = desk.discord.hold_next(
            "POST", r"^/channels/\d+/messages$", after=taken, where=lambda r: card(r.json or {})
        )
        await desk.discord.slash(w.guild, w.help, w.customer, "ticket open", {"subject": "Lost"})
        await hold.wait(timeout=20)
        os.kill(pid, signal.SIGKILL)
    hold.drop()
    async with desk.running():
        await desk.discord.wait_for(
            lambda: desk.db("SELECT count(*) FROM openings") == [(0,)], timeout=30
        )
        await desk.open_ticket("Another question")
    seen = desk.seen()
    assert seen.ticket_channels == ["ticket-0001", "ticket-0002"], desk.log.read_text()
    assert (seen.cards, seen.told_open) == (1, 1)
    assert desk.db("SELECT number FROM tickets ORDER BY number") == [(1,), (2,)]


async def test_a_channel_made_for_an_opening_not_on_record_is_removed_at_start(
    live: Live,
) -> None:
    """A database restored from before an opening: its channel names an opening nobody knows
    and no ticket uses it, so it is removed and its customer told; the rest stays."""
    w, sandbox = live.world, live.sandbox
    kept = await live.open_ticket()  # its topic names a finished opening: the ticket uses it
    assert "(thoth opening " in str(sandbox.channel(kept)["topic"])  # type: ignore[index]
    category = str(sandbox.channel(kept)["parent_id"])  # type: ignore[index]
    stray = sandbox.add_channel(
        w.guild, "ticket-0042", parent_id=category, topic="Ticket #42 (thoth opening 999)",
        overwrites=[{"id": w.customer, "type": 1, "allow": 1 << 10}],
    )  # fmt: skip
    plain = sandbox.add_channel(w.guild, "notes", parent_id=category, topic="no marker here")
    await live.restart()

    def told() -> list[JSON]:
        return [m for m in sandbox.dm_messages(w.customer) if "could not be opened" in m["content"]]

    await sandbox.wait_for(told)  # after the stray's removal
    assert sandbox.channel(stray) is None
    assert sandbox.channel(kept) is not None
    assert sandbox.channel(plain) is not None
    assert len(told()) == 1
