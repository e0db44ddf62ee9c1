"""The live desk for end-to-end tests: the sandbox, the sample server and the real bot."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from thothbot.bot.client import ThothBot
from thothbot.demo import World, build_world, configure, running_bot
from thothbot.sandbox import Interaction, Sandbox

JSON = dict[str, Any]

# The names discord.py gives the tasks that run event listeners, slash commands and components.
HANDLERS = ("discord.py: ", "CommandTree-invoker", "discord-ui-view-dispatch-")


@dataclass
class Clock:
    """Real time plus an offset the test moves forward (SLA deadlines, close delays)."""

    offset: timedelta = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Live:
    sandbox: Sandbox
    world: World
    db_path: Path
    clock: Clock = field(default_factory=Clock)
    bot: ThothBot | None = None
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    # The bot

    async def start(self, **options: Any) -> ThothBot:
        self.bot = await self._stack.enter_async_context(
            running_bot(
                self.sandbox,
                self.db_path,
                (int(self.world.guild),),
                clock=self.clock.now,
                close_delay=options.pop("close_delay", 0.3),
                **options,
            )
        )
        return self.bot

    async def stop(self) -> None:
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()
        self.bot = None

    async def restart(self, **options: Any) -> ThothBot:
        await self.stop()
        return await self.start(**options)

    async def settle(self) -> None:
        """Wait until the bot has read every gateway event the sandbox sent it, the handlers
        those events started have ended and every effect they published is shown. A positive
        signal, so a check that something did not happen runs after it would have happened."""
        bot = self.bot
        assert bot is not None
        while True:
            session = self.sandbox.gateway.sessions[bot.ws.session_id or ""]
            sent = session.seq
            await self.sandbox.wait_for(functools.partial(read_up_to, bot, sent))
            handlers = [t for t in asyncio.all_tasks() if t.get_name().startswith(HANDLERS)]
            if handlers:
                _, running = await asyncio.wait(handlers, timeout=5.0)
                assert not running, f"the bot's handlers did not end: {running}"
            await bot.effects.settled()
            # Showing an effect sends events of its own (the echo of the bot's message).
            if not handlers and session.seq == sent:
                return

    # Acting as people

    async def slash(
        self,
        user: str,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        channel: str | None = None,
        attachments: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> Interaction:
        interaction = await self.sandbox.slash(
            self.world.guild, channel or self.world.help, user, command, options,
            attachments=attachments,
        )  # fmt: skip
        return await interaction.done()

    async def click(self, channel: str, message: JSON, label: str, user: str) -> Interaction:
        interaction = await self.sandbox.click(channel, message["id"], button(message, label), user)
        return await interaction.done()

    async def say(self, channel: str, user: str, content: str) -> JSON:
        message = await self.sandbox.send_message(channel, user, content)
        await self.settle()
        return message

    async def upload(self, user: str, command: str, name: str, data: bytes) -> Interaction:
        return await self.slash(user, command, {"file": name}, attachments={"file": (name, data)})

    async def open_ticket(
        self, user: str | None = None, subject: str = "Charged twice", **options: Any
    ) -> str:
        """Open a ticket with /ticket open; the new channel's id."""
        before = {c["id"] for c in self.sandbox.channels(self.world.guild)}
        answer = await self.slash(
            user or self.world.customer, "ticket open", {"subject": subject, **options}
        )
        assert "Your ticket is open" in answer.text(), answer.text()
        await self.settle()
        (channel,) = [
            c["id"] for c in self.sandbox.channels(self.world.guild) if c["id"] not in before
            and c["type"] == 0
        ]  # fmt: skip
        return channel

    # Looking

    def messages(self, channel: str) -> list[JSON]:
        return self.sandbox.messages(channel)

    def channel_named(self, name: str) -> JSON | None:
        return next((c for c in self.sandbox.channels(self.world.guild) if c["name"] == name), None)

    def texts(self, channel: str) -> list[str]:
        return [message_text(m) for m in self.messages(channel)]


def read_up_to(bot: ThothBot, seq: int) -> bool:
    """Whether the bot has read the gateway's events up to ``seq``."""
    sequence = bot.ws.sequence if bot.ws is not None else None
    return sequence is not None and sequence >= seq


def button(message: JSON, label: str) -> str:
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            if component.get("label") == label:
                return str(component["custom_id"])
    raise LookupError(f"no {label!r} button on message {message['id']}")


def buttons(message: JSON) -> dict[str, bool]:
    """Each button's label and whether it is disabled."""
    return {
        c["label"]: bool(c.get("disabled"))
        for row in message.get("components") or []
        for c in row.get("components") or []
    }


def message_text(message: JSON) -> str:
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(p for p in parts if p)


async def live_desk(
    sandbox: Sandbox,
    tmp_path: Path,
    *,
    configured: bool = True,
    bot: Mapping[str, Any] | None = None,
    **world: Any,
) -> AsyncIterator[Live]:
    """A running bot (given ``bot`` options) on the sample server; ``configured``: /setup done,
    the example rules and settings saved and both staff on duty."""
    live = Live(sandbox, build_world(sandbox, **world), tmp_path / "thoth.db")
    await live.start(**(bot or {}))
    try:
        if configured:
            await configure(live.sandbox, live.world)
        yield live
    finally:
        await live.stop()
