"""The composition root: the whole application built from a ``Config`` in one place, and
closed in the reverse order (``build``).

Each component receives what it uses when it is made; nothing is wired into another object
after it is built. The order that breaks the cycles: the change notifier and the bot's effect
queue first, then the desk that announces and publishes into them, then the loops that wake on
the notifier (delivery worker, SLA checker, closings, the ingress's worker, triage) and the
bot that renders the queue.

Two layers, one wiring: ``build_services`` makes the service layer over an open store (what
``build`` uses, and what unit tests use on their own database file); ``build`` opens the store
from the configuration and adds the classifier, the triage and retention loops and, for
``thothbot run``, ``thothbot demo`` and the end-to-end tests, the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from thothbot.changes import Changes
from thothbot.config import Config
from thothbot.maintenance import Maintenance
from thothbot.service import Channels, Desk, EffectSink, Intake
from thothbot.service.classifications import ClassificationCache
from thothbot.service.health import HealthProbe
from thothbot.service.keys import Keys
from thothbot.service.outbox import Handoff, Outbox
from thothbot.service.retention import Pruner
from thothbot.store import MEMORY, Store
from thothbot.triage import Triage

# The servers (aiohttp), the model client (openai) and the bot (discord.py) are imported where
# ``build`` uses them: ``thothbot simulate`` and ``thothbot keys`` need only ``build_services``
# and start without them (tests/test_application.py holds to it).
if TYPE_CHECKING:
    from aiohttp import web

    from thothbot import health
    from thothbot.bot.client import BotDesk, ThothBot
    from thothbot.bot.effects import EffectQueue
    from thothbot.llm import UrgencyClassifier
    from thothbot.outbound import Guard


@dataclass(frozen=True, slots=True)
class Services:
    """The service layer over one open store: what the adapters are handed, wired once."""

    store: Store
    changes: Changes  # one notifier: the desk announces, every background loop wakes on it
    desk: Desk
    channels: Channels  # what the bot keeps of its ticket channels
    intake: Intake  # the ingress's keys and events
    outbox: Outbox
    handoff: Handoff | None  # the desk's #ops posts, for the bot's delivery worker
    classifications: ClassificationCache
    pruner: Pruner
    probe: HealthProbe
    keys: Keys


@contextlib.asynccontextmanager
async def services_of(config: Config) -> AsyncIterator[Services]:
    """The service layer over the configured database for a one-shot command (``thothbot
    keys``): opened for the block and closed after it."""
    store = await Store.open(config.db_path, secret_key=config.secret_key)
    try:
        yield build_services(store, outbox=False)
    finally:
        await store.close()


def build_services(
    store: Store,
    *,
    sink: EffectSink | None = None,
    outbox: bool = True,
    outbound: Guard | None = None,
    bot: bool = False,
) -> Services:
    """The services over ``store``. Effects go to ``sink`` (recorded when None); with
    ``outbox`` each escalation is saved for the delivery worker with the change that made it;
    ``outbound`` checks destinations when settings are saved (none: not checked); with ``bot``
    the desk hands its #ops posts to the bot's delivery worker (``Handoff``)."""
    changes = Changes()
    handoff = Handoff(changes) if bot and outbox else None
    desk = Desk(store, sink, outbox=outbox, outbound=outbound, changes=changes, handoff=handoff)
    return Services(
        store=store,
        changes=changes,
        desk=desk,
        channels=Channels(store),
        intake=Intake(store, changes),
        outbox=Outbox(store),
        handoff=handoff,
        classifications=ClassificationCache(store),
        pruner=Pruner(store),
        probe=HealthProbe(store),
        keys=Keys(store),
    )


