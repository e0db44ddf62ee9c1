"""The HTTP ingress over real HTTP (aiohttp server and client) on a real SQLite file.

Events become tickets in the background (the ingress's worker), so a test that looks for a
ticket first waits for the worker with ``Server.settled`` or ``eventually``: polling with a
deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.openai_server import FakeOpenAI
from tests.support import Harness, services_on
from thothbot import keys
from thothbot.application import Services
from thothbot.config import Config
from thothbot.core.classify import Classification, Source, TicketText
from thothbot.core.errors import DomainError, InvalidInput
from thothbot.core.ingress import IngressEventRow
from thothbot.core.settings import Classifier as ClassifierSettings
from thothbot.ingress import (
    EVENTS,
    Ingress,
    IngressSettings,
    RateLimiter,
    serve,
    start_ingress,
    worker,
)
from thothbot.llm import UrgencyClassifier
from thothbot.service import ApiTicket, Desk
from thothbot.service.retention import Pruned
from thothbot.store import Store, StoreFault
from thothbot.store.group_commit import GroupCommit
from thothbot.triage import Classifier, Triage

G = "guild-1"
NAME = "support.ticket.created"
EVENT: dict[str, Any] = {
    "ticket_id": "T-1001",
    "subject": "Checkout is broken",
    "body": "Every card is declined since this morning.",
    "customer_tier": "enterprise",
    "channel": "email",
}
ESCALATE_ON_OPEN = [
    {"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]},
]

T = TypeVar("T")


async def eventually(check: Callable[[], T], within: float = 5.0) -> T:
    """``check()`` once it is truthy: the worker turns events into tickets in the background."""
    value = check()
    try:
        async with asyncio.timeout(within):
            while not value:
                await asyncio.sleep(0.005)
                value = check()
    except TimeoutError:
        raise AssertionError(f"still {value!r} after {within:g} s") from None
    return value


class StubClassifier:
    """The process's edge in place of a model: a label per subject ("high" by default),
    answered at once, or for a subject in ``hold`` only once ``release`` lets it through."""

    def __init__(self, labels: dict[str, str] | None = None, hold: Iterable[str] = ()) -> None:
        self.labels = labels or {}
        self.started: list[str] = []
        self.held = {subject: asyncio.Event() for subject in hold}

    def release(self, *subjects: str) -> None:
        for subject in subjects:
            self.held[subject].set()

    async def classify(
        self, ticket: TicketText, settings: ClassifierSettings | None = None
    ) -> Classification:
        self.started.append(ticket.subject)
        gate = self.held.get(ticket.subject)
        if gate is not None:
            await gate.wait()
        return Classification(self.labels.get(ticket.subject, "high"), "stub", Source.LLM)


class Clock:
    """A monotonic clock the test moves by hand (for the token bucket)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Server:
    """An ingress listening on 127.0.0.1 on a free port, a client session and a key."""

    path: Path
    services: Services
    desk: Desk
    ingress: Ingress
    triage: Triage | None
    runner: web.AppRunner
    session: aiohttp.ClientSession
    api_key: str
    key_id: str
    secret: str
    clock: Clock
    now: list[datetime]

    async def post(
        self, path: str, data: bytes | str, headers: dict[str, str] | None = None
    ) -> Answer:
        # JSON unless a test says otherwise (aiohttp would send text/plain for a str).
        headers = {"Content-Type": "application/json", **(headers or {})}
        async with self.session.post(path, data=data, headers=headers) as response:
            text = await response.text()
            body = json.loads(text) if response.content_type == "application/json" else text
            return Answer(response.status, body, dict(response.headers))

    async def event(
        self,
        payload: Any = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        name: str = NAME,
    ) -> Answer:
        headers = {"Authorization": f"Bearer {key or self.api_key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        data = payload if isinstance(payload, str) else json.dumps(payload or EVENT)
        return await self.post(f"/v1/events/{name}", data, headers)

    async def webhook(
        self,
        data: Any = None,
        *,
        message_id: str = "msg_1",
        timestamp: int | None = None,
        signatures: list[str] | None = None,
        body: bytes | None = None,
    ) -> Answer:
        raw = (
            body
            or json.dumps(
                {"type": NAME, "timestamp": "2026-11-23T09:00:00Z", "data": data or EVENT}
            ).encode()
        )
        stamp = str(timestamp if timestamp is not None else int(self.now[0].timestamp()))
        signed = keys.signature(self.secret, message_id, stamp, raw)
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": stamp,
            "webhook-signature": " ".join(signatures or [signed]),
            "Content-Type": "application/json",
        }
        return await self.post(f"/v1/webhooks/{self.key_id}", raw, headers)

    async def prune(self) -> Pruned:
        """The retention loop's pass (``service/retention.py``), as of the test's clock."""
        return await self.services.pruner.prune(self.now[0])

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as conn:
            return conn.execute(sql, params).fetchall()

    def status(self, event_id: str) -> str:
        [(status,)] = self.rows("SELECT status FROM ingress_events WHERE event_id = ?", event_id)
        return str(status)

    async def settled(self) -> None:
        """Wait until the worker has processed every stored event."""
        await eventually(
            lambda: (
                self.rows("SELECT COUNT(*) FROM ingress_events WHERE status = 'pending'") == [(0,)]
            )
        )

    def labelled(self, source: str) -> int:
        """Labels the triage loop has recorded (counted once the label is saved)."""
        assert self.triage is not None
        return self.triage.classified[source]

    async def metrics(self) -> str:
        async with self.session.get("/metrics") as response:
            assert response.status == 200
            return await response.text()


