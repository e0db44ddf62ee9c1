"""The outbox worker over real HTTP on loopback, on a real SQLite file.

A small aiohttp server stands for a Discord channel webhook (``/webhooks/...``, answering
``{"id": ...}`` to ``?wait=true``) and for a generic endpoint (``/hooks/...``); it can answer
429 with Retry-After, 500, 404 or stall, and records every request. The worker runs on a clock
the test steps by hand; the bot, at the edge of this process, is a small stub.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support import T0
from thothbot import keys
from thothbot.application import Services, build_services
from thothbot.changes import Topic
from thothbot.core.delivery import OpsPost, has_marker
from thothbot.core.ingress import IngressEventRow
from thothbot.core.masking import reference
from thothbot.core.models import Ticket
from thothbot.delivery import BACKOFF, MAX_ATTEMPTS, NO_BOT_WAIT, Deliveries, Later, nonce
from thothbot.outbound import Guard
from thothbot.service import Desk
from thothbot.service.outbox import Outbox
from thothbot.store import Store, Tx
from thothbot.store.tx import SqliteTx

G = "guild-1"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + "c2VjcmV0LXRoYXQtaXMtbm90LW91cnM="
ESCALATE_ON_OPEN = [{"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]}]
REASON = "Rule: page"
EMAIL, PHONE = "ann.lee@example.com", "+44 20 7946 0958"
SUMMARY_TITLE = "escalated in the last minute"
OPS_HOOK = "/webhooks/1/abc"
FANOUT_HOOK = "/webhooks/2/def"
MIB = 1024 * 1024
ENDPOINT = "/hooks/generic"

# -- the fake destinations ----------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as the destination received it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def title(self) -> str:
        return str(self.json()["embeds"][0]["title"])

    @property
    def is_summary(self) -> bool:
        return SUMMARY_TITLE in self.title


class Destinations:
    """A Discord channel webhook and a generic endpoint; each path answers from its script
    (first in, first out), then 200."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.script: dict[str, list[int | str]] = defaultdict(list)
        self.answered: list[tuple[str, int]] = []  # (path, status) of each finished request
        self.on_request: Callable[[Seen], None] = lambda seen: None
        self.release = asyncio.Event()
        self.ids = itertools.count(9000)
        self.base = ""
        self.huge_written = 0
        self.huge_done = asyncio.Event()

    def answer(self, path: str, *answers: int | str) -> None:
        self.script[path].extend(answers)

    def to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def ok(self, path: str) -> list[Seen]:
        """The requests to ``path`` that were answered with success."""
        done = [status for p, status in self.answered if p == path]
        return [s for s, status in zip(self.to(path), done, strict=False) if status < 300]

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        """A 2xx whose body would be 400 MiB; counts what the client let it write."""
        self.answered.append((request.path, 200))
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b" " * MIB
        with contextlib.suppress(ConnectionError, RuntimeError):
            for _ in range(400):
                await response.write(chunk)  # waits while the client reads nothing
                self.huge_written += len(chunk)
        self.huge_done.set()
        return response

    async def hook(self, request: web.Request) -> web.StreamResponse:
        """GET of a webhook's URL: what Discord answers (its id and channel)."""
        return web.json_response({"id": request.path.split("/")[2], "channel_id": "77"})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.path, dict(request.query), dict(request.headers), await request.read())
        self.seen.append(seen)
        self.on_request(seen)
        todo = self.script[request.path]
        answer = todo.pop(0) if todo else 200
        if answer == "stall":
            await self.release.wait()  # past the worker's timeout: it has hung up by now
            self.answered.append((request.path, 599))
            return web.Response(status=504)
        if answer == "accept, then stall":
            # Discord took the post (it is in the channel), then the answer never came.
            self.answered.append((request.path, 200))
            await self.release.wait()
            return web.Response(status=504)
        if answer == "huge":
            return await self._huge(request)
        assert isinstance(answer, int)
        self.answered.append((request.path, answer))
        if answer == 429:
            return web.json_response(
                {"message": "You are being rate limited.", "retry_after": 2.0, "global": False},
                status=429,
                headers={"Retry-After": "2"},
            )
        if answer >= 400:
            return web.json_response({"message": f"answered {answer}"}, status=answer)
        if answer >= 300:
            return web.Response(status=answer, headers={"Location": self.base + "/elsewhere"})
        if request.path.startswith("/webhooks/"):
            return web.json_response({"id": str(next(self.ids)), "channel_id": "77"})
        return web.Response(status=204)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class OpsStub:
    """The bot's side of #ops: ``ready`` once connected; records each post and notice, and
    reads channels as the bot would: #ops from its posts, a webhook's channel from what the
    fake webhook accepted (``destinations``), unless ``can_read`` is False."""

    def __init__(self, *, ready: bool = True, destinations: Destinations | None = None) -> None:
        self.ready = ready
        self.can_read = True
        self.destinations = destinations
        self.posts: list[tuple[Ticket, OpsPost, str, str]] = []
        self.notices: list[tuple[str, str]] = []
        self.looked: list[tuple[str | None, str]] = []

    async def post(
        self, ticket: Ticket, post: OpsPost, *, reason: str, nonce: str, channel_id: str | None
    ) -> tuple[str, str]:
        self.posts.append((ticket, post, reason, nonce))
        return "ops-channel", f"ops-{len(self.posts)}"

    async def find(
        self, guild_id: str, channel_id: str | None, marker: str, since: datetime,
        *, webhook_id: str | None = None,
    ) -> tuple[str, str] | None:  # fmt: skip
        self.looked.append((channel_id, marker))
        if not self.can_read:
            return None
        if channel_id is None:
            for n, (_, post, _, _) in enumerate(self.posts, 1):
                if has_marker(post.embed.footer, marker):
                    return "ops", f"ops-{n}"
            return None
        assert self.destinations is not None
        for path in {s.path for s in self.destinations.seen}:
            for seen in self.destinations.ok(path):
                footer = seen.json()["embeds"][0].get("footer", {}).get("text")
                if path.startswith(f"/webhooks/{webhook_id}/") and has_marker(footer, marker):
                    return channel_id, f"found-{marker}"
        return None

    async def notice(self, guild_id: str, text: str, *, nonce: str) -> None:
        self.notices.append((guild_id, text))


