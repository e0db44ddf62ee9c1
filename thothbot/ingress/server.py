"""Starting and serving: the ingress listening with its worker, and ``thothbot ingress`` alone."""

from __future__ import annotations

import errno
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from aiohttp import web

from thothbot.application import build, stop_signal
from thothbot.config import Config, StartupFailure
from thothbot.core.models import Effect
from thothbot.delivery import Deliveries
from thothbot.ingress.http import Ingress
from thothbot.ingress.settings import IngressSettings
from thothbot.service import Desk, Intake

log = logging.getLogger(__name__)

# Seconds requests under way have on shutdown. aiohttp reads nothing more from a connection once
# shutting down, so a body still arriving never completes: without a bound it would hold the
# stop for aiohttp's 60 s, past `docker stop`'s 10. Its sender gets no answer and sends it again.
REQUEST_GRACE = 3.0


class LogSink:
    """Effects when no Discord bot runs next to the ingress: logged (ids only), not delivered."""

    async def publish(self, guild_id: str, effects: Sequence[Effect]) -> None:
        for effect in effects:
            log.info(
                "server %s: %s on ticket %s", guild_id, type(effect).__name__, effect.ticket_id
            )


async def start_ingress(
    desk: Desk,
    intake: Intake,
    config: Config,
    *,
    classified: Counter[str] | None = None,
    worker: bool = True,
) -> web.AppRunner:
    """Listen on the configured address, with the worker processing events in the background
    (those left pending by a previous run first; none with ``worker=False``); ``cleanup()``
    stops both. ``classified``: the triage loop's counts, for ``/metrics``."""
    settings = IngressSettings.from_config(config)
    ingress = Ingress(desk, intake, settings, classified=classified)
    app = ingress.app(worker=worker)
    return await listen(web.AppRunner(app, **server_options(settings)), config)


def server_options(settings: IngressSettings) -> dict[str, Any]:
    """The aiohttp server's options wherever the ingress's port is served: the bounds on slow
    clients, and REQUEST_GRACE for requests under way at a stop."""
    return {"shutdown_timeout": REQUEST_GRACE, **settings.server_options()}


async def listen(runner: web.AppRunner, config: Config) -> web.AppRunner:
    """Start ``runner`` on THOTH_INGRESS_HOST:THOTH_INGRESS_PORT; a port that cannot be had is
    said in one line (StartupFailure) and leaves nothing running."""
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.ingress_host, config.ingress_port)
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise StartupFailure(cannot_listen(config, error)) from None
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def cannot_listen(config: Config, error: OSError) -> str:
    where = f"{config.ingress_host}:{config.ingress_port}"
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: another program uses that port. Stop it, or set"
            " THOTH_INGRESS_PORT to a free port."
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        return (
            f"cannot listen on {where}: permission denied (ports below 1024 need privileges):"
            " set THOTH_INGRESS_PORT to 1024 or above."
        )
    return (
        f"cannot listen on {where}: {error.strerror or error}. Check THOTH_INGRESS_HOST (an"
        " address of this machine, or 0.0.0.0) and THOTH_INGRESS_PORT."
    )


def addresses(runner: web.AppRunner) -> list[str]:
    """Where a started runner listens, as URLs."""
    urls = []
    for address in runner.addresses:
        host, port = address[0], address[1]
        urls.append(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
    return urls


async def serve(config: Config, out: TextIO) -> None:
    """Run the ingress alone (no Discord bot) until Ctrl-C or SIGTERM."""
    async with build(config) as app:
        # Listening first: a port that cannot be had then leaves no background task behind.
        # Closing stops listening, gives requests under way REQUEST_GRACE to finish, then the
        # worker STOP_GRACE to finish the tickets it is opening; the rest stays pending. The
        # triage loop (started with the application) labels the tickets' urgency.
        runner = await app.listen_ingress()
        # Webhook and HTTP destinations go out now; #ops posts wait for `thothbot run`. A
        # delivery cut off at the stop stays in the outbox and is sent after the restart.
        app.spawn(Deliveries(app.desk, app.services.outbox).run(), name="deliveries")
        app.spawn(app.maintenance.run(), name="maintenance")
        out.write(f"thothbot ingress listening on {', '.join(addresses(runner))}")
        out.write(" (Ctrl-C to stop)\n")
        out.flush()
        received = await stop_signal()
        log.info("%s received: finishing the requests and tickets under way", received)
    out.write("thothbot ingress stopped\n")
    out.flush()