@contextlib.asynccontextmanager
async def _serve(
    tmp_path: Path,
    settings: IngressSettings | None = None,
    *,
    classifier: Classifier | None = None,
    **options: Any,
) -> AsyncIterator[Server]:
    """The ingress on a free port; with a ``classifier``, the triage loop labels its tickets."""
    path = tmp_path / "thoth.db"
    harness = Harness(path)
    desk = await harness.start()
    services = harness.services
    created = keys.new_key(G, datetime.now(UTC))
    await services.keys.create(created.row)
    clock = Clock()
    now = [datetime.now(UTC)]
    triage = Triage(desk, classifier, retry_after=0.05) if classifier is not None else None
    ingress = Ingress(
        desk,
        services.intake,
        settings,
        classified=triage.classified if triage is not None else None,
        clock=clock,
        now=lambda: now[0],
        **options,
    )
    labelling = asyncio.create_task(triage.run()) if triage is not None else None
    runner = web.AppRunner(ingress.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    session = aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}")
    try:
        yield Server(
            path,
            services,
            desk,
            ingress,
            triage,
            runner,
            session,
            created.api_key,
            created.row.key_id,
            created.row.webhook_secret,
            clock,
            now,
        )
    finally:
        await session.close()
        await runner.cleanup()
        if labelling is not None:
            labelling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await labelling
        await services.store.close()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with _serve(tmp_path) as s:
        yield s


def tickets(server: Server) -> list[tuple[Any, ...]]:
    return server.rows(
        "SELECT guild_id, customer_id, subject, body, source, ref, escalated, urgency"
        " FROM tickets ORDER BY id"
    )


def fail_batches_with(
    monkeypatch: pytest.MonkeyPatch, desk: Desk, subject: str | None = None
) -> None:
    """A batch holding ``subject`` (any batch when None) fails whole, as the desk's unit does
    when one of its tickets fails (all or none); the worker then opens its events one at a
    time, through ``Desk.open_ticket`` (which the test replaces)."""
    real = desk.open_tickets

    async def batch(items: list[ApiTicket]) -> Any:
        if subject is None or any(item.subject == subject for item in items):
            raise RuntimeError("a ticket of the batch failed")
        return await real(items)

    monkeypatch.setattr(desk, "open_tickets", batch)


# Accepted events become tickets


async def test_an_event_is_stored_whole_and_becomes_a_ticket_that_rules_act_on(
    server: Server,
) -> None:
    saved = await server.desk.save_rules(G, json.dumps(ESCALATE_ON_OPEN))
    assert saved.saved

    answer = await server.event({**EVENT, "order_id": 42, "tags": ["checkout"]})

    assert answer.status == 202
    event_id = answer.body["event_id"]
    assert event_id.startswith("evt_")
    await server.settled()
    [(status, payload, ticket_id, via)] = server.rows(
        "SELECT status, payload, ticket_id, via FROM ingress_events WHERE event_id = ?", event_id
    )
    assert status == "done"
    assert via == "api"
    assert json.loads(payload) == {**EVENT, "order_id": 42, "tags": ["checkout"]}
    ticket = await server.desk.ticket(ticket_id)
    assert ticket.guild_id == G
    assert ticket.customer_id == f"api:{server.key_id}"
    assert (ticket.subject, ticket.body) == (EVENT["subject"], EVENT["body"])
    assert (ticket.source, ticket.ref) == ("api", "T-1001")
    assert ticket.escalated  # the ticket_opened rule ran when the worker opened it
    [firing] = await server.desk.firings(G)
    assert firing.rule_id == "page"


async def test_a_long_or_blank_subject_still_opens_a_ticket(server: Server) -> None:
    assert (await server.event({**EVENT, "subject": "x" * 500})).status == 202
    assert (await server.event({**EVENT, "subject": "   "})).status == 202
    await server.settled()
    [long, blank] = [(row[2], row[3]) for row in tickets(server)]
    assert len(long[0]) == 200
    assert long[0].endswith("…")
    # Nothing the sender wrote is lost: the whole subject opens the description.
    assert long[1] == "x" * 500 + "\n\n" + EVENT["body"]
    assert blank == ("(no subject)", EVENT["body"])


async def test_events_are_classified_by_the_model_and_urgency_rules_act_on_it(
    tmp_path: Path,
) -> None:
    fake = FakeOpenAI(label="high")
    await fake.start()
    classifier = UrgencyClassifier("fake-model", base_url=fake.base_url, api_key="k", timeout=2)
    try:
        async with _serve(tmp_path, classifier=classifier) as server:
            rules = [
                {"trigger": "ticket_opened", "urgency": "high", "actions": [{"type": "escalate"}]}
            ]
            assert (await server.desk.save_rules(G, json.dumps(rules))).saved
            contact = "Reach me at jane.doe@example.com or +44 20 7946 0958."
            assert (await server.event({**EVENT, "body": contact})).status == 202
            await server.settled()
            # The ticket opens at once; the triage loop's label comes after, and the rule then.
            await eventually(lambda: [(row[6], row[7]) for row in tickets(server)] == [(1, "high")])
            assert server.triage is not None
            await eventually(lambda: server.labelled("llm") == 1)
            assert server.labelled("cache") == server.labelled("heuristic") == 0
            sent = json.dumps(fake.requests[0])
            assert "jane.doe@example.com" not in sent
            assert "7946" not in sent
    finally:
        await classifier.close()
        await fake.stop()