@dataclass
class World:
    path: Path
    base: str
    destinations: Destinations
    clock: Clock
    services: Services
    workers: list[Deliveries] = field(default_factory=list)
    customers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def desk(self) -> Desk:
        return self.services.desk

    def url(self, path: str) -> str:
        return self.base + path

    def worker(self, *, ops: Any = None, timeout: float = 5.0) -> Deliveries:
        deliveries = Deliveries(
            self.desk, self.services.outbox, ops=ops, clock=self.clock, timeout=timeout
        )
        self.workers.append(deliveries)
        return deliveries

    async def configure(
        self, settings: dict[str, Any], rules: list[dict[str, Any]] | None = None
    ) -> None:
        await self.desk.save_settings(G, json.dumps(settings), self.clock())
        saved = await self.desk.save_rules(G, json.dumps(rules or ESCALATE_ON_OPEN))
        assert saved.saved

    async def open(self, subject: str, **options: Any) -> Ticket:
        customer = str(next(self.customers))
        return await self.desk.open_ticket(G, customer, subject, self.clock(), **options)

    def rows(self) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            conn.row_factory = sqlite3.Row
            found = conn.execute("SELECT * FROM deliveries ORDER BY id").fetchall()
        return [dict(row) for row in found]

    def count(self, table: str) -> int:
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    async def counts(self) -> dict[str, int]:
        return await self.services.outbox.counts()

    async def close_workers(self) -> None:
        for worker in self.workers:
            if worker._session is not None:
                await worker._session.close()
        self.workers.clear()

    async def restart(self) -> Desk:
        """A new process on the same file: the store closed and opened, new services."""
        await self.close_workers()
        await self.desk.store.close()
        self.services = await services_at(self.path, self.base)
        return self.desk


async def services_at(path: Path, base: str) -> Services:
    """The services on the database at ``path``, escalations through the outbox, the guard
    allowing the receiver at ``base``."""
    return build_services(await Store.open(path), outbox=True, outbound=loopback(base))


def loopback(base: str) -> Guard:
    """The guard as the operator sets it for a receiver on this host: loopback allowed, and the
    fake server standing for the Discord API too."""
    return Guard.allowing(["127.0.0.1/32"], discord_api_url=base)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    destinations = Destinations()
    app = web.Application()
    app.router.add_post("/{tail:.*}", destinations.handle)
    app.router.add_get("/webhooks/{tail:.*}", destinations.hook)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    destinations.base = f"http://127.0.0.1:{port}"
    path = tmp_path / "thoth.db"
    base = f"http://127.0.0.1:{port}"
    w = World(path, base, destinations, Clock(T0), await services_at(path, base))
    try:
        yield w
    finally:
        destinations.release.set()
        await w.close_workers()
        await w.desk.store.close()
        await runner.cleanup()


def at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def destination_of(row: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(row["destination"]))


def ticket_field(seen: Seen) -> str:
    fields = {f["name"]: f["value"] for f in seen.json()["embeds"][0]["fields"]}
    return str(fields["Ticket"])


# -- the outbox is written with the escalation ---------------------------------------------------


async def test_deliveries_are_saved_with_the_escalation_before_any_worker_runs(
    world: World,
) -> None:
    await world.configure(
        {"destinations": [{"kind": "http", "url": world.url(ENDPOINT), "secret": SECRET}]}
    )
    woken = world.desk.changes.wake_on(Topic.OUTBOX)

    ticket = await world.open("Checkout broken")

    rows = world.rows()
    # Rows name the destination; its URL and secret stay (sealed) in the settings.
    assert [destination_of(r) for r in rows] == [
        {"kind": "ops"},
        reference({"kind": "http", "url": world.url(ENDPOINT)}),
    ]
    for row in rows:
        assert row["ticket_id"] == ticket.id
        assert row["guild_id"] == G
        assert row["status"] == "pending"
        assert row["attempts"] == 0
        assert row["reason"] == REASON
        assert at(row["next_at"]) == T0
        assert at(row["created_at"]) == T0
    assert woken.is_set()  # the worker is woken once the escalation is committed
    assert world.destinations.seen == []


async def test_no_escalation_no_delivery(world: World) -> None:
    await world.configure({}, rules=[{"id": "tag", "trigger": "ticket_opened",
                                      "actions": [{"type": "add_tag", "tag": "new"}]}])  # fmt: skip
    await world.open("Just a question")
    assert world.rows() == []


async def test_a_failure_after_the_escalation_leaves_neither_ticket_nor_delivery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.configure({})
    insert = SqliteTx.insert_deliveries

    def insert_then_fail(tx: Tx, rows: Any) -> None:
        insert(tx, rows)
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(SqliteTx, "insert_deliveries", insert_then_fail)
    with pytest.raises(RuntimeError, match="disk went away"):
        await world.open("Checkout broken")
    assert world.rows() == []
    assert world.count("tickets") == 0
    assert world.count("rule_firings") == 0


async def test_a_unit_that_raises_after_inserting_deliveries_keeps_none(world: World) -> None:
    await world.configure({}, rules=[{"id": "tag", "trigger": "ticket_opened",
                                      "actions": [{"type": "add_tag", "tag": "new"}]}])  # fmt: skip
    ticket = await world.open("Checkout broken")

    def unit(tx: Tx) -> None:
        tx.insert_deliveries([(G, ticket.id, json.dumps({"kind": "ops"}), "r", T0)])
        assert tx.delivery_counts() == {"pending": 1}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await world.desk.store.run(unit)
    assert world.rows() == []
    assert await world.counts() == {}


async def test_escalations_by_staff_sla_and_a_later_urgency_go_to_the_outbox_too(
    world: World,
) -> None:
    rules = [
        {"id": "sla", "name": "SLA missed", "trigger": "sla_breach",
         "actions": [{"type": "escalate"}]},
        {"id": "hot", "trigger": "ticket_opened", "urgency": ["critical"],
         "actions": [{"type": "escalate"}]},
    ]  # fmt: skip
    await world.configure(
        {
            "staff": ["900"],
            "sla": {"first_response_minutes": 5},
            "destinations": [{"kind": "http", "url": world.url(ENDPOINT), "secret": SECRET,
                              "when": {"urgency": ["critical"]}}],
        },
        rules,
    )  # fmt: skip
    by_staff = await world.open("Staff escalates this")
    by_sla = await world.open("Nobody answers this")
    later = await world.open("Classified later")
    assert world.rows() == []

    await world.desk.escalate(by_staff.id, "900", T0, "Customer is on the phone")
    await world.desk.set_urgency(later.id, "critical", T0)
    await world.desk.process_due(T0 + timedelta(minutes=5))

    found = [(r["ticket_id"], destination_of(r)["kind"], r["reason"]) for r in world.rows()]
    assert (by_staff.id, "ops", "Customer is on the phone") in found
    assert (later.id, "ops", "Rule: hot") in found
    assert (later.id, "http", "Rule: hot") in found  # its urgency is known now
    assert (by_sla.id, "ops", "Rule: SLA missed") in found
    ops = OpsStub()
    worker = world.worker(ops=ops)
    await worker.send_due()
    assert {t.id for t, *_ in ops.posts} == {by_staff.id, later.id}
    world.clock.step(5 * 60)  # the breach's delivery is due at the deadline it happened
    await worker.send_due()
    assert {t.id for t, *_ in ops.posts} == {by_staff.id, by_sla.id, later.id}
    assert len(ops.posts) == len([f for f in found if f[1] == "ops"])
    assert len(world.destinations.to(ENDPOINT)) == 1


