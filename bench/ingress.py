"""HTTP ingress: signed ``support.ticket.created`` webhooks accepted durably per second.

The ingress runs in its own process on a SQLite file (WAL), with rules that escalate and assign
round robin, so each event is verified, stored and answered 202 after its commit; its worker
then classifies it (the keyword heuristic, as without a model) and opens it as a ticket with
its rules run. A few concurrent clients in this process send signed deliveries over real HTTP
on the loopback; each client waits for its answer before sending the next. After each run the
bench waits until the worker has turned every accepted event into a ticket, and says how long
that took.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp

from thothbot import keys
from thothbot.config import Config
from thothbot.ingress import LogSink, start_ingress
from thothbot.llm import UrgencyClassifier
from thothbot.service import Desk
from thothbot.store import Store

GUILD = "bench-guild"
BARE_GUILD = "bench-guild-without-rules"
RULES = [
    {"id": "assign", "trigger": "ticket_opened", "actions": [{"type": "assign_round_robin"}]},
    {"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]},
]
SETTINGS = {"staff": ["S1", "S2", "S3"], "sla": {"first_response_minutes": 30}}
TARGET_CLIENTS, TARGET_RATE, TARGET_P99 = 8, 1_000, 50.0  # events/s and ms


async def _prepare(db: Path) -> tuple[keys.NewKey, keys.NewKey]:
    """A key for a server with rules and SLA, and one for a server with neither."""
    store = await Store.open(db)
    try:
        desk = Desk(store)
        await desk.save_rules(GUILD, json.dumps(RULES))
        await desk.save_settings(GUILD, json.dumps(SETTINGS), datetime.now(UTC))
        created = (
            keys.new_key(GUILD, datetime.now(UTC)),
            keys.new_key(BARE_GUILD, datetime.now(UTC)),
        )
        await store.run(lambda tx: [tx.insert_api_key(k.row) for k in created])
        return created
    finally:
        await store.close()


def _serve(db: str, conn: Connection) -> None:
    """The ingress process: report the port, serve until told to stop."""

    async def run() -> None:
        store = await Store.open(db)
        config = Config(db_path=db, ingress_port=0, ingress_rate=1e6, ingress_burst=1_000_000)
        classifier = UrgencyClassifier(None)  # the heuristic decides, as with no model set
        runner = await start_ingress(Desk(store, LogSink()), store, config, classifier=classifier)
        conn.send(runner.addresses[0][1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await runner.cleanup()
        await classifier.close()
        await store.close()

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
    """Wait until no event is pending: when that was (perf_counter), and the backlog seen first."""
    deadline = time.perf_counter() + timeout
    backlog = -1
    with sqlite3.connect(db, timeout=10) as conn:
        while True:
            (pending,) = conn.execute(
                "SELECT COUNT(*) FROM ingress_events WHERE status = 'pending'"
            ).fetchone()
            if backlog < 0:
                backlog = pending
            if pending == 0:
                return time.perf_counter(), backlog
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{pending} events still pending after {timeout:g} s")
            time.sleep(0.005)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(events: int = 5_000, warmup: int = 300, runs: tuple[int, ...] = (1, 4, 8)) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        created, bare = asyncio.run(_prepare(db))
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        server = context.Process(target=_serve, args=(str(db), theirs), daemon=True)
        server.start()
        try:
            if not ours.poll(60):
                raise RuntimeError("the ingress process did not start")
            port = ours.recv()
            url = f"http://127.0.0.1:{port}/v1/webhooks/"
            asyncio.run(_load(url + created.row.key_id, created.row.webhook_secret, 0, warmup, 4))
            _drained(db)
            sent = warmup
            print(
                f"ingress: signed support.ticket.created webhooks over HTTP, {events:,} per run;"
                " server in its own process, clients in this one"
            )
            plan = [(clients, created, "rules assign + escalate, SLA") for clients in runs]
            plan.append((max(runs), bare, "no rules, no SLA"))
            for clients, key, what in plan:
                began = time.perf_counter()
                latencies = asyncio.run(
                    _load(url + key.row.key_id, key.row.webhook_secret, sent, events, clients)
                )
                ended = time.perf_counter()
                drained, backlog = _drained(db)
                sent += events
                rate, p99 = events / (ended - began), _percentile(latencies, 0.99) * 1000
                print(
                    f"  {clients} client{'s' if clients > 1 else ' '}: {rate:7,.0f}"
                    f" events/s  median {statistics.median(latencies) * 1000:5.1f} ms"
                    f"  p99 {p99:5.1f} ms  ({what})"
                )
                print(
                    f"             worker: {events:,} tickets {drained - began:5.2f} s after the"
                    f" first event, {events / (drained - began):6,.0f} tickets/s"
                    f" ({backlog:,} pending at the last 202, done {drained - ended:4.2f} s later)"
                )
                if clients == TARGET_CLIENTS and key is created:
                    met = rate >= TARGET_RATE and p99 < TARGET_P99
                    print(
                        f"  target     : >= {TARGET_RATE:,} events/s, p99 < {TARGET_P99:g} ms"
                        f" with {TARGET_CLIENTS} clients: {'met' if met else 'NOT MET'}"
                    )
        finally:
            ours.send("stop")
            server.join(10)
        with sqlite3.connect(db) as conn:
            done = conn.execute("SELECT COUNT(*) FROM ingress_events WHERE status = 'done'")
            (stored,) = done.fetchone()
            (tickets,) = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()
        print(f"  durable    : {stored:,} events done, {tickets:,} tickets (sent {sent:,})")


if __name__ == "__main__":
    main()