async def test_without_a_model_the_heuristic_decides_and_says_so(tmp_path: Path) -> None:
    async with _serve(tmp_path, classifier=UrgencyClassifier(None)) as server:
        outage = {**EVENT, "subject": "Site down", "body": "Checkout returns 500 for everyone"}
        assert (await server.event(outage)).status == 202
        await eventually(lambda: [row[7] for row in tickets(server)] == ["critical"])
        await eventually(lambda: server.labelled("heuristic") == 1)
        assert 'thothbot_ingress_classifications_total{source="heuristic"} 1' in (
            await server.metrics()
        )


# Refusals


async def test_a_missing_malformed_or_wrong_key_gets_401(server: Server) -> None:
    no_key = await server.post(f"/v1/events/{NAME}", json.dumps(EVENT))
    wrong_secret = f"thk_{server.key_id}_{'A' * 43}"
    answers = [
        no_key,
        await server.event(key="not-a-key"),
        await server.event(key=wrong_secret),
        await server.event(key="thk_0000000000000000_abc"),
        await server.post(f"/v1/events/{NAME}", "{}", {"Authorization": f"Basic {server.api_key}"}),
    ]
    assert [a.status for a in answers] == [401] * 5
    assert all(a.headers["WWW-Authenticate"] == "Bearer" for a in answers)
    assert "Authorization: Bearer" in no_key.body["error"]
    assert answers[2].body["error"] == "This API key is not valid."
    assert tickets(server) == []
    assert server.ingress.metrics.rejected["unauthorized"] == 5


async def test_a_revoked_key_gets_401_on_both_endpoints(server: Server) -> None:
    assert (await server.event()).status == 202
    await server.services.keys.revoke(server.key_id, datetime.now(UTC))

    answer = await server.event({**EVENT, "ticket_id": "T-2"})
    webhook = await server.webhook()

    assert answer.status == 401
    assert answer.body["error"] == "This API key has been revoked."
    assert webhook.status == 401
    await server.settled()
    assert len(tickets(server)) == 1


async def test_a_body_that_is_not_json_gets_400(server: Server) -> None:
    for raw in ("{not json", '{"subject": NaN}', "\xff"):
        answer = await server.event(raw)
        assert answer.status == 400, raw
        assert answer.body["error"].startswith("The body is not valid JSON")
    assert tickets(server) == []


async def test_schema_errors_get_422_with_field_paths(server: Server) -> None:
    bad = {**EVENT, "customer_tier": "gold", "ticket_id": 7}
    del bad["subject"]

    answer = await server.event(bad)

    assert answer.status == 422
    paths = {p["path"] for p in answer.body["problems"]}
    assert paths == {"customer_tier", "ticket_id", "subject"}
    assert "customer_tier: Input should be 'free', 'pro' or 'enterprise'" in answer.body["error"]
    array = await server.event("[1, 2]")
    assert array.status == 422
    assert array.body["error"] == "The body must be: a JSON object."
    assert tickets(server) == []


async def test_an_unknown_event_gets_404_naming_the_known_ones(server: Server) -> None:
    answer = await server.event(name="payment.failed")
    assert answer.status == 404
    assert answer.body["known_events"] == sorted(EVENTS)
    assert "support.ticket.created" in answer.body["error"]
    webhook = await server.webhook(body=json.dumps({"type": "nope", "data": {}}).encode())
    assert webhook.status == 404


async def test_a_body_over_256_kib_gets_413(server: Server) -> None:
    padding = 256 * 1024 - len(json.dumps({**EVENT, "pad": ""}))
    exactly = json.dumps({**EVENT, "pad": "x" * padding})
    assert len(exactly) == 256 * 1024
    assert (await server.event(exactly)).status == 202

    over = await server.event(json.dumps({**EVENT, "pad": "x" * (padding + 1)}))
    assert over.status == 413
    assert "256 KiB" in over.body["error"]

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit applies while reading.
        yield b'{"pad": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'"}'

    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    async with server.session.post(f"/v1/events/{NAME}", data=chunks(), headers=headers) as r:
        assert r.status == 413
        assert "256 KiB" in (await r.json())["error"]
    await server.settled()
    assert len(tickets(server)) == 1


async def test_a_key_over_its_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    async with _serve(tmp_path, IngressSettings(rate=0.5, burst=2)) as server:
        assert [(await server.event()).status for _ in range(2)] == [202, 202]
        limited = await server.event()
        assert limited.status == 429
        assert limited.headers["Retry-After"] == "2"  # one token takes 2 s at 0.5/s
        assert "Too many requests" in limited.body["error"]
        server.clock.now += 2
        assert (await server.event()).status == 202
        assert server.ingress.metrics.rejected["rate_limited"] == 1