# -- a Discord channel webhook -------------------------------------------------------------------


async def test_a_webhook_post_is_sent_and_marked_with_its_message_id(world: World) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    worker = world.worker()
    await world.open(f"Refund for {EMAIL}", body=f"call me on {PHONE}")
    world.clock.step(3)

    assert await worker.send_due() == 1

    [seen] = world.destinations.seen
    assert seen.path == OPS_HOOK
    assert seen.query == {"wait": "true"}
    assert seen.headers["Content-Type"] == "application/json"
    body = seen.json()
    assert body["content"] == ""
    assert body["allowed_mentions"] == {"parse": [], "roles": [], "users": []}
    [embed] = body["embeds"]
    assert embed["title"] == "Escalated: Refund for [EMAIL]"
    assert embed["description"] == "call me on [PHONE]"
    assert EMAIL not in seen.body.decode()
    assert PHONE not in seen.body.decode()
    [row] = world.rows()
    assert row["status"] == "sent"
    assert row["message_id"] == "9000"
    assert row["attempts"] == 1
    assert at(row["sent_at"]) == world.clock()
    assert row["error"] is None
    assert worker.outcomes == {"sent": 1, "summarized": 0, "retried": 0, "failed": 0}

    world.clock.step(600)
    assert await worker.send_due() == 0
    assert len(world.destinations.seen) == 1


async def test_opted_in_mentions_reach_the_webhook(world: World) -> None:
    await world.configure(
        {"ops_webhook": world.url(OPS_HOOK), "ops_mentions": {"roles": ["123"], "users": ["456"]}}
    )
    worker = world.worker()
    await world.open("Checkout broken")
    await worker.send_due()
    [seen] = world.destinations.seen
    assert seen.json()["content"] == "<@&123> <@456>"
    assert seen.json()["allowed_mentions"] == {"parse": [], "roles": ["123"], "users": ["456"]}


async def test_429_is_retried_after_its_retry_after_then_sent(world: World) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    world.destinations.answer(OPS_HOOK, 429)
    worker = world.worker()
    await world.open("Checkout broken")

    await worker.send_due()
    [row] = world.rows()
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert "429" in row["error"]
    assert at(row["next_at"]) == T0 + timedelta(seconds=2)
    assert worker.outcomes["retried"] == 1

    world.clock.step(1.9)
    assert await worker.send_due() == 0
    assert len(world.destinations.seen) == 1

    world.clock.step(0.1)
    assert await worker.send_due() == 1
    [row] = world.rows()
    assert row["status"] == "sent"
    assert row["attempts"] == 2
    assert row["error"] is None
    assert len(world.destinations.seen) == 2
    assert len(world.destinations.ok(OPS_HOOK)) == 1
    assert worker.outcomes == {"sent": 1, "summarized": 0, "retried": 1, "failed": 0}


async def test_5xx_is_retried_with_growing_backoff(world: World) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    world.destinations.answer(OPS_HOOK, 500, 503)
    worker = world.worker()
    await world.open("Checkout broken")

    await worker.send_due()
    [row] = world.rows()
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "500" in row["error"]
    assert at(row["next_at"]) == T0 + timedelta(seconds=BACKOFF[0])

    world.clock.step(BACKOFF[0])
    await worker.send_due()
    [row] = world.rows()
    assert (row["status"], row["attempts"]) == ("pending", 2)
    assert "503" in row["error"]
    assert at(row["next_at"]) == world.clock() + timedelta(seconds=BACKOFF[1])
    assert BACKOFF[1] > BACKOFF[0]

    world.clock.step(BACKOFF[1] - 0.5)
    assert await worker.send_due() == 0
    world.clock.step(0.5)
    await worker.send_due()
    [row] = world.rows()
    assert (row["status"], row["attempts"]) == ("sent", 3)
    assert len(world.destinations.seen) == 3
    assert worker.outcomes == {"sent": 1, "summarized": 0, "retried": 2, "failed": 0}


async def test_a_deleted_ops_webhook_is_disabled_admins_are_told_and_saving_reenables(
    world: World,
) -> None:
    settings = {"ops_webhook": world.url(OPS_HOOK)}
    await world.configure(settings)
    world.destinations.answer(OPS_HOOK, 404)  # Discord: Unknown Webhook
    ops = OpsStub()
    worker = world.worker(ops=ops)
    first = await world.open("Deleted webhook")

    await worker.send_due()
    rows = {destination_of(r)["kind"]: r for r in world.rows()}
    assert rows["discord_webhook"]["status"] == "failed"
    assert rows["discord_webhook"]["attempts"] == 1
    assert "404" in rows["discord_webhook"]["error"]
    [(guild, text)] = ops.notices  # in #ops, through the outbox
    assert guild == G
    assert "no longer sent to the Discord webhook at 127.0.0.1:" in text
    assert "saving the settings again turns it back on" in text
    assert "Until then they are posted here." in text
    assert OPS_HOOK not in text  # the webhook's token stays out of the message
    assert rows["ops_notice"]["status"] == "sent"
    # The escalation is not lost with its webhook: the bot posts it in #ops.
    assert [t.id for t, *_ in ops.posts] == [first.id]
    assert rows["ops"]["status"] == "sent"

    second = await world.open("Next one")
    world.clock.step(3600)
    await worker.send_due()
    hooked = {
        r["ticket_id"]: r for r in world.rows() if destination_of(r)["kind"] == "discord_webhook"
    }
    assert hooked[first.id]["attempts"] == 1  # never tried again
    assert hooked[second.id]["status"] == "failed"
    assert "disabled" in hooked[second.id]["error"]
    assert len(world.destinations.seen) == 1  # the disabled webhook got nothing more
    assert [t.id for t, *_ in ops.posts] == [first.id, second.id]
    assert len(ops.notices) == 1  # told once

    await world.configure(settings)  # an admin saves the settings again
    third = await world.open("After the fix")
    await worker.send_due()
    [row] = [r for r in world.rows() if r["ticket_id"] == third.id]
    assert (destination_of(row)["kind"], row["status"]) == ("discord_webhook", "sent")
    assert len(world.destinations.ok(OPS_HOOK)) == 1
    assert len(ops.posts) == 2  # back on the webhook, not through the bot


