"""The composition root: the whole application built from a ``Config`` in one place, and
closed in the reverse order (``build``).

Each component receives what it uses when it is made; nothing is wired into another object
after it is built. The order that breaks the cycles: the change notifier and the bot's effect
queue first, then the desk that announces and publishes into them, then the loops that wake on
the notifier (delivery worker, SLA checker, closings, the ingress's worker, triage) and the
bot that renders the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from thothbot import health
from thothbot.changes import Changes
from thothbot.config import Config
from thothbot.ingress import LogSink, start_ingress
from thothbot.llm import UrgencyClassifier
from thothbot.maintenance import Maintenance
from thothbot.outbound import Guard
from thothbot.service import Desk, Intake
from thothbot.store import Store
from thothbot.triage import Triage

if TYPE_CHECKING:
    from aiohttp import web

    from thothbot.bot.client import ThothBot


@dataclass
class Application:
    """What ``build`` made; ``spawn`` and ``listen_ingress`` add what is closed with it."""

    config: Config
    store: Store
    changes: Changes
    desk: Desk
    classifier: UrgencyClassifier
    maintenance: Maintenance
    intake: Intake
    triage: Triage
    bot: ThothBot | None = None
    rest: health.RestCounter | None = None  # Discord REST calls, for the health server (with a bot)
    _closing: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run a background loop until the application closes (it is cancelled first)."""
        task = asyncio.create_task(work, name=name)
        self._closing.push_async_callback(_cancel, task)
        return task

    async def listen_ingress(self) -> web.AppRunner:
        """The ingress alone on its port, with its worker; stopped when the application
        closes (requests under way and tickets being opened get their grace)."""
        runner = await start_ingress(
            self.desk, self.intake, self.config, classified=self.triage.classified
        )
        self.on_close(runner.cleanup)
        return runner

    def on_close(self, step: Callable[[], Awaitable[object]]) -> None:
        """Run ``step`` when the application closes, before what was built earlier."""
        self._closing.push_async_callback(step)

    async def close(self) -> None:
        await self._closing.aclose()


@contextlib.asynccontextmanager
async def build(
    config: Config, *, bot: bool = False, **bot_options: Any
) -> AsyncIterator[Application]:
    """The application for ``thothbot run`` (``bot=True``: the Discord bot renders effects and
    posts to #ops) or ``thothbot ingress`` (effects logged; webhook and HTTP destinations sent
    here). Closed in reverse order: background loops, servers, the bot, the classifier, and
    the store last, after every unit queued before it."""
    closing = contextlib.AsyncExitStack()
    async with closing:
        store = await Store.open(config.db_path, secret_key=config.secret_key)
        closing.push_async_callback(store.close)
        # The heuristic decides alone when no THOTH_LLM_MODEL is set.
        classifier = UrgencyClassifier.from_config(config, store)
        closing.push_async_callback(classifier.close)
        changes = Changes()
        outbound = Guard.from_config(config)
        intake = Intake(store, changes)
        if bot:
            from thothbot.bot.client import ThothBot  # noqa: PLC0415  (discord.py: only the bot needs it)

            desk = bot_desk(store, outbound=outbound, changes=changes)
            rest = health.RestCounter()
            thoth = ThothBot(
                desk,
                guild_ids=config.guild_ids,
                close_delay=config.close_delay,
                http_trace=rest.trace_config(),
                **bot_options,
            )
            closing.push_async_callback(_close_bot, thoth)
            triage = Triage(desk, classifier, clock=thoth.now)
            app = Application(
                config,
                store,
                changes,
                desk,
                classifier,
                Maintenance(store),
                intake,
                triage,
                thoth,
                rest,
            )
        else:
            desk = Desk(store, LogSink(), outbox=True, outbound=outbound, changes=changes)
            triage = Triage(desk, classifier)
            app = Application(
                config, store, changes, desk, classifier, Maintenance(store), intake, triage
            )
        closing.push_async_callback(app.close)
        # Tickets opened without their urgency (from Discord or the ingress) are labelled in
        # the background, those a previous run left first.
        app.spawn(triage.run(), name="triage")
        yield app


def bot_desk(
    store: Store,
    *,
    outbound: Guard | None = None,
    changes: Changes | None = None,
) -> Desk:
    """A desk the bot can serve: escalations through the outbox, other effects through the
    queue the bot renders."""
    from thothbot.bot.effects import EffectQueue  # noqa: PLC0415  (discord.py: only the bot needs it)

    return Desk(store, EffectQueue(), outbox=True, outbound=outbound, changes=changes)


async def _close_bot(bot: ThothBot) -> None:
    if not bot.is_closed():
        await bot.close()


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def stop_signal() -> str:
    """Wait for SIGTERM (``docker stop``, systemd) or SIGINT (Ctrl-C): the name of the one that
    came. Only the first is caught: a second acts as usual, so a stop that hangs can be cut."""
    loop = asyncio.get_running_loop()
    came: asyncio.Future[str] = loop.create_future()
    watched = (signal.SIGTERM, signal.SIGINT)

    def first(signum: signal.Signals) -> None:
        if not came.done():
            came.set_result(signum.name)

    for signum in watched:
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(signum, first, signum)
    try:
        return await came
    finally:
        for signum in watched:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signum)
