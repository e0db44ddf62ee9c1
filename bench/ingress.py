"""HTTP ingress: signed ``support.ticket.created`` webhooks accepted durably per second, beside a
bare server measured in the same run.

The ingress runs in its own process on a SQLite file (WAL), with rules that escalate and assign
round robin, so each event is verified, stored and answered 202 after its commit; its worker
then opens it as a ticket with its rules run, and the triage loop labels its urgency (the
keyword heuristic, as without a model). The baseline is the least a durable intake can do: a
bare aiohttp server in its own process that answers each request after one INSERT and COMMIT
on its own SQLite file (WAL, ``synchronous = NORMAL`` as the store; aiosqlite, so the loop never
waits on the disk). Both take the same signed deliveries from the same clients: concurrent
clients in this process over real HTTP on the loopback, each waiting for its answer before
sending the next. After each run of the ingress the bench waits until the worker has turned
every accepted event into a ticket, and says how long that took.
"""

from __future__ import annotations

import asyncio
import functools
import json
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
from aiohttp import web

from thothbot import keys
from thothbot.application import build, services_of
from thothbot.config import Config

GUILD = "bench-guild"
RULES = [
    {"id": "assign", "trigger": "ticket_opened", "actions": [{"type": "assign_round_robin"}]},
    {"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]},
]
SETTINGS = {"staff": ["S1", "S2", "S3"], "sla": {"first_response_minutes": 30}}
TARGET_CLIENTS, TARGET_RATIO, TARGET_P99 = 32, 0.6, 50.0  # issue 11: ratio to baseline, ms


async def _prepare(db: Path) -> keys.NewKey:
    """A key for a server with rules and SLA, saved as ``thothbot keys`` and ``rules`` do."""
    created = keys.new_key(GUILD, datetime.now(UTC))
    async with services_of(Config(db_path=str(db))) as services:
        await services.desk.save_rules(GUILD, json.dumps(RULES))
        await services.desk.save_settings(GUILD, json.dumps(SETTINGS), datetime.now(UTC))
        await services.keys.create(created.row)
    return created


def _serve(db: str, conn: Connection, worker: bool = True) -> None:
    """The ingress process as ``thothbot ingress`` builds it (the composition root, with the
    triage loop), or with ``worker=False`` its request path alone (events left pending, as for
    a worker in another process): report the port, serve until told to stop."""

    async def run() -> None:
        config = Config(db_path=db, ingress_port=0, ingress_rate=1e6, ingress_burst=1_000_000)
        async with build(config) as app:
            runner = await app.listen_ingress(worker=worker)
            conn.send(runner.addresses[0][1])
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(run())


def _serve_bare(db: str, conn: Connection) -> None:
    """The baseline's process: one INSERT and COMMIT per request, then 202; report the port,
    serve until told to stop."""

    async def run() -> None:
        database = await aiosqlite.connect(db, isolation_level=None)
        await database.execute("PRAGMA journal_mode = WAL")
        await database.execute("PRAGMA synchronous = NORMAL")
        await database.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, message_id TEXT, body BLOB)"
        )

        async def accept(request: web.Request) -> web.Response:
            body = await request.read()
            # Autocommit: the INSERT is a transaction of its own, committed before it returns.
            await database.execute(
                "INSERT INTO events (message_id, body) VALUES (?, ?)",
                (request.headers.get("webhook-id"), body),
            )
            return web.json_response({"stored": True}, status=202)

        app = web.Application()
        app.router.add_post("/v1/webhooks/{key_id}", accept)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await runner.cleanup()
        await database.close()

    asyncio.run(run())


def _delivery(n: int, secret: str) -> tuple[bytes, dict[str, str]]:
    data = {
        "ticket_id": f"T-{n}",
        "subject": f"Order {n} is stuck",
        "body": "Payment went through but the order page still says pending. " * 3,
        "customer_tier": ("free", "pro", "enterprise")[n % 3],
        "channel": ("email", "chat", "form")[n % 3],
    }
    body = json.dumps({"type": "support.ticket.created", "timestamp": "", "data": data}).encode()
    message_id = f"msg_{n}"
    stamp = str(int(time.time()))
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": keys.signature(secret, message_id, stamp, body),
        "Content-Type": "application/json",
    }
    return body, headers


async def _load(url: str, secret: str, start: int, count: int, clients: int) -> list[float]:
    latencies: list[float] = []
    numbers = iter(range(start, start + count))
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for n in numbers:
                body, headers = _delivery(n, secret)
                began = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 202:
                        raise RuntimeError(f"delivery {n}: {response.status}")
                latencies.append(time.perf_counter() - began)

        await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def _drained(db: Path, timeout: float = 120.0) -> tuple[float, int]:
    """Wait until no event is pending and every ticket has its urgency: when that was
    (perf_counter), and the backlog (events and labels) seen first."""
    deadline = time.perf_counter() + timeout
    backlog = -1
    with sqlite3.connect(db, timeout=10) as conn:
        while True:
            (waiting,) = conn.execute(
                "SELECT (SELECT COUNT(*) FROM ingress_events WHERE status = 'pending')"
                " + (SELECT COUNT(*) FROM tickets WHERE urgency IS NULL)"
            ).fetchone()
            if backlog < 0:
                backlog = waiting
            if waiting == 0:
                return time.perf_counter(), backlog
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{waiting} events or labels still waiting after {timeout:g} s")
            time.sleep(0.005)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True, slots=True)