def test_the_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.1)
    assert limiter.take("other") == 0.0  # buckets are per key
    clock.now += 0.25
    assert limiter.take("k") == 0.0
    assert limiter.take("k") == 0.0
    assert limiter.take("k") > 0
    clock.now += 100
    assert [limiter.take("k") for _ in range(4)][-1] > 0  # never more than the burst


# Idempotency


async def test_a_repeated_idempotency_key_replays_the_first_answer_once_processed(
    server: Server,
) -> None:
    first = await server.event(idempotency_key="order-1")
    again = await server.event(idempotency_key="order-1")
    other = await server.event({**EVENT, "subject": "Changed"}, idempotency_key="order-1")

    assert first.status == again.status == 202
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert other.status == 422
    assert "already used for a different request" in other.body["error"]
    await server.settled()
    assert len(tickets(server)) == 1
    assert server.rows("SELECT COUNT(*) FROM ingress_events") == [(1,)]
    # The same key on another endpoint name is another request.
    assert (await server.event(idempotency_key="order-1", name="nope")).status == 404
    assert server.ingress.metrics.replayed == 1


async def test_idempotency_keys_are_checked_and_forgotten_after_72_hours(server: Server) -> None:
    assert (await server.event(idempotency_key="x" * 256)).status == 400
    assert (await server.event(idempotency_key="k")).status == 202
    server.now[0] += timedelta(hours=71)
    assert (await server.prune()).idempotency_records == 0
    assert (await server.event(idempotency_key="k")).headers.get("Idempotent-Replayed")
    server.now[0] += timedelta(hours=2)
    assert (await server.prune()).idempotency_records == 1
    assert server.rows("SELECT COUNT(*) FROM idempotency_records") == [(0,)]
    fresh = await server.event(idempotency_key="k")
    assert fresh.status == 202
    assert "Idempotent-Replayed" not in fresh.headers
    await server.settled()
    assert len(tickets(server)) == 2


async def test_an_expired_idempotency_record_not_purged_yet_gives_way(server: Server) -> None:
    first = await server.event(idempotency_key="k")
    server.now[0] += timedelta(hours=73)  # expired, but the purge has not run

    fresh = await server.event({**EVENT, "subject": "Another"}, idempotency_key="k")
    again = await server.event({**EVENT, "subject": "Another"}, idempotency_key="k")

    assert fresh.status == 202
    assert "Idempotent-Replayed" not in fresh.headers
    assert fresh.body != first.body
    assert again.body == fresh.body  # the new record is the one a repeat gets
    assert again.headers["Idempotent-Replayed"] == "true"
    assert server.rows("SELECT COUNT(*) FROM idempotency_records") == [(1,)]
    await server.settled()
    assert len(tickets(server)) == 2


async def test_event_ids_sort_in_order_of_arrival(server: Server) -> None:
    answers = [await server.event({**EVENT, "ticket_id": f"T-{n}"}) for n in range(5)]
    ids = [answer.body["event_id"] for answer in answers]

    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    stored = server.rows("SELECT event_id FROM ingress_events ORDER BY received_at")
    assert [row[0] for row in stored] == ids


# Standard Webhooks


async def test_a_signed_webhook_becomes_a_ticket_and_a_redelivery_is_processed_once(
    server: Server,
) -> None:
    first = await server.webhook(message_id="msg_a")
    server.now[0] += timedelta(hours=5)  # a redelivery hours later carries a fresh timestamp
    again = await server.webhook(message_id="msg_a")
    changed = await server.webhook({**EVENT, "subject": "Other"}, message_id="msg_a")

    assert first.status == again.status == 202
    assert again.body == first.body
    assert changed.status == 422
    await server.settled()
    assert server.rows("SELECT via, status FROM ingress_events") == [("webhook", "done")]
    assert len(tickets(server)) == 1


async def test_any_one_valid_signature_passes_during_rotation(server: Server) -> None:
    stamp = int(server.now[0].timestamp())
    raw = json.dumps({"type": NAME, "data": EVENT}).encode()
    old_secret = keys.new_key(G, server.now[0]).row.webhook_secret
    stale = keys.signature(old_secret, "msg_r", str(stamp), raw)
    valid = keys.signature(server.secret, "msg_r", str(stamp), raw)

    answer = await server.webhook(
        message_id="msg_r", timestamp=stamp, body=raw, signatures=[stale, "v2,abc", valid]
    )
    only_stale = await server.webhook(
        message_id="msg_s", timestamp=stamp, body=raw, signatures=[stale]
    )

    assert answer.status == 202
    assert only_stale.status == 401


async def test_stale_or_future_timestamps_get_401(server: Server) -> None:
    now = int(server.now[0].timestamp())
    for stamp in (now - 301, now + 301):
        answer = await server.webhook(timestamp=stamp)
        assert answer.status == 401
        assert "within 5 minutes" in answer.body["error"]
    assert (await server.webhook(timestamp=now - 299)).status == 202
    assert server.ingress.metrics.rejected["stale_timestamp"] == 2


