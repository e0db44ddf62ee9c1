"""The outbound guard: which addresses destinations may reach, checked at save and at send.

A real aiohttp server on 127.0.0.1 stands for an internal service; names are answered by a
fake name service (the guard's ``lookup``), so a test can make a name change its answer
between the save and the send, as DNS rebinding does.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support import T0, Harness
from thothbot.config import Config
from thothbot.core.errors import InvalidInput, SettingsInvalid
from thothbot.delivery import Deliveries
from thothbot.outbound import Guard, OutboundRefused, address_problem
from thothbot.service.outbox import Outbox

G = "guild-1"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ESCALATE_ON_OPEN = [{"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]}]
# What the ``desk`` fixture saves and uses (tests/conftest.py).
RULES = ESCALATE_ON_OPEN
OUTBOX = True


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "IPv4-mapped form of a loopback"),
        ("::ffff:10.0.0.1", "IPv4-mapped form of a private"),
        ("::ffff:169.254.169.254", "IPv4-mapped form of a cloud metadata"),
        ("64:ff9b::a00:1", "NAT64 form of a private"),
        ("192.0.2.1", "private"),  # documentation range: Python counts it private
    ],
)
def test_internal_addresses_are_refused_saying_what_they_are(address: str, words: str) -> None:
    why = address_problem(ipaddress.ip_address(address))
    assert why is not None
    assert words in why


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "162.159.135.232", "2606:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_the_operator_allows_ranges_and_names() -> None:
    config = Config.from_env({"THOTH_OUTBOUND_ALLOW": " 10.0.0.0/8, 127.0.0.1 ,Hooks.Internal. "})
    assert config.outbound_allow == ("10.0.0.0/8", "127.0.0.1/32", "hooks.internal")
    guard = Guard.from_config(config)
    assert guard.problem("a.example", ipaddress.ip_address("10.9.8.7")) is None
    assert guard.problem("a.example", ipaddress.ip_address("127.0.0.1")) is None
    assert guard.problem("hooks.internal", ipaddress.ip_address("192.168.0.5")) is None
    why = guard.problem("a.example", ipaddress.ip_address("192.168.0.5"))
    assert why == (
        "a.example (192.168.0.5) is a private address; the operator can allow it with"
        " THOTH_OUTBOUND_ALLOW"
    )
    assert Config.from_env({}).outbound_allow == ()


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "hooks internal", "http://x", "a/b"])
def test_a_bad_allow_list_is_refused_in_plain_words(bad: str) -> None:
    with pytest.raises(InvalidInput, match="THOTH_OUTBOUND_ALLOW must be CIDR ranges") as error:
        Config.from_env({"THOTH_OUTBOUND_ALLOW": f"10.0.0.0/8,{bad}"})
    assert repr(bad) in str(error.value)


@pytest.mark.parametrize(
    ("api", "url"),
    [
        ("https://discord.com/api/v10", "https://discord.com/api/webhooks/123/tok-EN_x"),
        ("https://discord.com/api/v10", "https://discordapp.com/api/webhooks/123/tok"),
        ("https://discord.com/api/v10", "https://canary.discord.com/api/v10/webhooks/1/t"),
        ("https://discord.com/api/v10", "https://discord.com/api/webhooks/1/t?thread_id=5"),
        ("http://127.0.0.1:8555/api/v10", "http://127.0.0.1:8555/api/v10/webhooks/9/t"),
    ],
)
def test_discord_webhook_urls_under_the_api_host_pass(api: str, url: str) -> None:
    assert Guard(discord_api_url=api).discord_webhook_problem(url) is None


@pytest.mark.parametrize(
    ("api", "url"),
    [
        ("https://discord.com/api/v10", "https://evil.example/api/webhooks/1/t"),
        ("https://discord.com/api/v10", "http://discord.com/api/webhooks/1/t"),
        ("https://discord.com/api/v10", "https://discord.com.evil.example/api/webhooks/1/t"),
        ("https://discord.com/api/v10", "https://discord.com:8443/api/webhooks/1/t"),
        ("https://discord.com/api/v10", "https://discord.com/api/webhooks/1"),
        ("https://discord.com/api/v10", "https://discord.com/api/webhooks/x/t"),
        ("https://discord.com/api/v10", "https://discord.com/api/webhooks/1/t/github"),
        ("https://discord.com/api/v10", "https://discord.com/api/users/@me"),
        ("http://127.0.0.1:8555/api/v10", "http://127.0.0.1:9999/api/v10/webhooks/9/t"),
        ("http://127.0.0.1:8555/api/v10", "https://discord.com/api/webhooks/1/t"),
    ],
)
def test_other_urls_are_not_discord_webhooks(api: str, url: str) -> None:
    why = Guard(discord_api_url=api).discord_webhook_problem(url)
    assert why is not None
    assert "must be a Discord webhook URL" in why


# -- at save -------------------------------------------------------------------------------------


def names(answers: dict[str, list[list[str]]]) -> Callable[[str, int], Any]:
    """A name service answering each name from its list, one answer per question, the last
    one repeating; an unknown name is not found."""

    async def lookup(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"{host} not found")
        queue = answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return lookup


async def test_settings_pointing_inside_are_refused_at_save_naming_each_field(
    harness: Harness,
) -> None:
    desk = await harness.restart(
        outbound=Guard(
            discord_api_url="https://discord.com/api/v10",
            lookup=names({"metadata.test": [["169.254.169.254"]], "ok.test": [["8.8.8.8"]]}),
        )
    )
    await desk.save_settings(G, json.dumps({"staff": ["S1"]}), T0)
    settings = {
        "staff": ["S2"],
        "ops_webhook": "https://hooks.example/api/webhooks/1/t",
        "destinations": [
            {"kind": "http", "url": "http://127.0.0.1:8080/hook", "secret": SECRET},
            {"kind": "http", "url": "https://metadata.test/latest", "secret": SECRET},
            {"kind": "http", "url": "https://ok.test/hook", "secret": SECRET},
            {"kind": "http", "url": "https://nowhere.test/hook", "secret": SECRET},
            {"kind": "http", "url": "http://[::ffff:10.0.0.1]/hook", "secret": SECRET},
        ],
    }
    with pytest.raises(SettingsInvalid) as refused:
        await desk.save_settings(G, json.dumps(settings), T0)
    problems = dict(refused.value.problems)
    assert "must be a Discord webhook URL" in problems["ops_webhook"]
    assert problems["destinations[0].url"] == (
        "127.0.0.1 is a loopback address; the operator can allow it with THOTH_OUTBOUND_ALLOW."
    )
    assert (
        "metadata.test (169.254.169.254) is a cloud metadata address"
        in (problems["destinations[1].url"])
    )
    assert "destinations[2].url" not in problems
    assert "nowhere.test, which could not be found" in problems["destinations[3].url"]
    assert "IPv4-mapped form of a private address" in problems["destinations[4].url"]
    config = await desk.config(G)
    assert config.document == {"staff": ["S1"]}  # what was saved before is kept


async def test_a_name_that_answers_one_bad_address_among_good_ones_is_refused(
    harness: Harness,
) -> None:
    desk = await harness.restart(
        outbound=Guard(lookup=names({"mixed.test": [["8.8.8.8", "10.0.0.7"]]}))
    )
    settings = {"destinations": [{"kind": "http", "url": "https://mixed.test/h", "secret": SECRET}]}
    with pytest.raises(SettingsInvalid, match=r"10\.0\.0\.7\) is a private address"):
        await desk.save_settings(G, json.dumps(settings), T0)


# -- at send -------------------------------------------------------------------------------------


class Receiver:
    """An internal service on loopback, noting what reached it."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hosts.append(request.headers["Host"])
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    found.port = runner.addresses[0][1]
    yield found
    await runner.cleanup()


