"""The ingress's bounds over real sockets: deadlines for request heads and bodies (slow senders),
failed authentications throttled per client address, and JSON bodies only.

Deadlines are set to about a second so that the tests need not wait long; every wait has an
upper bound (``asyncio.timeout``) so that a missing deadline fails the test instead of hanging
it. Nothing asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from tests.test_ingress import EVENT, NAME, Server, _serve
from thothbot import keys
from thothbot.application import build
from thothbot.config import Config
from thothbot.core.errors import InvalidInput
from thothbot.ingress import FailureThrottle, IngressSettings, client_address

G = "guild-1"
DEADLINE = 1.0  # seconds, for the head and for the body
GUARD = 15.0  # seconds after which a connection still open means there is no deadline


@dataclass
class Live:
    """The ingress as ``thothbot ingress`` starts it (``build``, ``listen_ingress``), with short
    deadlines."""

    port: int
    api_key: str
    path: Path

    def head(self, content_length: int, *, auth: bool = True) -> bytes:
        lines = [
            f"POST /v1/events/{NAME} HTTP/1.1",
            "Host: 127.0.0.1",
            "Content-Type: application/json",
            f"Content-Length: {content_length}",
        ]
        if auth:
            lines.append(f"Authorization: Bearer {self.api_key}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def stored(self) -> int:
        with sqlite3.connect(self.path) as conn:
            [(count,)] = conn.execute("SELECT COUNT(*) FROM ingress_events").fetchall()
        return int(count)


@contextlib.asynccontextmanager
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    path = tmp_path / "thoth.db"
    config = Config(
        db_path=str(path),
        ingress_port=0,
        ingress_head_timeout=DEADLINE,
        ingress_body_timeout=DEADLINE,
    )
    created = keys.new_key(G, datetime.now(UTC))
    async with build(config) as app:
        await app.services.keys.create(created.row)
        runner = await app.listen_ingress()
        yield Live(runner.addresses[0][1], created.api_key, path)


async def closed_by_server(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trickle: bytes
) -> bytes:
    """Send ``trickle`` a byte at a time (5 a second) until the server closes the connection;
    what it answered before closing. Fails if the connection outlives ``GUARD``."""
    answer = b""
    try:
        async with asyncio.timeout(GUARD):
            for byte in trickle:
                writer.write(bytes([byte]))
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        chunk = await reader.read(4096)
                        if not chunk:
                            return answer
                        answer += chunk
            # Everything was sent and the server still listens: wait for it to hang up.
            while chunk := await reader.read(4096):
                answer += chunk
            return answer
    except TimeoutError:
        raise AssertionError(f"the connection is still open after {GUARD:g} s") from None
    except ConnectionError:
        return answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def post_whole(port: int, request: bytes) -> bytes:
    """A well-behaved client: the whole request at once, and its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(GUARD):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with _serve(tmp_path) as s:
        yield s


# Deadlines


async def test_slow_request_heads_are_closed_while_a_prompt_client_is_served(
    tmp_path: Path,
) -> None:
    async with live(tmp_path) as server:
        body = json.dumps(EVENT).encode()
        # A head that would take 60 s to send at 5 bytes a second: never finished in time.
        endless = server.head(len(body)).removesuffix(b"\r\n\r\n") + b"\r\nX-Pad: " + b"a" * 300
        connections = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(60)]
        slow = [
            asyncio.create_task(closed_by_server(reader, writer, endless))
            for reader, writer in connections
        ]
        # An idle connection (nothing sent at all) is closed too.
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
        idle = asyncio.create_task(closed_by_server(idle_reader, idle_writer, b""))

        # Meanwhile a client that sends its request at once is answered.
        answer = await post_whole(server.port, server.head(len(body)) + body)
        assert answer.startswith(b"HTTP/1.1 202")

        answers = await asyncio.gather(*slow, idle)
        # Closed without an answer: the handler never ran for a head that never completed.
        assert answers == [b""] * 61
        assert server.stored() == 1


async def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408_and_nothing_stored(
    tmp_path: Path,
) -> None:
    async with live(tmp_path) as server:
        body = json.dumps(EVENT).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(server.head(len(body)))
        answer = await closed_by_server(reader, writer, body)
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert b"Connection: close" in rest
        assert b"did not arrive within 1 s" in rest
        assert server.stored() == 0

        # The positive control: the same request sent promptly is stored.
        prompt = await post_whole(server.port, server.head(len(body)) + body)
        assert prompt.startswith(b"HTTP/1.1 202")
        assert server.stored() == 1


# Failed authentications