async def test_a_tampered_body_or_unsigned_delivery_gets_401(server: Server) -> None:
    stamp = str(int(server.now[0].timestamp()))
    raw = json.dumps({"type": NAME, "data": EVENT}).encode()
    signed = keys.signature(server.secret, "msg_t", stamp, raw)
    tampered = raw.replace(b"enterprise", b"free")
    headers = {"webhook-id": "msg_t", "webhook-timestamp": stamp, "webhook-signature": signed}

    answer = await server.post(f"/v1/webhooks/{server.key_id}", tampered, headers)
    other_id = await server.post(
        f"/v1/webhooks/{server.key_id}", raw, {**headers, "webhook-id": "msg_u"}
    )
    unsigned = await server.post(f"/v1/webhooks/{server.key_id}", raw, {"webhook-id": "m"})
    unknown = await server.post("/v1/webhooks/0000000000000000", raw, headers)

    assert [answer.status, other_id.status, unsigned.status, unknown.status] == [401] * 4
    assert "No webhook-signature matches" in answer.body["error"]
    assert tickets(server) == []


async def test_a_webhook_envelope_without_type_or_data_gets_422(server: Server) -> None:
    answer = await server.webhook(body=json.dumps({"data": []}).encode())
    assert answer.status == 422
    assert [p["path"] for p in answer.body["problems"]] == ["type", "data"]
    bad = await server.webhook({**EVENT, "channel": "fax"})
    assert bad.status == 422
    assert [p["path"] for p in bad.body["problems"]] == ["data.channel"]


async def test_stored_events_of_closed_tickets_are_forgotten_after_30_days(
    server: Server,
) -> None:
    first = await server.event(idempotency_key="one")
    second = await server.event({**EVENT, "ticket_id": "T-1002"}, idempotency_key="two")
    assert (first.status, second.status) == (202, 202)
    await server.settled()
    closed = server.rows("SELECT ticket_id FROM ingress_events ORDER BY received_at")[0][0]
    await server.desk.close(closed, f"api:{server.key_id}", server.now[0])

    server.now[0] += timedelta(days=29)
    await server.prune()
    assert server.rows("SELECT COUNT(*) FROM ingress_events") == [(2,)]
    server.now[0] += timedelta(days=2)
    await server.prune()
    # The open ticket keeps its event: its #ops post may still show the payload.
    assert server.rows("SELECT ticket_id FROM ingress_events") == [(closed + 1,)]


# The worker: in the background, in order, across restarts and failures


async def test_the_ticket_opens_at_once_and_takes_the_models_label_when_it_answers(
    tmp_path: Path,
) -> None:
    fake = FakeOpenAI(label="critical")
    fake.answering.clear()  # the model answers only when the test says so
    await fake.start()
    classifier = UrgencyClassifier("fake-model", base_url=fake.base_url, api_key="k", timeout=5)
    try:
        async with _serve(tmp_path, classifier=classifier) as server:
            rules = [
                {"id": "tag", "trigger": "ticket_opened",
                 "actions": [{"type": "add_tag", "tag": "api"}]},
                {"id": "page", "trigger": "ticket_opened", "urgency": "critical",
                 "actions": [{"type": "escalate"}]},
            ]  # fmt: skip
            assert (await server.desk.save_rules(G, json.dumps(rules))).saved
            answer = await asyncio.wait_for(server.event(), timeout=5)
            assert answer.status == 202

            await server.settled()
            await eventually(lambda: fake.in_flight == 1)  # the model is asked, and silent
            # Opened with what is known: the rule without an urgency condition ran already.
            assert server.status(answer.body["event_id"]) == "done"
            [(ref, escalated, urgency)] = [(row[5], row[6], row[7]) for row in tickets(server)]
            assert (ref, escalated, urgency) == ("T-1001", 0, None)
            assert server.rows("SELECT tags FROM tickets") == [('["api"]',)]
            text = await server.metrics()
            assert "# TYPE thothbot_ingress_events_pending gauge" in text
            assert "thothbot_ingress_events_pending 0" in text
            assert "thothbot_ingress_tickets_opened_total 1" in text
            assert 'thothbot_ingress_classifications_total{source="llm"} 0' in text

            fake.answering.set()
            await eventually(lambda: [row[7] for row in tickets(server)] == ["critical"])
            await eventually(lambda: [row[6] for row in tickets(server)] == [1])
            rules_run = [f.rule_id for f in await server.desk.firings(G)]
            assert rules_run == ["page", "tag"]  # newest first: each rule ran once
            await eventually(lambda: server.labelled("llm") == 1)
            text = await server.metrics()
            assert 'thothbot_ingress_classifications_total{source="llm"} 1' in text
            assert "# TYPE thothbot_deliveries gauge" in text
            assert 'thothbot_deliveries{status="pending"} 0' in text
            assert "thothbot_sla_breaches_total 0" in text
    finally:
        await classifier.close()
        await fake.stop()


def _event(n: int, key_id: str, guild_id: str = G, **fields: Any) -> IngressEventRow:
    received = datetime(2026, 11, 23, 9, 0, tzinfo=UTC) + timedelta(seconds=n)
    payload = {**EVENT, "ticket_id": f"T-{n}", "subject": f"Event {n}", **fields}
    return IngressEventRow(f"evt_{n:04d}", key_id, guild_id, NAME, payload, "api", received)


