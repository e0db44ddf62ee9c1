"""The health server of ``thothbot run``: always on, on the ingress's address.

``GET /healthz``  200 while the process runs and the database answers within a short timeout
``GET /readyz``   200 while the Discord gateway is connected and ready, 503 before and after
``GET /metrics``  Prometheus text: the gateway, discord.py's REST calls (429s, retries), the
                  escalation outbox by status and the ingress's figures

With an API key the ingress's routes share the server; without one only these three answer.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp
import discord
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_log import AccessLogger

from thothbot.config import Config
from thothbot.ingress import (
    METRICS_HEADERS,
    Ingress,
    IngressSettings,
    Metrics,
    stored_metrics,
)
from thothbot.ingress.server import listen, server_options
from thothbot.service.health import HealthProbe

DATABASE_TIMEOUT = 2.0  # seconds the database has to answer a health check or the metrics

# discord.py sends a request again after these answers (and after a dropped connection).
RETRIED_STATUSES = frozenset({429, 500, 502, 504, 524})
GATEWAY_STATES = ("starting", "connecting", "ready", "disconnected")


class GatewayWatch:
    """The Discord gateway's state as discord.py's events tell it."""

    def __init__(self, bot: discord.Client) -> None:
        self.bot = bot
        self.state = "starting"
        self.disconnects = 0
        self.first_ready = asyncio.Event()
        add = getattr(bot, "add_listener", None)
        if add is None:  # a plain discord.Client has no listeners: wrap its events instead
            raise TypeError("GatewayWatch needs a commands.Bot")
        add(self._connected, "on_connect")
        add(self._ready, "on_ready")
        add(self._ready, "on_resumed")
        add(self._disconnected, "on_disconnect")

    async def _connected(self) -> None:
        self.state = "connecting"  # the socket is open; READY (or RESUMED) not seen yet

    async def _ready(self) -> None:
        self.state = "ready"
        self.first_ready.set()

    async def _disconnected(self) -> None:
        if self.state != "disconnected":
            self.disconnects += 1
        self.state = "disconnected"

    @property
    def ready(self) -> bool:
        return self.state == "ready" and not self.bot.is_closed()

    @property
    def latency(self) -> float | None:
        """Seconds between the last heartbeat and its acknowledgement, once there was one."""
        latency = self.bot.latency
        return latency if math.isfinite(latency) else None


class RestCounter:
    """discord.py's REST requests, counted through aiohttp's tracing (``Client(http_trace=)``)."""

    def __init__(self) -> None:
        self.responses: Counter[str] = Counter(dict.fromkeys(("2xx", "3xx", "4xx", "5xx"), 0))
        self.errors = 0  # requests that got no answer (connection refused, reset, timed out)
        self.rate_limited = 0  # 429 answers
        self.retries = 0
        # Requests (method, URL) that discord.py will send again: the next one is a retry.
        self._again: set[tuple[str, str]] = set()

    def trace_config(self) -> aiohttp.TraceConfig:
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._started)
        trace.on_request_end.append(self._ended)
        trace.on_request_exception.append(self._failed)
        return trace

    async def _started(
        self, _: aiohttp.ClientSession, __: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        key = (params.method, str(params.url))
        if key in self._again:
            self._again.discard(key)
            self.retries += 1

    async def _ended(
        self, _: aiohttp.ClientSession, __: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        status = params.response.status
        self.responses[f"{status // 100}xx"] += 1
        if status == 429:
            self.rate_limited += 1
        if status in RETRIED_STATUSES:
            self._again.add((params.method, str(params.url)))

    async def _failed(
        self, _: aiohttp.ClientSession, __: Any, params: aiohttp.TraceRequestExceptionParams
    ) -> None:
        self.errors += 1
        self._again.add((params.method, str(params.url)))


class Health:
    """The three routes, over the database's probe, the gateway, the REST counter and the
    ingress."""

    def __init__(
        self,
        probe: HealthProbe,
        *,
        gateway: GatewayWatch | None = None,
        rest: RestCounter | None = None,
        ingress: Ingress | None = None,
        timeout: float = DATABASE_TIMEOUT,
    ) -> None:
        self.probe = probe
        self.gateway = gateway
        self.rest = rest
        self.ingress = ingress
        self.timeout = timeout
        # Without the ingress its counters stay at zero; the stored figures are read anyway.
        self._metrics = ingress.metrics if ingress is not None else Metrics()
        # The ingress's counts join its group commit; alone, the probe reads them.
        self._counts = ingress.intake.counts if ingress is not None else probe.counts

    def app(self) -> web.Application:
        """The ingress's app with these routes beside its own, or these routes alone."""
        app = self.ingress.app(health=False) if self.ingress is not None else web.Application()
        app.router.add_get("/healthz", self.handle_health)
        app.router.add_get("/readyz", self.handle_ready)
        app.router.add_get("/metrics", self.handle_metrics)
        return app

    async def handle_health(self, request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(self.probe.ping(), self.timeout)
        except TimeoutError:
            return _failing(f"The database did not answer within {self.timeout:g} s.")
        except Exception as error:
            return _failing(f"The database does not answer: {error}")
        return web.json_response({"status": "ok"})

    async def handle_ready(self, request: web.Request) -> web.Response:
        state = self.gateway.state if self.gateway is not None else "off"
        if self.gateway is None or not self.gateway.ready:
            return web.json_response({"status": "not_ready", "gateway": state}, status=503)
        return web.json_response({"status": "ready", "gateway": state})

    async def handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=(await self.render()).encode(), headers=METRICS_HEADERS)

    async def render(self) -> str:
        lines: list[str] = []
        if self.gateway is not None:
            _metric(
                lines,
                "thothbot_gateway_ready",
                "1 while the Discord gateway is connected and ready (what /readyz says).",
                [("", int(self.gateway.ready))],
                "gauge",
            )
            _metric(
                lines,
                "thothbot_gateway_state",
                "The gateway's state: 1 for the current one.",
                [(f'{{state="{s}"}}', int(self.gateway.state == s)) for s in GATEWAY_STATES],
                "gauge",
            )
            latency = self.gateway.latency
            if latency is not None:
                _metric(
                    lines,
                    "thothbot_gateway_latency_seconds",
                    "Time between the last gateway heartbeat and its acknowledgement.",
                    [("", latency)],
                    "gauge",
                )
            _metric(
                lines,
                "thothbot_gateway_disconnects_total",
                "Times the gateway connection was lost (discord.py reconnects on its own).",
                [("", self.gateway.disconnects)],
            )
        if self.rest is not None:
            _metric(
                lines,
                "thothbot_discord_rest_responses_total",
                "Answers to the bot's Discord REST requests, by status class.",
                [(f'{{status="{k}"}}', v) for k, v in sorted(self.rest.responses.items())],
            )
            _metric(
                lines,
                "thothbot_discord_rest_errors_total",
                "Discord REST requests that got no answer (connection refused, reset, timeout).",
                [("", self.rest.errors)],
            )
            _metric(
                lines,
                "thothbot_discord_rest_rate_limited_total",
                "Discord REST answers 429 (rate limited); discord.py waits and retries.",
                [("", self.rest.rate_limited)],
            )
            _metric(
                lines,
                "thothbot_discord_rest_retries_total",
                "Discord REST requests sent again after a 429, a 5xx or a dropped connection.",
                [("", self.rest.retries)],
            )
        figures = await stored_metrics(self._metrics, self._counts, self.timeout)
        return "\n".join(lines) + ("\n" if lines else "") + figures


def _failing(error: str) -> web.Response:
    return web.json_response({"status": "failing", "error": error}, status=503)


def _metric(
    lines: list[str],
    name: str,
    help_text: str,
    samples: Sequence[tuple[str, float]],
    kind: str = "counter",
) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    lines.extend(f"{name}{labels} {value}" for labels, value in samples)


class _QuietProbes(AbstractAccessLogger):
    """The access log without health checks and scrapes, which come every few seconds."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._all = AccessLogger(logger, log_format)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path not in PROBES:
            self._all.log(request, response, time)


PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


async def start(health: Health, config: Config) -> web.AppRunner:
    """Listen on THOTH_INGRESS_HOST:THOTH_INGRESS_PORT; a port that cannot be had is said in
    one line."""
    # The ingress's bounds on slow clients hold on this port, with or without the ingress.
    settings = health.ingress.settings if health.ingress else IngressSettings.from_config(config)
    runner = web.AppRunner(health.app(), access_log_class=_QuietProbes, **server_options(settings))
    return await listen(runner, config)


def health_url(urls: Sequence[str]) -> str:
    return f"{urls[0]}/healthz" if urls else "(not listening)"