async def test_failed_authentications_from_one_address_are_throttled_not_its_good_requests(
    tmp_path: Path,
) -> None:
    async with _serve(tmp_path, IngressSettings(auth_failures=3, auth_window=60)) as server:
        bad = [await server.event(key="thk_nope") for _ in range(3)]
        assert [answer.status for answer in bad] == [401] * 3

        throttled = await server.event(key="thk_nope")
        assert throttled.status == 429
        assert throttled.headers["Retry-After"] == "60"
        assert "Too many failed authentications" in throttled.body["error"]
        # A bad webhook signature is a failed authentication too.
        assert (await server.webhook(signatures=["v1,bm9wZQ=="])).status == 429
        # The same address with the right key is not held back.
        assert (await server.event()).status == 202
        assert (await server.webhook()).status == 202

        # Once the window has passed, a failure is answered 401 again.
        server.clock.now += 61
        assert (await server.event(key="thk_nope")).status == 401
        assert server.ingress.metrics.rejected["auth_throttled"] == 2
        assert server.ingress.metrics.rejected["unauthorized"] == 4


def test_the_throttle_keeps_a_sliding_window_and_a_bounded_table() -> None:
    now = [0.0]
    throttle = FailureThrottle(limit=2, window=10, clock=lambda: now[0], capacity=100)
    assert [throttle.fail("a"), throttle.fail("a")] == [0.0, 0.0]
    now[0] = 4
    assert throttle.fail("a") == 6  # the first failure leaves the window at 10
    assert throttle.fail("b") == 0.0  # per address
    now[0] = 25
    assert throttle.fail("a") == 0.0  # all of a's failures are older than the window

    for n in range(1000):
        throttle.fail(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle) == 100
    # The most recently failing addresses are the ones kept.
    now[0] = 26
    assert throttle.fail("10.0.3.231") == 0.0
    assert throttle.fail("10.0.3.231") > 0


def test_an_ipv6_client_is_counted_by_its_64_block() -> None:
    assert client_address("2001:db8:1:2::1") == client_address("2001:db8:1:2:ffff::9")
    assert client_address("2001:db8:1:3::1") != client_address("2001:db8:1:2::1")
    assert client_address("192.0.2.7") == "192.0.2.7"
    assert client_address("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_address(None) == "unknown"


# Content type


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"],
)
async def test_an_event_body_that_is_not_declared_json_gets_415(
    server: Server, content_type: str | None
) -> None:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    data = json.dumps(EVENT).encode()
    async with server.session.post(
        f"/v1/events/{NAME}",
        data=data,
        headers=headers | ({"Content-Type": content_type} if content_type else {}),
        skip_auto_headers=["Content-Type"],
    ) as response:
        assert response.status == 415
        error = (await response.json())["error"]
    assert error.startswith("The body must be JSON sent with 'Content-Type: application/json'")
    pending, _ = await server.services.intake.counts()
    assert pending == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/cloudevents+json",
    ],
)
async def test_json_bodies_are_accepted_with_or_without_a_charset(
    server: Server, content_type: str
) -> None:
    answer = await server.post(
        f"/v1/events/{NAME}",
        json.dumps(EVENT),
        {"Authorization": f"Bearer {server.api_key}", "Content-Type": content_type},
    )
    assert answer.status == 202


async def test_a_webhook_body_that_is_not_json_gets_415(server: Server) -> None:
    raw = json.dumps({"type": NAME, "data": EVENT}).encode()
    stamp = str(int(server.now[0].timestamp()))
    headers = {
        "webhook-id": "msg_x",
        "webhook-timestamp": stamp,
        "webhook-signature": keys.signature(server.secret, "msg_x", stamp, raw),
        "Content-Type": "text/plain",
    }
    answer = await server.post(f"/v1/webhooks/{server.key_id}", raw, headers)
    assert answer.status == 415
    assert server.ingress.metrics.rejected["unsupported_media_type"] == 1
    # Not an authentication failure: it does not count against the address.
    assert len(server.ingress.throttle) == 0


# Configuration


def test_the_bounds_come_from_the_environment() -> None:
    default = IngressSettings.from_config(Config.from_env({}))
    assert (default.head_timeout, default.body_timeout) == (10.0, 30.0)
    assert (default.auth_failures, default.auth_window) == (10, 60.0)
    assert default.server_options() == {"keepalive_timeout": 10.0, "lingering_time": 2.0}
    config = Config.from_env(
        {
            "THOTH_INGRESS_HEAD_TIMEOUT": "5",
            "THOTH_INGRESS_BODY_TIMEOUT": "12.5",
            "THOTH_INGRESS_AUTH_FAILURES": "20",
            "THOTH_INGRESS_AUTH_WINDOW": "300",
        }
    )
    settings = IngressSettings.from_config(config)
    assert (settings.head_timeout, settings.body_timeout) == (5.0, 12.5)
    assert (settings.auth_failures, settings.auth_window) == (20, 300.0)
    for name, raw in [
        ("THOTH_INGRESS_HEAD_TIMEOUT", "0"),
        ("THOTH_INGRESS_BODY_TIMEOUT", "soon"),
        ("THOTH_INGRESS_AUTH_FAILURES", "0"),
        ("THOTH_INGRESS_AUTH_WINDOW", "-1"),
    ]:
        with pytest.raises(InvalidInput, match=f"{name} must be .* not '{raw}'"):
            Config.from_env({name: raw})


def test_the_runner_gets_the_deadlines() -> None:
    # What start_ingress passes to aiohttp is accepted by it (no unknown option).
    web.AppRunner(web.Application(), **IngressSettings().server_options())