async def _leave_pending(path: Path, *rows: IngressEventRow) -> None:
    """Events stored by a process that stopped before turning them into tickets."""
    store = await Store.open(path)
    try:
        await store.run(lambda tx: [tx.insert_ingress_event(row) for row in rows])
    finally:
        await store.close()


async def _new_key(path: Path, guild_id: str = G) -> str:
    created = keys.new_key(guild_id, datetime.now(UTC))
    async with services_on(path) as services:
        await services.keys.create(created.row)
    return created.row.key_id


async def test_each_servers_events_become_tickets_in_order_of_arrival(tmp_path: Path) -> None:
    key = await _new_key(tmp_path / "thoth.db")
    other_key = await _new_key(tmp_path / "thoth.db", "guild-2")
    ours = [_event(n, key) for n in range(1, 4)]
    theirs = _event(4, other_key, "guild-2")
    await _leave_pending(tmp_path / "thoth.db", *ours, theirs)
    # No classification answers until the tickets are open: none holds an opening up.
    held = [row.payload["subject"] for row in [*ours, theirs]]
    classifier = StubClassifier({"Event 1": "low"}, hold=held)
    async with _serve(tmp_path, classifier=classifier) as server:
        await server.settled()
        opened = server.rows(
            "SELECT ref, number, urgency FROM tickets WHERE guild_id = ? ORDER BY id", G
        )
        assert opened == [("T-1", 1, None), ("T-2", 2, None), ("T-3", 3, None)]
        assert server.rows("SELECT ref FROM tickets WHERE guild_id = ?", "guild-2") == [("T-4",)]
        await eventually(lambda: len(classifier.started) == 4)  # classified concurrently
        classifier.release("Event 3", "Event 2", "Event 4", "Event 1")
        labelled = "SELECT ref, urgency FROM tickets ORDER BY ref"
        await eventually(
            lambda: (
                server.rows(labelled)
                == [("T-1", "low"), ("T-2", "high"), ("T-3", "high"), ("T-4", "high")]
            )
        )


async def test_an_event_the_desk_refuses_is_marked_failed_and_later_ones_go_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _serve(tmp_path) as server:
        open_ticket = server.desk.open_ticket

        async def refusing(guild_id: str, customer_id: str, subject: str, *a: Any, **k: Any) -> Any:
            if subject == "Odd":
                raise DomainError("This server takes no odd tickets.")
            return await open_ticket(guild_id, customer_id, subject, *a, **k)

        monkeypatch.setattr(server.desk, "open_ticket", refusing)
        fail_batches_with(monkeypatch, server.desk, "Odd")
        refused = await server.event({**EVENT, "subject": "Odd", "ticket_id": "T-1"})
        later = await server.event({**EVENT, "ticket_id": "T-2"})
        assert refused.status == later.status == 202
        await server.settled()

        [(status, ticket_id, error)] = server.rows(
            "SELECT status, ticket_id, error FROM ingress_events WHERE event_id = ?",
            refused.body["event_id"],
        )
        assert (status, ticket_id, error) == ("failed", None, "This server takes no odd tickets.")
        assert server.status(later.body["event_id"]) == "done"
        assert [row[5] for row in tickets(server)] == ["T-2"]
        text = await server.metrics()
        assert "thothbot_ingress_events_failed_total 1" in text
        assert "thothbot_ingress_tickets_opened_total 1" in text


async def test_a_label_the_server_does_not_have_leaves_the_decision_to_the_heuristic(
    tmp_path: Path,
) -> None:
    classifier = StubClassifier({"Odd": "apocalyptic", "Site down": "apocalyptic"})
    async with _serve(tmp_path, classifier=classifier) as server:
        calm = await server.event(
            {**EVENT, "subject": "Odd", "body": "A question", "ticket_id": "T-1"}
        )
        down = await server.event({**EVENT, "subject": "Site down", "ticket_id": "T-2"})
        assert calm.status == down.status == 202
        await server.settled()
        labelled = "SELECT ref, urgency FROM tickets ORDER BY id"
        # Both opened; each then labelled by the keywords.
        await eventually(lambda: server.rows(labelled) == [("T-1", "low"), ("T-2", "critical")])
        await eventually(lambda: server.labelled("heuristic") == 2)
        assert 'thothbot_ingress_classifications_total{source="heuristic"} 2' in (
            await server.metrics()
        )


async def test_a_stored_event_that_cannot_become_a_ticket_is_failed_not_retried(
    tmp_path: Path,
) -> None:
    key = await _new_key(tmp_path / "thoth.db")
    broken = _event(1, key, customer_tier="gold")
    unknown = IngressEventRow("evt_0002", key, G, "payment.failed", {}, "api", broken.received_at)
    await _leave_pending(tmp_path / "thoth.db", broken, unknown, _event(3, key))
    async with _serve(tmp_path) as server:
        await server.settled()
        assert server.rows("SELECT event_id, status, error FROM ingress_events ORDER BY 1") == [
            (
                "evt_0001",
                "failed",
                "the stored event does not match support.ticket.created: customer_tier:"
                " Input should be 'free', 'pro' or 'enterprise'",
            ),
            ("evt_0002", "failed", "unknown event 'payment.failed'"),
            ("evt_0003", "done", None),
        ]