async def test_a_deleted_fanout_webhook_is_disabled_without_posting_in_ops_instead(
    world: World,
) -> None:
    await world.configure(
        {"destinations": [{"kind": "discord_webhook", "url": world.url(FANOUT_HOOK)}]}
    )
    world.destinations.answer(FANOUT_HOOK, 404)
    ops = OpsStub()
    worker = world.worker(ops=ops)
    await world.open("Deleted webhook")
    await worker.send_due()
    assert len(ops.posts) == 1  # its own #ops post only, not a second one for the webhook
    [(_, text)] = ops.notices
    assert "Until then" not in text


async def test_410_disables_an_http_destination_while_other_4xx_are_retried(
    world: World,
) -> None:
    await world.configure(
        {"destinations": [{"kind": "http", "url": world.url(ENDPOINT), "secret": SECRET}]}
    )
    world.destinations.answer(ENDPOINT, 400, 404, 401, 410)
    ops = OpsStub()
    worker = world.worker(ops=ops)
    await world.open("Checkout broken")

    for _ in range(4):
        await worker.send_due()
        world.clock.step(BACKOFF[-1])
    [row] = [r for r in world.rows() if destination_of(r)["kind"] == "http"]
    assert (row["status"], row["attempts"]) == ("failed", 4)  # 400, 404, 401 retried; 410 stops
    assert "410" in row["error"]
    assert len(ops.notices) == 1
    assert [s.headers["webhook-id"] for s in world.destinations.to(ENDPOINT)].count(
        row["message_id"] or row["event_id"]
    ) == 4


async def test_a_huge_answer_is_read_up_to_the_cap_and_its_connection_dropped(
    world: World,
) -> None:
    await world.configure(
        {"destinations": [{"kind": "http", "url": world.url(ENDPOINT), "secret": SECRET}]}
    )
    world.destinations.answer(ENDPOINT, "huge")
    worker = world.worker(ops=OpsStub())
    await world.open("Checkout broken")

    await worker.send_due()  # returns: the worker did not wait for 400 MiB
    await world.destinations.huge_done.wait()  # the receiver saw the connection drop
    [row] = [r for r in world.rows() if destination_of(r)["kind"] == "http"]
    assert row["status"] == "sent"
    # What got written is the cap plus socket buffers, not the body: nothing buffered it.
    assert world.destinations.huge_written < 32 * MIB


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_a_failed_try_never_followed_and_never_sent(
    world: World, status: int
) -> None:
    await world.configure(
        {"destinations": [{"kind": "http", "url": world.url(ENDPOINT), "secret": SECRET}]}
    )
    world.destinations.answer(ENDPOINT, status)
    worker = world.worker(ops=OpsStub())
    await world.open("Checkout broken")

    await worker.send_due()
    [row] = [r for r in world.rows() if destination_of(r)["kind"] == "http"]
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "redirect" in row["error"]
    assert [s.path for s in world.destinations.seen] == [ENDPOINT]  # /elsewhere never asked

    world.clock.step(BACKOFF[0])
    await worker.send_due()
    [row] = [r for r in world.rows() if destination_of(r)["kind"] == "http"]
    assert row["status"] == "sent"
    assert [s.path for s in world.destinations.seen] == [ENDPOINT, ENDPOINT]