async def test_a_name_that_rebinds_to_loopback_after_the_save_is_refused_at_send(
    harness: Harness, receiver: Receiver
) -> None:
    """Public when the settings are saved, loopback when the post goes: nothing reaches it."""
    desk = await harness.restart(
        outbound=Guard(lookup=names({"rebind.test": [["8.8.8.8"], ["127.0.0.1"]]}))
    )
    url = f"http://rebind.test:{receiver.port}/hook"
    settings = {"destinations": [{"kind": "http", "url": url, "secret": SECRET}]}
    await desk.save_settings(G, json.dumps(settings), T0)  # the name looked public then
    await desk.open_ticket(G, "1", "Checkout broken", T0)

    worker = Deliveries(desk, Outbox(desk.store), clock=lambda: T0)
    try:
        await worker.send_due()
    finally:
        if worker._session is not None:
            await worker._session.close()

    [(status, error)] = await desk.store.run(
        lambda tx: tx._all("SELECT status, error FROM deliveries WHERE destination LIKE '%http%'")
    )
    assert status == "failed"  # refused for good, not retried against the internal service
    assert "rebind.test (127.0.0.1) is a loopback address" in error
    assert receiver.hosts == []


async def test_the_connection_goes_to_the_checked_address_keeping_the_name(
    receiver: Receiver,
) -> None:
    guard = Guard.allowing(["127.0.0.1/32"])
    guard = Guard(guard.allow_networks, lookup=names({"receiver.test": [["127.0.0.1"]]}))
    async with guard.session(5.0) as session:
        url = f"http://receiver.test:{receiver.port}/hook"
        async with session.post(url, data=b"{}", allow_redirects=False) as response:
            assert response.status == 204
    assert receiver.hosts == [f"receiver.test:{receiver.port}"]


async def test_without_the_allow_list_the_same_session_does_not_connect(
    receiver: Receiver,
) -> None:
    guard = Guard(lookup=names({"receiver.test": [["127.0.0.1"]]}))
    async with guard.session(5.0) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as error:
            await session.post(f"http://receiver.test:{receiver.port}/hook", data=b"{}")
    assert isinstance(error.value.os_error, OutboundRefused)
    assert receiver.hosts == []


async def test_an_address_in_the_url_is_refused_before_any_connection(
    harness: Harness, receiver: Receiver
) -> None:
    """aiohttp connects to a literal address without its resolver: the worker checks first."""
    desk = await harness.restart(outbound=Guard.allowing(["127.0.0.1/32"]))
    url = f"http://127.0.0.1:{receiver.port}/hook"
    settings = {"destinations": [{"kind": "http", "url": url, "secret": SECRET}]}
    await desk.save_settings(G, json.dumps(settings), T0)  # allowed when saved
    await desk.open_ticket(G, "1", "Checkout broken", T0)

    worker = Deliveries(
        desk, Outbox(desk.store), clock=lambda: T0, guard=Guard()
    )  # the operator closed it since
    await worker.send_due()
    [(status, error)] = await desk.store.run(
        lambda tx: tx._all("SELECT status, error FROM deliveries WHERE destination LIKE '%http%'")
    )
    assert (status, receiver.hosts) == ("failed", [])
    assert "127.0.0.1 is a loopback address" in error

    # The control: with the range allowed, the same delivery does reach it.
    await desk.open_ticket(G, "2", "Checkout broken again", T0)
    allowed = Deliveries(desk, Outbox(desk.store), clock=lambda: T0)
    try:
        await allowed.send_due()
    finally:
        for w in (worker, allowed):
            if w._session is not None:
                await w._session.close()
    assert receiver.hosts == [f"127.0.0.1:{receiver.port}"]