async def test_events_left_pending_by_a_crash_are_processed_on_start_exactly_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "thoth.db"
    harness = Harness(path)
    desk = await harness.start()
    await desk.save_rules(G, json.dumps(ESCALATE_ON_OPEN))
    created = keys.new_key(G, datetime.now(UTC))
    await harness.services.keys.create(created.row)
    received = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def pending(event_id: str, ticket_id: str) -> IngressEventRow:
        payload = {**EVENT, "ticket_id": ticket_id}
        return IngressEventRow(event_id, created.row.key_id, G, NAME, payload, "api", received)

    # A crash after the event was committed, before its ticket was opened ...
    lost, half = pending("evt_lost", "T-1"), pending("evt_half", "T-2")
    # ... and one after the ticket was opened, before the event was marked done.
    await _leave_pending(path, lost, half)
    await desk.open_ticket(
        G, f"api:{created.row.key_id}", "Opened before the crash", received, source="api", ref="T-2"
    )

    config = Config.from_env({"THOTH_DB_PATH": str(path), "THOTH_INGRESS_PORT": "0"})
    try:
        for _ in range(2):  # the restart, and one more that finds nothing left to do
            desk = await harness.restart()
            runner = await start_ingress(desk, harness.services.intake, config)
            await eventually(lambda: _pending(path) == 0)
            await runner.cleanup()
            rows = _outcomes(path, "evt_lost", "evt_half")
            assert [status for status, _ in rows] == ["done", "done"]
            opened = [await desk.ticket(ticket_id) for _, ticket_id in rows if ticket_id]
            assert [(t.ref, t.escalated) for t in opened] == [("T-1", True), ("T-2", True)]
            assert opened[1].subject == "Opened before the crash"  # found again, not opened twice
            with sqlite3.connect(path) as conn:
                assert conn.execute("SELECT COUNT(*) FROM tickets").fetchone() == (2,)
    finally:
        await harness.close()