@dataclass
class Application:
    """What ``build`` made; ``spawn`` and ``listen_ingress`` add what is closed with it."""

    config: Config
    services: Services
    classifier: UrgencyClassifier
    maintenance: Maintenance
    triage: Triage
    bot: ThothBot | None = None
    rest: health.RestCounter | None = None  # Discord REST calls, for the health server (with a bot)
    _closing: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def changes(self) -> Changes:
        return self.services.changes

    @property
    def desk(self) -> Desk:
        return self.services.desk

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run a background loop until the application closes (it is cancelled first)."""
        task = asyncio.create_task(work, name=name)
        self._closing.push_async_callback(_cancel, task)
        return task

    async def listen_ingress(self, *, worker: bool = True) -> web.AppRunner:
        """The ingress alone on its port, with its worker (unless ``worker=False``: accepted
        events wait for a worker elsewhere); stopped when the application closes (requests
        under way and tickets being opened get their grace)."""
        from thothbot.ingress import start_ingress  # noqa: PLC0415  (aiohttp: see the imports)

        runner = await start_ingress(
            self.desk,
            self.services.intake,
            self.config,
            classified=self.triage.classified,
            worker=worker,
        )
        self.on_close(runner.cleanup)
        return runner

    async def serves_ingress(self) -> bool:
        """Whether the ingress runs beside the bot: only once an API key is live."""
        return await self.store.run(lambda tx: any(k.revoked_at is None for k in tx.api_keys()))

    def on_close(self, step: Callable[[], Awaitable[object]]) -> None:
        """Run ``step`` when the application closes, before what was built earlier."""
        self._closing.push_async_callback(step)

    async def close(self) -> None:
        await self._closing.aclose()


@contextlib.asynccontextmanager
async def build(
    config: Config,
    *,
    bot: bool = False,
    check_outbound: bool = True,
    classifier: UrgencyClassifier | None = None,
    **bot_options: Any,
) -> AsyncIterator[Application]:
    """The application for ``thothbot run`` (``bot=True``: the Discord bot renders effects and
    posts to #ops) or ``thothbot ingress`` (effects logged; webhook and HTTP destinations sent
    here). ``check_outbound`` holds saved destinations to THOTH_OUTBOUND_ALLOW; only the demo's
    and the tests' made-up servers go without (deliveries are checked when sent either way).
    A ``classifier`` handed in replaces the configured one (the caller closes it); the
    ``bot_options`` go to the bot (its clock, discord.py's options). Closed in reverse order:
    background loops, servers, the bot, the classifier, and the store last, after every unit
    queued before it."""
    from thothbot import health  # noqa: PLC0415  (aiohttp and discord.py: see the imports)
    from thothbot.ingress import LogSink  # noqa: PLC0415
    from thothbot.llm import UrgencyClassifier  # noqa: PLC0415  (openai)
    from thothbot.outbound import Guard  # noqa: PLC0415

    closing = contextlib.AsyncExitStack()
    async with closing:
        store = await Store.open(config.db_path, secret_key=config.secret_key)
        closing.push_async_callback(store.close)
        effects = _bot_queue() if bot else None
        services = build_services(
            store,
            # The bot renders effects from its queue; the ingress alone logs them.
            sink=effects if effects is not None else LogSink(),
            outbound=Guard.from_config(config) if check_outbound else None,
            bot=effects is not None,
        )
        if classifier is None:
            # The heuristic decides alone when no THOTH_LLM_MODEL is set.
            classifier = UrgencyClassifier.from_config(config, services.classifications)
            closing.push_async_callback(classifier.close)
        maintenance = Maintenance(services.pruner)
        if effects is not None:  # the bot
            from thothbot.bot.client import ThothBot  # noqa: PLC0415  (discord.py: only the bot needs it)

            rest = health.RestCounter()
            thoth = ThothBot(
                _bot_services(services, effects),
                guild_ids=config.guild_ids,
                close_delay=config.close_delay,
                http_trace=rest.trace_config(),
                **bot_options,
            )
            closing.push_async_callback(_close_bot, thoth)
            # Triage reads the bot's clock, so urgency rules fire at the bot's moment.
            triage = Triage(services.desk, classifier, clock=thoth.now)
            app = Application(config, services, classifier, maintenance, triage, thoth, rest)
        else:
            triage = Triage(services.desk, classifier)
            app = Application(config, services, classifier, maintenance, triage)
        closing.push_async_callback(app.close)
        # Tickets opened without their urgency (from Discord or the ingress) are labelled in
        # the background, those a previous run left first.
        app.spawn(triage.run(), name="triage")
        # Commits of other processes on this database (the ingress beside the bot, a `thothbot
        # keys` command) wake the loops too.
        app.spawn(services.changes.follow(store.changed_elsewhere), name="changes-elsewhere")
        yield app


@contextlib.asynccontextmanager
async def standalone_desk(sink: EffectSink, db_path: str | None = None) -> AsyncIterator[Desk]:
    """A desk alone on its own database, in memory unless ``db_path`` names a file, for one
    batch caller with nothing else on its event loop (``thothbot simulate``): its units run in
    place, without the database thread's two switches per unit, and its escalations go to
    ``sink`` with its other effects (no outbox). Closed with the store."""
    store = await Store.open(db_path or MEMORY, threaded=False)
    try:
        yield build_services(store, sink=sink, outbox=False).desk
    finally:
        await store.close()


def bot_desk(store: Store, *, outbound: Guard | None = None) -> BotDesk:
    """What the bot is built with, over ``store`` (for tests that build a bot on their own): a
    desk whose effects wait in the bot's queue and whose escalations go through the outbox, and
    the record of its channels."""
    effects = _bot_queue()
    return _bot_services(build_services(store, sink=effects, outbound=outbound, bot=True), effects)


def _bot_services(services: Services, effects: EffectQueue) -> BotDesk:
    """What of ``services`` the bot is built with, its effects waiting in ``effects``."""
    from thothbot.bot.client import BotDesk  # noqa: PLC0415  (discord.py: only the bot needs it)

    return BotDesk(services.desk, services.channels, effects, services.outbox, services.handoff)


def _bot_queue() -> EffectQueue:
    """The queue the bot renders effects from (escalations go through the outbox)."""
    from thothbot.bot.effects import EffectQueue  # noqa: PLC0415  (discord.py: only the bot needs it)

    return EffectQueue()


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