async def test_a_delivery_that_keeps_failing_is_given_up_after_max_attempts(
    world: World,
) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    world.destinations.answer(OPS_HOOK, *[500] * MAX_ATTEMPTS)
    worker = world.worker()
    await world.open("Checkout broken")
    for _ in range(MAX_ATTEMPTS + 2):
        await worker.send_due()
        world.clock.step(BACKOFF[-1])
    [row] = world.rows()
    assert (row["status"], row["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert len(world.destinations.seen) == MAX_ATTEMPTS
    assert worker.outcomes == {
        "sent": 0, "summarized": 0, "retried": MAX_ATTEMPTS - 1, "failed": 1,
    }  # fmt: skip


async def test_a_stalled_endpoint_times_out_and_is_retried(world: World) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    world.destinations.answer(OPS_HOOK, "stall")
    worker = world.worker(timeout=0.2)
    await world.open("Checkout broken")

    await worker.send_due()  # returns: the stall lasts until released, only the timeout ends it
    [row] = world.rows()
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "Timeout" in row["error"]
    assert at(row["next_at"]) == T0 + timedelta(seconds=BACKOFF[0])
    assert worker.outcomes["retried"] == 1

    world.clock.step(BACKOFF[0])
    await worker.send_due()
    [row] = world.rows()
    assert row["status"] == "sent"
    assert len(world.destinations.seen) == 2


async def test_a_stalled_destination_does_not_hold_up_the_ops_posts(world: World) -> None:
    await world.configure(
        {"destinations": [{"kind": "discord_webhook", "url": world.url(FANOUT_HOOK)}]}
    )
    world.destinations.answer(FANOUT_HOOK, "stall", "stall", "stall")
    stalling = asyncio.Event()
    world.destinations.on_request = lambda seen: stalling.set()
    retried_by_then: list[int] = []

    class Watched(OpsStub):
        async def post(
            self, ticket: Ticket, post: OpsPost, *, reason: str, nonce: str, channel_id: str | None
        ) -> tuple[str, str]:
            # Posted only while the webhook stalls: a worker that sent one after the other
            # would never get here (the bound only ends the test sooner).
            await asyncio.wait_for(stalling.wait(), 5)
            retried_by_then.append(worker.outcomes["retried"])
            return await super().post(
                ticket, post, reason=reason, nonce=nonce, channel_id=channel_id
            )

    ops = Watched()
    worker = world.worker(ops=ops, timeout=0.5)
    for n in range(3):
        await world.open(f"Ticket {n}")

    await worker.send_due()

    # The three ops posts went out side by side with the stalled webhook, not after it: while
    # it stalled, and none after its timeout (recorded as a retry).
    assert retried_by_then == [0, 0, 0]
    assert worker.outcomes["retried"] >= 1
    assert await world.counts() == {"sent": 3, "pending": 3}


# -- the limiter: a burst becomes one summary -----------------------------------------------------


async def test_a_burst_of_45_becomes_29_posts_and_one_summary_of_16(world: World) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    worker = world.worker()
    opened = [await world.open(f"Outage {n}", urgency="critical") for n in range(1, 46)]

    await worker.send_due()

    seen = world.destinations.to(OPS_HOOK)
    assert len(seen) == 30
    singles, last = seen[:29], seen[29]
    assert [ticket_field(s) for s in singles] == [f"#{n} (discord)" for n in range(1, 30)]
    assert not any(s.is_summary for s in singles)
    assert last.title == "16 more critical tickets escalated in the last minute"
    body = last.json()
    assert body["allowed_mentions"] == {"parse": []}
    lines = body["embeds"][0]["description"].splitlines()
    assert lines == [f"#{n} Outage {n} (critical)" for n in range(30, 46)]

    # Nothing is lost: each escalation went alone or in the summary, none twice.
    rows = {r["ticket_id"]: r for r in world.rows()}
    assert len(rows) == 45
    assert await world.counts() == {"sent": 30, "summarized": 15}
    for t in opened[:29]:
        assert rows[t.id]["status"] == "sent"
    summary_id = rows[opened[29].id]["message_id"]
    assert rows[opened[29].id]["status"] == "sent"
    for t in opened[30:]:
        assert rows[t.id]["status"] == "summarized"
        assert rows[t.id]["message_id"] == summary_id
    assert len({r["message_id"] for r in rows.values()}) == 30
    assert worker.outcomes == {"sent": 30, "summarized": 15, "retried": 0, "failed": 0}

    # The minute is full: the next one waits until the oldest post is a minute old.
    world.clock.step(10)
    late = await world.open("After the burst", urgency="critical")
    await worker.send_due()
    assert len(world.destinations.seen) == 30
    [row] = [r for r in world.rows() if r["ticket_id"] == late.id]
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert at(row["next_at"]) == T0 + timedelta(minutes=1)

    world.clock.step(50)
    await worker.send_due()
    assert len(world.destinations.seen) == 31
    assert ticket_field(world.destinations.seen[-1]) == f"#{late.number} (discord)"
    assert await world.counts() == {"sent": 31, "summarized": 15}


async def test_limits_are_per_destination(world: World) -> None:
    await world.configure(
        {
            "ops_webhook": world.url(OPS_HOOK),
            "destinations": [{"kind": "discord_webhook", "url": world.url(FANOUT_HOOK),
                              "when": {"urgency": ["critical"]}}],
        }
    )  # fmt: skip
    worker = world.worker()
    for n in range(1, 36):
        await world.open(f"Ticket {n}", urgency="critical" if n <= 5 else "low")

    await worker.send_due()

    ops = world.destinations.to(OPS_HOOK)
    assert len(ops) == 30
    assert ops[-1].title == "6 more low tickets escalated in the last minute"
    fanout = world.destinations.to(FANOUT_HOOK)
    assert [ticket_field(s) for s in fanout] == [f"#{n} (discord)" for n in range(1, 6)]
    assert await world.counts() == {"sent": 35, "summarized": 5}


async def test_rows_folded_into_a_summary_are_not_posted_again_in_a_long_batch(
    world: World,
) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    worker = world.worker()
    for n in range(1, 46):
        await world.open(f"Outage {n}", urgency="critical")

    def slow_summary(seen: Seen) -> None:
        # The batch takes over a minute by the time the summary is out (slow destinations).
        if seen.is_summary:
            world.clock.step(61)

    world.destinations.on_request = slow_summary
    await worker.send_due()

    assert len(world.destinations.seen) == 30
    assert await world.counts() == {"sent": 30, "summarized": 15}


# -- a generic HTTP endpoint, signed ------------------------------------------------------------


async def test_an_http_destination_gets_a_signed_body_with_the_same_id_on_a_retry(
    world: World,
) -> None:
    await world.configure(
        {"destinations": [{"kind": "http", "url": world.url(ENDPOINT), "secret": SECRET}]}
    )
    world.destinations.answer(ENDPOINT, 500)
    worker = world.worker(ops=OpsStub())
    ticket = await world.open(f"Refund for {EMAIL}", urgency="high")

    await worker.send_due()
    world.clock.step(BACKOFF[0])
    await worker.send_due()

    first, second = world.destinations.to(ENDPOINT)
    for seen, moment in ((first, T0), (second, T0 + timedelta(seconds=BACKOFF[0]))):
        headers = seen.headers
        assert headers["webhook-timestamp"] == str(int(moment.timestamp()))
        assert keys.signature_matches(
            SECRET,
            headers["webhook-id"],
            headers["webhook-timestamp"],
            seen.body,
            headers["webhook-signature"],
        )
        assert not keys.signature_matches(
            OTHER_SECRET,
            headers["webhook-id"],
            headers["webhook-timestamp"],
            seen.body,
            headers["webhook-signature"],
        )
        assert seen.headers["Content-Type"] == "application/json"
        body = seen.json()
        assert body["type"] == "ticket.escalated"
        assert body["timestamp"] == T0.isoformat()  # when first built, on every try
        assert body["data"] == {
            "ticket": ticket.number,
            "guild_id": G,
            "source": "discord",
            "ref": None,
            "subject": "Refund for [EMAIL]",
            "urgency": "high",
            "type": None,
            "tags": [],
            "reason": REASON,
        }
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body  # the same bytes: the receiver sees one event
    assert first.headers["webhook-signature"].startswith("v1,")
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    [row] = [r for r in world.rows() if destination_of(r)["kind"] == "http"]
    assert row["status"] == "sent"
    assert row["attempts"] == 2
    assert row["message_id"] == row["event_id"] == first.headers["webhook-id"]
    assert re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", row["event_id"])  # a ULID, not the row id


async def test_a_restart_resends_an_http_delivery_with_the_same_bytes_and_id(
    world: World,
) -> None:
    """The receiver dedupes by webhook-id; a crash mid-try must not change what it gets."""
    await world.configure(
        {"destinations": [{"kind": "http", "url": world.url(ENDPOINT), "secret": SECRET}]}
    )
    world.destinations.answer(ENDPOINT, "accept, then stall")
    ticket = await world.open("Checkout broken", urgency="low")
    await world.worker(ops=OpsStub(), timeout=0.2).send_due()
    await world.desk.set_urgency(ticket.id, "high", T0)  # the ticket moved on meanwhile

    desk = await world.restart()
    world.clock.step(3600)
    worker = Deliveries(desk, Outbox(desk.store), ops=OpsStub(), clock=world.clock)
    world.workers.append(worker)
    await worker.send_due()

    first, second = world.destinations.to(ENDPOINT)
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert second.body == first.body
    assert json.loads(second.body)["data"]["urgency"] == "low"  # as first built
    stamps = [int(s.headers["webhook-timestamp"]) for s in (first, second)]
    assert stamps[1] - stamps[0] == 3600  # each try is signed at its own time


async def test_webhook_ids_differ_across_databases_for_the_same_row(
    world: World, tmp_path: Path
) -> None:
    """Two installs (or a recreated database) number their rows alike; their ids differ."""
    ids = []
    for n in range(2):
        if n:
            await world.close_workers()
            await world.desk.store.close()
            world.services = await services_at(tmp_path / "other.db", world.base)
        await world.configure(
            {"destinations": [{"kind": "http", "url": world.url(ENDPOINT), "secret": SECRET}]}
        )
        await world.open("Checkout broken")
        await world.worker(ops=OpsStub()).send_due()
    ids = [s.headers["webhook-id"] for s in world.destinations.to(ENDPOINT)]
    assert len(ids) == 2
    assert ids[0] != ids[1]


async def test_when_conditions_route_only_matching_tickets_while_ops_gets_all(
    world: World,
) -> None:
    await world.configure(
        {
            "destinations": [
                {"kind": "http", "url": world.url(ENDPOINT), "secret": SECRET,
                 "when": {"urgency": ["critical"]}},
                {"kind": "discord_webhook", "url": world.url(FANOUT_HOOK),
                 "when": {"channel": ["discord"], "urgency": ["low", "critical"]}},
            ]
        }
    )  # fmt: skip
    ops = OpsStub()
    worker = world.worker(ops=ops)
    critical = await world.open("Site down", urgency="critical", channel_id="501")
    low = await world.open("Typo on a page", urgency="low", channel_id="502")
    await world.open("Unknown urgency", channel_id="503")
    await world.open("No channel yet", urgency="low")

    await worker.send_due()

    assert len(ops.posts) == 4
    [to_http] = world.destinations.to(ENDPOINT)
    assert to_http.json()["data"]["ticket"] == critical.number
    assert [ticket_field(s) for s in world.destinations.to(FANOUT_HOOK)] == ["<#501>", "<#502>"]
    assert [t.number for t, *_ in ops.posts] == [1, 2, 3, 4]
    assert await world.counts() == {"sent": 7}
    assert low.number == 2


# -- #ops through the bot -------------------------------------------------------------------------


async def test_ops_posts_wait_for_the_bot_without_counting_as_tries(world: World) -> None:
    await world.configure({})
    worker = world.worker(ops=None)
    ticket = await world.open("Checkout broken", urgency="critical", channel_id="501")

    assert await worker.send_due() == 1
    [row] = world.rows()
    assert (row["status"], row["attempts"], row["error"]) == ("pending", 0, None)
    assert at(row["next_at"]) == T0 + NO_BOT_WAIT
    assert worker.outcomes == {"sent": 0, "summarized": 0, "retried": 0, "failed": 0}

    # The bot runs, connected but not ready yet: still not a try.
    stub = OpsStub(ready=False)
    worker = world.worker(ops=stub)
    world.clock.step(NO_BOT_WAIT.total_seconds())
    await worker.send_due()
    [row] = world.rows()
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert stub.posts == []

    stub.ready = True
    world.clock.step(NO_BOT_WAIT.total_seconds())
    await worker.send_due()
    [(posted, post, reason, once)] = stub.posts
    assert posted.id == ticket.id
    assert reason == REASON
    assert once == nonce(row["id"])
    assert post.embed.title == "Escalated: Checkout broken"
    assert post.allowed_mentions == {"parse": [], "roles": [], "users": []}
    fields = {f.name: f.value for f in post.embed.fields}
    assert fields["Ticket"] == "<#501>"
    assert fields["Urgency"] == "critical"
    [row] = world.rows()
    assert (row["status"], row["attempts"], row["message_id"]) == ("sent", 1, "ops-1")
    assert worker.outcomes["sent"] == 1
    assert world.destinations.seen == []  # the bot's channel, not a webhook


async def test_one_broken_delivery_does_not_hold_up_the_others(world: World) -> None:
    await world.configure({})
    ops = OpsStub()
    worker = world.worker(ops=ops)
    first = await world.open("First")
    broken = {"kind": "http", "url": world.url(ENDPOINT), "secret": "whsec_" + "A" * 17}
    await world.desk.store.run(
        lambda tx: tx.insert_deliveries(
            [(G, first.id, json.dumps(broken), REASON, T0 - timedelta(seconds=1))]
        )
    )
    await world.open("Second")

    await worker.send_due()
    world.clock.step(60)
    await worker.send_due()

    assert len(ops.posts) == 2
    poisoned = [r for r in world.rows() if destination_of(r)["kind"] == "http"]
    assert poisoned[0]["attempts"] >= 1
    assert poisoned[0]["error"]


# -- handed over by the desk: #ops posts in two units -------------------------------------------


def handing(world: World) -> Services:
    """The services of ``world`` as the bot's process has them: the desk hands its #ops posts
    to the worker (``Handoff``)."""
    world.services = build_services(
        world.desk.store, outbox=True, outbound=loopback(world.base), bot=True
    )
    return world.services


def handed_worker(world: World, ops: OpsStub) -> Deliveries:
    services = world.services
    worker = Deliveries(
        services.desk, services.outbox, ops=ops, handoff=services.handoff, clock=world.clock
    )
    world.workers.append(worker)
    return worker


def counting(store: Store) -> list[str]:
    """The units ``store`` runs from now on, by the function that asked for each."""
    units: list[str] = []
    run = store.run

    async def counted(unit: Callable[[Tx], Any]) -> Any:
        units.append(getattr(unit, "__qualname__", "").split(".<locals>")[0])
        return await run(unit)

    store.run = counted  # type: ignore[method-assign]
    return units


async def until(check: Callable[[], bool]) -> None:
    """Wait for ``check`` to hold: what the worker does in its own task, seen from outside."""
    async with asyncio.timeout(10):
        while not check():  # noqa: ASYNC110  (the worker's task sets no event for tests)
            await asyncio.sleep(0.01)


async def test_an_ops_post_handed_over_is_posted_and_recorded_in_one_unit(world: World) -> None:
    await world.configure({})
    services = handing(world)
    assert services.handoff is not None
    ops = OpsStub()
    worker = handed_worker(world, ops)
    before = await world.open("Opened before the worker ran")  # the handoff is closed
    units = counting(world.desk.store)
    running = asyncio.create_task(worker.run())
    try:
        # The first round: the due read (which opens the handoff) found it, as without one.
        await until(lambda: "Outbox.next_due" in units)
        assert services.handoff.open
        assert ops.posts[0][0].id == before.id
        first = len(units)

        ticket = await world.open("Checkout broken")
        await until(lambda: len(ops.posts) == 2 and len(units) >= first + 2)
        worker.wake()  # a look at the outbox: what the worker reads shows up after
        await until(lambda: len(units) >= first + 4)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    # The desk's unit, the outcome's unit; nothing read in between (then the look asked for).
    assert units[first : first + 4] == [
        "Desk._run_returning",
        "Outbox.sent",
        "Outbox.due",
        "Outbox.next_due",
    ]
    assert ops.posts[1][0].id == ticket.id
    assert ops.looked == []  # marked by the desk, never tried: nothing to look for
    assert [r["status"] for r in world.rows()] == ["sent", "sent"]
    assert services.handoff.open is False  # closed when the worker stopped


async def test_a_held_post_never_tried_is_posted_once_after_a_restart(world: World) -> None:
    await world.configure({})
    handing(world)
    await handed_worker(world, OpsStub()).send_due()  # opens the handoff
    await world.open("Checkout broken", channel_id="501")  # then the process dies
    [row] = world.rows()
    # Saved with its try marked and held from the due reads.
    assert (row["status"], row["attempt"]) == ("pending", row["event_id"])
    assert await world.services.outbox.due(T0 + timedelta(days=1), 10) == []
    assert await world.services.outbox.next_due() is None

    await world.restart()
    handing(world)
    ops = OpsStub()
    assert await handed_worker(world, ops).send_due() == 1  # released, then due

    assert ops.looked == [(None, row["event_id"])]  # maybe posted: looked first
    assert len(ops.posts) == 1
    [row] = world.rows()
    assert (row["status"], row["message_id"], row["attempt"]) == ("sent", "ops-1", None)


async def test_a_post_handed_while_the_bot_connects_waits_unmarked(world: World) -> None:
    await world.configure({})
    handing(world)
    ops = OpsStub(ready=False)
    worker = handed_worker(world, ops)
    await worker.send_due()  # opens the handoff
    await world.open("Checkout broken")

    assert await worker.send_due() == 1
    [row] = world.rows()
    assert (row["status"], row["attempts"], row["attempt"]) == ("pending", 0, None)
    assert at(row["next_at"]) == T0 + timedelta(seconds=1)  # BOT_CONNECTING_WAIT

    ops.ready = True
    world.clock.step(1)
    await worker.send_due()
    assert (len(ops.posts), ops.looked) == (1, [])
    [row] = world.rows()
    assert row["status"] == "sent"


# -- restarts -------------------------------------------------------------------------------------


async def test_a_restart_sends_what_was_pending_exactly_once(world: World) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    world.destinations.answer(OPS_HOOK, 200, 500)
    worker = world.worker()
    for n in range(1, 4):
        await world.open(f"Ticket {n}")
    await worker.send_due()  # 1 sent, 2 failed once, 3 waits with it (the hook is down)
    await world.open("Ticket 4")  # saved, then the process dies before the worker ran
    assert await world.counts() == {"sent": 1, "pending": 3}

    desk = await world.restart()
    world.clock.step(BACKOFF[0])
    worker = Deliveries(desk, Outbox(desk.store), clock=world.clock)
    world.workers.append(worker)
    assert await worker.pending() == 3
    await worker.send_due()
    world.clock.step(3600)
    await worker.send_due()

    delivered = [ticket_field(s) for s in world.destinations.ok(OPS_HOOK)]
    assert sorted(delivered) == [f"#{n} (discord)" for n in range(1, 5)]
    assert await world.counts() == {"sent": 4}
    assert await worker.pending() == 0

    # And once more: nothing is sent twice.
    desk = await world.restart()
    again = Deliveries(desk, Outbox(desk.store), clock=world.clock)
    world.workers.append(again)
    world.clock.step(3600)
    assert await again.send_due() == 0
    assert len(world.destinations.ok(OPS_HOOK)) == 4


# -- accepted, then no answer (a timeout, or a kill): look before posting again -----------------


class NoAnswerOps(OpsStub):
    """Discord takes the post, then the answer is lost (as when the process is killed)."""

    async def post(
        self, ticket: Ticket, post: OpsPost, *, reason: str, nonce: str, channel_id: str | None
    ) -> tuple[str, str]:
        await super().post(ticket, post, reason=reason, nonce=nonce, channel_id=channel_id)
        raise TimeoutError


@pytest.mark.parametrize("can_read", [True, False])
async def test_an_ops_post_accepted_without_an_answer_is_found_not_posted_again(
    world: World, can_read: bool
) -> None:
    await world.configure({})
    lost = NoAnswerOps()
    await world.open("Checkout broken", channel_id="501")
    await world.worker(ops=lost).send_due()
    [row] = world.rows()
    assert (row["status"], row["attempt"]) == ("pending", row["event_id"])  # maybe accepted
    [(_, post, _, _)] = lost.posts
    assert post.embed.footer == f"ref {row['event_id']}"

    desk = await world.restart()
    world.clock.step(3600)  # long past any nonce window
    ops = OpsStub()
    ops.posts = list(lost.posts)  # the channel as Discord keeps it
    ops.can_read = can_read
    worker = Deliveries(desk, Outbox(desk.store), ops=ops, clock=world.clock)
    world.workers.append(worker)
    await worker.send_due()

    assert ops.looked == [(None, row["event_id"])]
    [row] = world.rows()
    assert row["status"] == "sent"
    # The control: a bot that cannot read #ops does post twice, and the count shows it.
    assert len(ops.posts) == (1 if can_read else 2)
    if can_read:
        assert row["message_id"] == "ops-1"
        assert await desk.store.run(lambda tx: tx.ops_messages(row["ticket_id"])) == [
            ("ops", "ops-1", REASON)
        ]


@pytest.mark.parametrize("can_read", [True, False])
async def test_a_webhook_post_accepted_without_an_answer_is_found_not_posted_again(
    world: World, can_read: bool
) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    world.destinations.answer(OPS_HOOK, "accept, then stall")
    await world.open("Checkout broken")
    await world.worker(timeout=0.2).send_due()
    [row] = world.rows()
    assert (row["status"], row["attempt"]) == ("pending", row["event_id"])
    assert len(world.destinations.ok(OPS_HOOK)) == 1

    desk = await world.restart()
    world.clock.step(3600)
    ops = OpsStub(destinations=world.destinations)
    ops.can_read = can_read
    worker = Deliveries(desk, Outbox(desk.store), ops=ops, clock=world.clock)
    world.workers.append(worker)
    await worker.send_due()

    assert ops.looked == [("77", row["event_id"])]  # the webhook's channel, from the webhook
    [row] = world.rows()
    assert row["status"] == "sent"
    assert len(world.destinations.ok(OPS_HOOK)) == (1 if can_read else 2)


async def test_a_summary_accepted_without_an_answer_stands_for_its_rows_after_a_restart(
    world: World,
) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    world.destinations.answer(OPS_HOOK, *[200] * 29, "accept, then stall")
    for n in range(1, 36):
        await world.open(f"Outage {n}", urgency="critical")
    await world.worker(timeout=0.2).send_due()
    summaries = [s for s in world.destinations.ok(OPS_HOOK) if s.is_summary]
    assert len(summaries) == 1
    assert await world.counts() == {"sent": 29, "pending": 6}
    marked = {r["attempt"] for r in world.rows() if r["status"] == "pending"}
    assert len(marked) == 1  # the six share the summary's marker
    assert summaries[0].json()["embeds"][0]["footer"]["text"] == f"ref {marked.pop()}"

    desk = await world.restart()
    world.clock.step(3600)
    await world.open("After the restart", urgency="critical")
    ops = OpsStub(destinations=world.destinations)
    worker = Deliveries(desk, Outbox(desk.store), ops=ops, clock=world.clock)
    world.workers.append(worker)
    await worker.send_due()

    assert len(ops.looked) == 1
    assert len([s for s in world.destinations.ok(OPS_HOOK) if s.is_summary]) == 1
    assert await world.counts() == {"sent": 31, "summarized": 5}
    last = world.destinations.ok(OPS_HOOK)[-1]
    assert ticket_field(last) == "#36 (discord)"  # only the new one went out


async def test_a_summary_refused_with_an_answer_leaves_nothing_to_look_for(world: World) -> None:
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    world.destinations.answer(OPS_HOOK, *[200] * 29, 500)
    for n in range(1, 36):
        await world.open(f"Outage {n}", urgency="critical")
    await world.worker().send_due()
    pending = [r for r in world.rows() if r["status"] == "pending"]
    assert len(pending) == 6
    assert {(r["attempt"], r["attempting_at"]) for r in pending} == {(None, None)}


async def test_without_a_bot_to_look_a_maybe_accepted_webhook_post_is_sent_again(
    world: World,
) -> None:
    """The ingress alone cannot read Discord: an escalation posted twice beats one lost."""
    await world.configure({"ops_webhook": world.url(OPS_HOOK)})
    world.destinations.answer(OPS_HOOK, "accept, then stall")
    await world.open("Checkout broken")
    worker = world.worker(timeout=0.2)
    await worker.send_due()
    world.clock.step(BACKOFF[0])
    await worker.send_due()
    [row] = world.rows()
    assert (row["status"], row["attempt"]) == ("sent", None)
    assert len(world.destinations.ok(OPS_HOOK)) == 2


async def test_an_answered_failure_clears_the_mark_so_nothing_is_looked_for(world: World) -> None:
    await world.configure({})
    ops = OpsStub()
    await world.open("Checkout broken")

    class Refusing(OpsStub):
        async def post(
            self, ticket: Ticket, post: OpsPost, *, reason: str, nonce: str, channel_id: str | None
        ) -> tuple[str, str]:
            raise Later("Discord answered 403")

    await world.worker(ops=Refusing()).send_due()
    [row] = world.rows()
    assert (row["status"], row["attempt"], row["attempting_at"]) == ("pending", None, None)
    world.clock.step(60)
    await world.worker(ops=ops).send_due()
    assert ops.looked == []
    assert len(ops.posts) == 1


# -- an API ticket's post shows its event -------------------------------------------------------


async def test_an_api_tickets_post_shows_its_stored_event_payload(world: World) -> None:
    await world.configure(
        {
            "destinations": [
                {"kind": "http", "url": world.url(ENDPOINT), "secret": SECRET,
                 "when": {"tier": ["enterprise"], "channel": ["email"]}},
                {"kind": "discord_webhook", "url": world.url(FANOUT_HOOK),
                 "when": {"tier": ["free"]}},
            ]
        }
    )  # fmt: skip
    created = keys.new_key(G, T0)
    key_id = created.row.key_id
    payload = {
        "ticket_id": "T-1001",
        "subject": "Checkout is broken",
        "body": f"Every card is declined, call me on {PHONE}",
        "customer_tier": "enterprise",
        "channel": "email",
        "order_id": 42,
        "contact": EMAIL,
        "items": ["sku-1", "sku-2"],
    }
    other = {**payload, "ticket_id": "T-9", "customer_tier": "free", "order_id": 7}
    events = [
        IngressEventRow("evt_1", key_id, G, "support.ticket.created", payload, "api", T0),
        IngressEventRow("evt_2", key_id, G, "support.ticket.created", other, "api", T0),
    ]
    await world.desk.store.run(
        lambda tx: [tx.insert_api_key(created.row), *map(tx.insert_ingress_event, events)]
    )
    ops = OpsStub()
    worker = world.worker(ops=ops)
    ticket = await world.desk.open_ticket(
        G, f"api:{key_id}", payload["subject"], T0, body=payload["body"], source="api",
        ref="T-1001",
    )  # fmt: skip

    await worker.send_due()

    [(posted, post, _, _)] = ops.posts
    assert posted.id == ticket.id
    embed = post.embed.to_dict()
    assert embed["title"] == "Escalated: Checkout is broken"
    assert embed["description"] == "Every card is declined, call me on [PHONE]"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {
        "Ticket": f"#{ticket.number} (api)",
        "Reason": REASON,
        "Urgency": "not known yet",
        "Tags": "-",
        "ticket_id": "T-1001",
        "customer_tier": "enterprise",
        "channel": "email",
        "order_id": "42",
        "contact": "[EMAIL]",
        "items": '["sku-1","sku-2"]',
    }
    # The event's tier and channel routed it: the enterprise endpoint, not the free webhook.
    [to_http] = world.destinations.to(ENDPOINT)
    assert to_http.json()["data"]["ref"] == "T-1001"
    assert to_http.json()["data"]["source"] == "api"
    assert world.destinations.to(FANOUT_HOOK) == []
    assert await world.counts() == {"sent": 2}


async def test_an_api_tickets_webhook_post_uses_the_template(world: World) -> None:
    await world.configure(
        {
            "ops_webhook": world.url(OPS_HOOK),
            "embed": {"title": "$event.customer_tier: $event.subject",
                      "fields": {"Order": "#$event.order_id", "Missing": "$event.nope"}},
        }
    )  # fmt: skip
    created = keys.new_key(G, T0)
    payload = {"ticket_id": "T-7", "subject": "Refund", "customer_tier": "pro", "order_id": 9}
    event = IngressEventRow("evt_7", created.row.key_id, G, "support.ticket.created", payload,
                            "webhook", T0)  # fmt: skip
    await world.desk.store.run(
        lambda tx: [tx.insert_api_key(created.row), tx.insert_ingress_event(event)]
    )
    worker = world.worker()
    await world.desk.open_ticket(
        G, f"api:{created.row.key_id}", "Refund", T0, source="api", ref="T-7"
    )

    await worker.send_due()

    [seen] = world.destinations.seen
    embed = seen.json()["embeds"][0]
    assert embed["title"] == "Escalated: pro: Refund"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Order"] == "#9"
    assert fields["Missing"] == "-"
    assert "customer_tier" not in fields