def _outcomes(path: Path, *event_ids: str) -> list[tuple[str, int | None]]:
    """Each event's status and the ticket it opened, in the order asked."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        found = {
            event_id: (status, ticket_id)
            for event_id, status, ticket_id in conn.execute(
                "SELECT event_id, status, ticket_id FROM ingress_events"
            )
        }
    return [found[event_id] for event_id in event_ids]


def _pending(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM ingress_events WHERE status = 'pending'"
        ).fetchone()
        return int(count)


async def test_an_event_pending_at_shutdown_becomes_a_ticket_after_the_restart_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "STOP_GRACE", 0.1)  # the stop does not wait for the desk
    async with _serve(tmp_path) as server:
        opening = asyncio.Event()

        async def unanswered(*args: Any, **kwargs: Any) -> Any:
            opening.set()
            await asyncio.Event().wait()  # the desk does not answer before the stop

        monkeypatch.setattr(server.desk, "open_ticket", unanswered)
        monkeypatch.setattr(server.desk, "open_tickets", unanswered)
        answer = await server.event()
        await asyncio.wait_for(opening.wait(), timeout=5)
    # Stopped while its ticket was being opened: nothing was opened, the event waits.
    assert _pending(tmp_path / "thoth.db") == 1
    for _ in range(2):  # the restart, and one more
        async with _serve(tmp_path) as server:
            await server.settled()
            assert server.status(answer.body["event_id"]) == "done"
            assert [row[5] for row in tickets(server)] == ["T-1001"]


async def test_an_event_the_desk_cannot_take_now_stays_pending_and_is_retried_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _serve(tmp_path, IngressSettings(retry_after=0.05)) as server:
        tries: list[float] = []

        async def unavailable(*args: Any, **kwargs: Any) -> Any:
            tries.append(asyncio.get_running_loop().time())
            raise StoreFault("the database at thoth.db: database is locked")

        monkeypatch.setattr(server.desk, "open_ticket", unavailable)
        fail_batches_with(monkeypatch, server.desk)
        answer = await server.event()
        assert answer.status == 202  # stored: the answer does not depend on the ticket
        await eventually(lambda: len(tries) >= 3)
        assert server.status(answer.body["event_id"]) == "pending"
        # Tried again after a pause, not in a loop.
        assert all(b - a >= 0.04 for a, b in itertools.pairwise(tries))
        monkeypatch.undo()
        await server.settled()
        assert server.status(answer.body["event_id"]) == "done"
        assert len(tickets(server)) == 1


async def test_an_event_that_keeps_failing_unexpectedly_is_failed_and_the_worker_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _serve(tmp_path, IngressSettings(retry_after=0.01)) as server:
        open_ticket = server.desk.open_ticket

        async def flaky(guild_id: str, customer_id: str, subject: str, *a: Any, **k: Any) -> Any:
            if subject == "Poison":
                raise RuntimeError("a bug")
            return await open_ticket(guild_id, customer_id, subject, *a, **k)

        monkeypatch.setattr(server.desk, "open_ticket", flaky)
        fail_batches_with(monkeypatch, server.desk, "Poison")
        poison = await server.event({**EVENT, "subject": "Poison", "ticket_id": "T-1"})
        fine = await server.event({**EVENT, "ticket_id": "T-2"})
        await server.settled()

        [(status, error)] = server.rows(
            "SELECT status, error FROM ingress_events WHERE event_id = ?", poison.body["event_id"]
        )
        assert status == "failed"
        assert error == "failed 3 times: RuntimeError('a bug')"
        assert server.status(fine.body["event_id"]) == "done"
        assert [row[5] for row in tickets(server)] == ["T-2"]


# Health, metrics, configuration


async def test_healthz_and_metrics(server: Server) -> None:
    await server.event()
    await server.event(key="nope")
    await server.settled()
    async with server.session.get("/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
    async with server.session.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    assert 'thothbot_ingress_events_accepted_total{event="support.ticket.created"} 1' in text
    assert 'thothbot_ingress_events_rejected_total{reason="unauthorized"} 1' in text
    assert 'thothbot_ingress_events_rejected_total{reason="too_large"} 0' in text
    assert "thothbot_ingress_tickets_opened_total 1" in text
    assert "# TYPE thothbot_ingress_tickets_opened_total counter" in text
    assert "# TYPE thothbot_ingress_events_pending gauge" in text
    assert "thothbot_ingress_events_pending 0" in text


async def test_unknown_paths_and_methods_answer_in_json(server: Server) -> None:
    async with server.session.get("/nowhere") as response:
        assert response.status == 404
        assert (await response.json())["error"] == "Not Found."
    async with server.session.get(f"/v1/events/{NAME}") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"


def test_ingress_configuration_from_the_environment() -> None:
    default = Config.from_env({})
    assert (default.ingress_host, default.ingress_port) == ("127.0.0.1", 8080)
    assert (default.ingress_rate, default.ingress_burst) == (50.0, 100)
    config = Config.from_env(
        {
            "THOTH_INGRESS_HOST": "0.0.0.0",
            "THOTH_INGRESS_PORT": " 9000 ",
            "THOTH_INGRESS_RATE": "2.5",
            "THOTH_INGRESS_BURST": "5",
        }
    )
    assert (config.ingress_host, config.ingress_port) == ("0.0.0.0", 9000)
    assert IngressSettings.from_config(config) == IngressSettings(rate=2.5, burst=5)
    for name, raw in [
        ("THOTH_INGRESS_PORT", "http"),
        ("THOTH_INGRESS_PORT", "70000"),
        ("THOTH_INGRESS_PORT", "-1"),
        ("THOTH_INGRESS_RATE", "0"),
        ("THOTH_INGRESS_RATE", "nan"),
        ("THOTH_INGRESS_BURST", "1.5"),
    ]:
        with pytest.raises(InvalidInput, match=f"{name} must be .* not '{raw}'"):
            Config.from_env({name: raw})


async def test_serve_runs_the_ingress_alone_until_cancelled(tmp_path: Path) -> None:
    config = Config.from_env(
        {"THOTH_DB_PATH": str(tmp_path / "thoth.db"), "THOTH_INGRESS_PORT": "0"}
    )
    out = io.StringIO()
    task = asyncio.create_task(serve(config, out))
    for _ in range(200):
        if out.getvalue() or task.done():
            break
        await asyncio.sleep(0.005)
    line = out.getvalue()
    assert line.startswith("thothbot ingress listening on http://127.0.0.1:")
    url = line.split(" on ")[1].split()[0]
    async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as response:
        assert response.status == 200
    task.cancel()  # what Ctrl-C does to asyncio.run's task
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_group_commit_shares_transactions_and_fails_only_the_failing_unit(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "thoth.db")
    commits = GroupCommit(store)
    transactions: list[int] = []

    def good(n: int) -> Callable[[Any], int]:
        def unit(tx: Any) -> int:
            transactions.append(id(tx))
            tx.set_duty(G, f"S{n}", True)
            return n

        return unit

    def bad(tx: Any) -> int:
        tx.set_duty(G, "BAD", True)
        raise RuntimeError("boom")

    try:
        results = await asyncio.gather(
            *(commits.run(good(n)) for n in range(5)), commits.run(bad), return_exceptions=True
        )
        assert results[:5] == [0, 1, 2, 3, 4]
        assert isinstance(results[5], RuntimeError)
        assert len(set(transactions[:5])) < 5  # shared at least one transaction
        state = await store.run(lambda tx: tx.routing_state(G, None))
        on_duty = await store.run(
            lambda tx: [r[0] for r in tx._all("SELECT user_id FROM duty ORDER BY user_id")]
        )
        assert state.off_duty == set()
        assert on_duty == ["S0", "S1", "S2", "S3", "S4"]  # BAD's write was rolled back
    finally:
        await store.close()


async def test_a_failure_on_our_side_is_a_json_500_and_stores_nothing(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> Any:
        raise StoreFault("the database at thoth.db: disk I/O error")

    monkeypatch.setattr(server.ingress.intake, "accept", broken)
    answer = await server.event()
    assert answer.status == 500
    assert "nothing was stored" in answer.body["error"]
    assert server.rows("SELECT COUNT(*) FROM ingress_events") == [(0,)]