class _Figures:
    rate: float  # events accepted a second
    median: float  # ms
    p99: float  # ms


def _figures(events: int, began: float, ended: float, latencies: list[float]) -> _Figures:
    return _Figures(
        events / (ended - began),
        statistics.median(latencies) * 1000,
        _percentile(latencies, 0.99) * 1000,
    )


def _start(target: Callable[..., None], db: Path) -> tuple[Any, Connection, int]:
    """A server process on ``db``: the process, the pipe that stops it, and its port."""
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=target, args=(str(db), theirs), daemon=True
    )
    process.start()
    if not ours.poll(60):
        raise RuntimeError("a server process did not start")
    return process, ours, ours.recv()


def _show(clients: int, name: str, figures: _Figures, baseline: _Figures | None = None) -> None:
    ratio = f"  {figures.rate / baseline.rate:.2f}x the baseline" if baseline else ""
    print(
        f"  {clients:2} clients, {name}: {figures.rate:7,.0f} events/s  median"
        f" {figures.median:5.1f} ms  p99 {figures.p99:5.1f} ms{ratio}"
    )


def _run(url: str, secret: str, start: int, events: int, clients: int) -> tuple[_Figures, float]:
    """Figures of one run, and when its last answer came (perf_counter)."""
    began = time.perf_counter()
    latencies = asyncio.run(_load(url, secret, start, events, clients))
    ended = time.perf_counter()
    return _figures(events, began, ended, latencies), ended


def main(events: int = 5_000, warmup: int = 300, runs: tuple[int, ...] = (8, 32)) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        alone_db = Path(folder) / "alone.db"
        created = asyncio.run(_prepare(db))
        alone_key = asyncio.run(_prepare(alone_db))
        server, stop_server, port = _start(_serve, db)
        alone, stop_alone, alone_port = _start(functools.partial(_serve, worker=False), alone_db)
        bare, stop_bare, bare_port = _start(_serve_bare, Path(folder) / "bare.db")
        try:
            url = f"http://127.0.0.1:{port}/v1/webhooks/{created.row.key_id}"
            alone_url = f"http://127.0.0.1:{alone_port}/v1/webhooks/{alone_key.row.key_id}"
            bare_url = f"http://127.0.0.1:{bare_port}/v1/webhooks/{created.row.key_id}"
            secret = created.row.webhook_secret
            alone_secret = alone_key.row.webhook_secret
            asyncio.run(_load(url, secret, 0, warmup, 4))
            asyncio.run(_load(alone_url, alone_secret, 0, warmup, 4))
            asyncio.run(_load(bare_url, secret, 0, warmup, 4))
            _drained(db)
            sent = warmup
            print(
                f"ingress: signed support.ticket.created webhooks over HTTP, {events:,} per run;"
                " each server in its own process, clients in this one; baseline: a bare aiohttp"
                " server, one INSERT and COMMIT per request (WAL). 'accept only' is the"
                " ingress's request path alone (its worker off: events left pending); 'ingress'"
                " is `thothbot ingress` as shipped, its worker opening and triage labelling"
                " tickets in the same process"
            )
            met = True
            for clients in runs:
                baseline, _ = _run(bare_url, secret, sent, events, clients)
                accepting, _ = _run(alone_url, alone_secret, sent, events, clients)
                began = time.perf_counter()
                ingress, ended = _run(url, secret, sent, events, clients)
                drained, backlog = _drained(db)
                sent += events
                _show(clients, "baseline   ", baseline)
                _show(clients, "accept only", accepting, baseline)
                _show(clients, "ingress    ", ingress, baseline)
                elapsed = drained - began
                print(
                    f"             worker: {events:,} tickets labelled {elapsed:5.2f} s after the"
                    f" first event, {events / elapsed:6,.0f} tickets/s ({backlog:,} events or"
                    f" labels waiting at the last 202, done {drained - ended:4.2f} s later)"
                )
                met = met and ingress.rate / baseline.rate >= TARGET_RATIO
                if clients == TARGET_CLIENTS:
                    met = met and ingress.p99 < TARGET_P99
            print(
                f"  target     : >= {TARGET_RATIO:g}x the baseline, p99 < {TARGET_P99:g} ms with"
                f" {TARGET_CLIENTS} clients, as shipped: {'met' if met else 'NOT MET'}"
            )
        finally:
            for stop in (stop_server, stop_alone, stop_bare):
                stop.send("stop")
            for process in (server, alone, bare):
                process.join(10)
        with sqlite3.connect(db) as conn:
            done = conn.execute("SELECT COUNT(*) FROM ingress_events WHERE status = 'done'")
            (stored,) = done.fetchone()
            (tickets,) = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()
            (labelled,) = conn.execute(
                "SELECT COUNT(*) FROM tickets WHERE urgency IS NOT NULL"
            ).fetchone()
        with sqlite3.connect(alone_db) as conn:
            (kept,) = conn.execute("SELECT COUNT(*) FROM ingress_events").fetchone()
        print(
            f"  durable    : {stored:,} events done, {tickets:,} tickets, {labelled:,} with their"
            f" urgency (sent {sent:,}); accept only kept {kept:,} events pending"
        )


if __name__ == "__main__":
    main()
