"""Bot latency: from a gateway event to the REST call it causes, the real bot on the sandbox.

The bot runs against the loopback Discord sandbox (REST and gateway, in this process and event
loop) on a SQLite file (WAL), with the example rules and settings, both staff on duty. Two
paths are timed from the sandbox dispatching the event to the bot's request arriving at the
sandbox (its ``RecordedRequest.at``):

- a customer writes "refund" in a billing ticket: rule ``billing-escalate`` tags and escalates
  it, and the bot posts the escalation to #ops (each sample in a ticket opened for it);
- a customer submits the panel's "Billing" form (the click that creates the ticket; the first
  click only opens the form) until the bot asks for the ticket channel.

Each sample starts on a quiet bot (every effect shown); a customer holds at most 3 tickets, so
customers are added as tickets are opened.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from thothbot.bot.client import ThothBot
from thothbot.demo import World, build_world, configure, running_bot
from thothbot.sandbox import RecordedRequest, Sandbox
from thothbot.sandbox.testing import pointed_at

MESSAGE_TARGET = 0.020
PANEL_TARGET = 0.050
OPEN_PER_CUSTOMER = 3  # the settings' default max_open_tickets
BILLING = "thoth:open:billing"
REFUND = "Can I get a refund for this order, please?"


class _Customers:
    """Customers to open tickets as: a new member each time one has opened three."""

    def __init__(self, sandbox: Sandbox, guild: str) -> None:
        self.sandbox, self.guild = sandbox, guild
        self.count = 0
        self._current = ""

    def next(self) -> str:
        if self.count % OPEN_PER_CUSTOMER == 0:
            self._current = self.sandbox.add_user(f"customer-{self.count // OPEN_PER_CUSTOMER}")
            self.sandbox.add_member(self.guild, self._current)
        self.count += 1
        return self._current


class _Desk:
    """The sample server's people at the bot's desk, over the sandbox (the bot itself is built
    by ``running_bot``, as ``thothbot run`` builds it: this is not thothbot's ``Desk``)."""

    def __init__(self, sandbox: Sandbox, world: World, bot: ThothBot) -> None:
        self.sandbox, self.world, self.bot = sandbox, world, bot
        self.customers = _Customers(sandbox, world.guild)
        self.opened = 0

    async def quiet(self) -> None:
        """Let the gateway echo arrive and every effect render."""
        await asyncio.sleep(0.02)
        await self.bot.effects.settled()

    async def slash(
        self,
        user: str,
        command: str,
        options: dict[str, str],
        attachments: dict[str, tuple[str, bytes]] | None = None,
    ) -> str:
        """Run a command in #help as ``user``; the answer's text."""
        answer = await self.sandbox.slash(
            self.world.guild, self.world.help, user, command, options, attachments=attachments
        )
        return (await answer.done()).text()

    async def configure(self) -> None:
        w = self.world
        await configure(self.sandbox, w)
        await self.slash(w.admin, "panel", {})
        await self.quiet()

    async def after(
        self, mark: int, began: float, wanted: Callable[[RecordedRequest], bool]
    ) -> float:
        """Seconds from ``began`` to the first request since ``mark`` that is ``wanted``."""
        requests = self.sandbox.requests

        def found() -> RecordedRequest | None:
            return next((r for r in requests[mark:] if wanted(r)), None)

        request = await self.sandbox.wait_for(found)
        assert request is not None  # wait_for returns a truthy value or raises
        return request.at - began

    async def message(self) -> float:
        """Open a billing ticket, then time "refund" to the #ops post; it must come first."""
        self.opened += 1
        customer = self.customers.next()
        text = await self.slash(
            customer, "ticket open", {"subject": f"Order {self.opened}", "type": "billing"}
        )
        channel = re.search(r"<#(\d+)>", text)
        if channel is None:
            raise RuntimeError(f"/ticket open: {text}")
        await self.quiet()
        mark, ops = len(self.sandbox.requests), f"/channels/{self.world.ops}/messages"
        began = time.monotonic()
        await self.sandbox.send_message(channel[1], customer, REFUND)
        latency = await self.after(mark, began, lambda r: True)
        first = self.sandbox.requests[mark]
        if (first.method, first.path) != ("POST", ops):
            raise RuntimeError(f"the first call after the message was {first.method} {first.path}")
        await self.quiet()
        return latency

    async def panel(self) -> tuple[float, float]:
        """A customer clicks Billing and submits the form: (click to the modal callback,
        submit to the ticket channel's creation request)."""
        self.opened += 1
        customer = self.customers.next()
        panel = self.sandbox.messages(self.world.help)[-1]
        channels = f"/guilds/{self.world.guild}/channels"
        mark, began = len(self.sandbox.requests), time.monotonic()
        form = await self.sandbox.click(self.world.help, panel["id"], BILLING, customer)
        shown = await self.after(mark, began, lambda r: r.path.endswith("/callback"))
        await form.response()
        fields = {"subject": f"Order {self.opened}", "description": "Charged twice."}
        mark, began = len(self.sandbox.requests), time.monotonic()
        opened = await self.sandbox.submit_modal(form, fields)
        created = await self.after(
            mark,
            began,
            lambda r: (r.method, r.path) == ("POST", channels) and r.json.get("type") == 0,
        )
        await opened.done()
        await self.quiet()
        return shown, created


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _line(label: str, values: list[float], target: float | None = None) -> str:
    median = statistics.median(values)
    line = (
        f"  {label:<22}: median {median * 1000:5.1f} ms  p90 {_percentile(values, 0.9) * 1000:5.1f}"
        f" ms  p99 {_percentile(values, 0.99) * 1000:5.1f} ms"
    )
    if target is not None:
        met = "met" if median < target else "NOT met"
        line += f"  (target median < {target * 1000:.0f} ms: {met})"
    return line


async def _measure(messages: int, clicks: int, warmup: int) -> tuple[list[float], ...]:
    async with pointed_at(Sandbox()) as sandbox:
        world = build_world(sandbox)
        with tempfile.TemporaryDirectory() as folder:
            db = Path(folder) / "bench.db"
            async with running_bot(sandbox, db, (int(world.guild),)) as bot:
                desk = _Desk(sandbox, world, bot)
                await desk.configure()
                for _ in range(warmup):
                    await desk.message()
                to_ops = [await desk.message() for _ in range(messages)]
                for _ in range(warmup):
                    await desk.panel()
                panel = [await desk.panel() for _ in range(clicks)]
    return to_ops, [shown for shown, _ in panel], [created for _, created in panel]


def main(messages: int = 200, clicks: int = 100, warmup: int = 10) -> None:
    started = time.perf_counter()
    to_ops, shown, created = asyncio.run(_measure(messages, clicks, warmup))
    elapsed = time.perf_counter() - started
    print(
        "bot: the real bot on the loopback sandbox (one process), SQLite file (WAL), example rules"
    )
    print(_line('"refund" -> #ops POST', to_ops, MESSAGE_TARGET))
    print(_line("form submit -> channel", created, PANEL_TARGET))
    print(_line("panel click -> form", shown))
    print(
        f"  samples               : {messages} messages, {clicks} panel tickets"
        f" (after {warmup} warm-up each), {elapsed:.1f} s in all"
    )


if __name__ == "__main__":
    main()
