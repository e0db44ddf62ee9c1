"""Secrets sealed at rest: the master key, the sealed columns, the upgrade of a database that
held them in clear, the outbox that names destinations, masked exports, and the file's bytes.

Everything runs on real database files under tmp_path; deliveries go to a receiver on
127.0.0.1 (the edge of the process).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from tests.support import Harness, services_on, thothbot
from thothbot import keys, sealing
from thothbot.config import Config
from thothbot.core.delivery import find_destination
from thothbot.core.destinations import (
    DestinationKind,
    DiscordWebhook,
    HttpEndpoint,
    Ops,
    OutboxRef,
)
from thothbot.core.errors import InvalidInput, SettingsInvalid
from thothbot.core.masking import keep_masked, mask, masked_document, reference
from thothbot.core.settings import GuildSettings
from thothbot.delivery import Deliveries
from thothbot.outbound import Guard
from thothbot.store import Store, StoreUnavailable, migrations
from thothbot.store.sqlite import _statements

G = "guild-1"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"k" * 16 + os.urandom(16)).decode()
TOKEN = "tok" + base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
ESCALATE_ON_OPEN = [{"id": "page", "trigger": "ticket_opened", "actions": [{"type": "escalate"}]}]


# The master key and the sealer


def test_a_sealed_value_opens_only_with_its_key_and_in_its_place() -> None:
    sealer = sealing.Sealer([os.urandom(32)], "test")
    sealed = sealer.seal(SECRET, "api_keys:a")

    assert sealed.startswith(f"sealing:v1:{sealer.key_id}:".replace("sealing", "sealed"))
    assert SECRET not in sealed
    assert sealer.open(sealed, "api_keys:a") == SECRET
    assert sealer.seal(SECRET, "api_keys:a") != sealed  # a fresh nonce every time
    with pytest.raises(sealing.SealingError, match="does not decrypt"):
        sealer.open(sealed, "api_keys:b")  # copied to another row
    other = sealing.Sealer([os.urandom(32)], "THOTH_SECRET_KEY")
    with pytest.raises(sealing.SealingError) as wrong:
        other.open(sealed, "api_keys:a")
    assert str(wrong.value).startswith("the secret key does not open the stored secrets: ")
    assert sealer.key_id in str(wrong.value)


def test_several_keys_seal_with_the_first_and_open_with_any() -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = sealing.Sealer([old], "test").seal("value", "c")
    both = sealing.Sealer([new, old], "test")

    assert both.open(before, "c") == "value"
    assert both.needs_sealing(before)
    assert not both.needs_sealing(both.seal("value", "c"))
    assert both.needs_sealing("clear text")


def test_the_key_is_base64_of_32_bytes_in_either_alphabet_and_padding_optional() -> None:
    raw = bytes(range(250, 256)) * 5 + b"\xfb\xff"
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        assert sealing.parse_keys(text) == [raw]
    assert sealing.parse_keys(f" {sealing.new_key()} , {sealing.new_key()} ")[1] != raw
    for bad in ("short", base64.b64encode(b"x" * 16).decode(), "not base64 at all!!", " , "):
        with pytest.raises(InvalidInput, match="THOTH_SECRET_KEY"):
            sealing.parse_keys(bad)


def test_the_config_refuses_a_malformed_key_and_never_shows_it() -> None:
    key = sealing.new_key()
    config = Config.from_env({"THOTH_SECRET_KEY": key})

    assert config.secret_key is not None
    assert config.secret_key.get_secret_value() == key
    assert key not in repr(config)
    assert Config.from_env({}).secret_key is None
    with pytest.raises(InvalidInput, match="openssl rand -base64 32"):
        Config.from_env({"THOTH_SECRET_KEY": "hunter2"})


async def test_without_a_configured_key_one_is_made_once_beside_the_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "thoth.db"
    store = await Store.open(path)
    first = store.sealer.key_id
    await store.close()
    key_file = tmp_path / "data" / "secret.key"

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(sealing.parse_keys(key_file.read_text())[0]) == 32
    store = await Store.open(path)
    assert store.sealer.key_id == first
    await store.close()
    assert [p.name for p in key_file.parent.iterdir() if p.name.startswith(".secret")] == []


def test_a_key_file_others_can_read_is_used_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "thoth.db"
    private = sealing.sealer_for(str(db), None, may_create=True)
    assert "can be read by other users" not in caplog.text
    (tmp_path / "secret.key").chmod(0o644)

    opened = sealing.sealer_for(str(db), None, may_create=False)

    assert opened.key_id == private.key_id
    assert "secret.key can be read by other users: chmod 600 it" in caplog.text


def test_processes_starting_together_make_one_key(tmp_path: Path) -> None:
    db = tmp_path / "thoth.db"
    script = (
        "import sys; from thothbot import sealing;"
        " print(sealing.sealer_for(sys.argv[1], None, may_create=True).key_id)"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script, str(db)], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    ids = {run.communicate(timeout=60)[0].strip() for run in runs}

    assert len(ids) == 1
    assert ids == {sealing.key_id(sealing.parse_keys((tmp_path / "secret.key").read_text())[0])}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]


async def _store_with_secrets(path: Path, key: SecretStr | None = None) -> None:
    async with services_on(path, key) as services:
        settings = {"ops_webhook": _webhook("http://x.test")}
        await services.desk.save_settings(G, json.dumps(settings), T0)
        await services.keys.create(keys.new_key(G, T0).row)


def _dump(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


def test_a_missing_key_file_is_said_in_one_line_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "thoth.db"
    asyncio.run(_store_with_secrets(path))
    (tmp_path / "secret.key").unlink()
    before = _dump(path)

    with pytest.raises(StoreUnavailable) as missing:
        asyncio.run(Store.open(path))

    message = str(missing.value)
    assert message.startswith("the secret key does not open the stored secrets: ")
    assert "secret.key is missing" in message
    assert "\n" not in message
    assert not (tmp_path / "secret.key").exists()  # no new key was made over sealed data
    assert _dump(path) == before
    # The CLI says the same line, and no traceback.
    monkeypatch.setenv("THOTH_DB_PATH", str(path))
    monkeypatch.delenv("THOTH_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    run = thothbot("keys", "list")
    assert run.code == 2
    assert run.err == f"thothbot: {message}\n"
    assert _dump(path) == before


async def test_a_wrong_key_is_refused_and_the_right_one_opens(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    right = SecretStr(sealing.new_key())
    await _store_with_secrets(path, right)
    before = _dump(path)

    with pytest.raises(StoreUnavailable, match=r"^the secret key does not open the stored"):
        await Store.open(path, secret_key=SecretStr(sealing.new_key()))
    assert _dump(path) == before
    assert not (tmp_path / "secret.key").exists()  # the configured key was used, not a file

    async with services_on(path, right) as services:
        config = await services.desk.config(G)
    assert config.settings.ops_webhook == _webhook("http://x.test")


async def test_a_new_master_key_listed_first_reseals_everything_at_start(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    old, new = sealing.new_key(), sealing.new_key()
    await _store_with_secrets(path, SecretStr(old))

    store = await Store.open(path, secret_key=SecretStr(f"{new},{old}"))
    await store.close()
    async with services_on(path, SecretStr(new)) as services:  # the old key is not needed now
        [key] = await services.keys.listed()
        config = await services.desk.config(G)

    assert key.webhook_secret.startswith("whsec_")
    assert config.settings.ops_webhook == _webhook("http://x.test")
    assert sealing.key_id(base64.b64decode(old)) not in _dump(path)


# Upgrading a database that held the secrets in clear


def _old_database(path: Path) -> dict[str, str]:
    """A database made with the schema before sealing (migrations up to 0006), holding
    secrets in clear the way older versions stored them; the secrets, by name."""
    found = {
        "key_secret": keys.new_key(G, T0).row.webhook_secret,
        "destination_secret": SECRET,
        "token": TOKEN,
        "endpoint": "https://pager.example.com/hooks/" + TOKEN[::-1],
    }
    ops_webhook = _webhook("https://discord.com", found["token"])
    http = {"kind": "http", "url": found["endpoint"], "secret": found["destination_secret"]}
    found["earlier_secret"] = keys.new_secret()
    earlier = {"destinations": [dict(http, secret=found["earlier_secret"])]}
    settings = {"staff": ["S1"], "ops_webhook": ops_webhook, "destinations": [http]}
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for version, name, sql in migrations():
            if version >= 7:
                break
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '')", (version, name))
        conn.execute(
            "INSERT INTO guilds (guild_id, settings, revision) VALUES (?, ?, 3)",
            (G, json.dumps(settings)),
        )
        conn.execute(
            "INSERT INTO api_keys (key_id, guild_id, key_hash, webhook_secret, created_at)"
            " VALUES ('k1', ?, 'hash', ?, ?)",
            (G, found["key_secret"], T0.isoformat()),
        )
        conn.execute(
            "INSERT INTO tickets (guild_id, number, customer_id, subject, status, created_at,"
            " source) VALUES (?, 1, 'U1', 'Printer on fire', 'open', ?, 'discord')",
            (G, T0.isoformat()),
        )
        for destination, status in (
            ({"kind": "discord_webhook", "url": ops_webhook}, "sent"),
            (http, "pending"),
        ):
            conn.execute(
                "INSERT INTO deliveries (guild_id, ticket_id, destination, reason, created_at,"
                " status, next_at) VALUES (?, 1, ?, 'Rule: page', ?, ?, ?)",
                (G, json.dumps(destination, sort_keys=True), T0.isoformat(), status,
                 T0.isoformat()),
            )  # fmt: skip
        # Settings saved before these: deleted rows stay in the file's free space until it
        # is rewritten (unless SQLite was built to zero them, as some distributions do).
        conn.execute("PRAGMA secure_delete = OFF")
        conn.execute("CREATE TABLE scratch (value TEXT)")
        conn.execute("INSERT INTO scratch VALUES (?)", (json.dumps(earlier) * 20,))
        conn.execute("DELETE FROM scratch")
    return found


def _file_bytes(path: Path) -> bytes:
    """The database as anyone who copies its files gets it: the file, its WAL and index."""
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def _in_clear(data: bytes, secret: str) -> bool:
    """Whether a secret, or the random part of it, is in ``data``."""
    parts = {secret, secret.removeprefix("whsec_"), secret.rpartition("/")[2]}
    return any(part.encode() in data for part in parts if len(part) >= 8)


async def test_an_old_database_is_sealed_on_upgrade_and_its_file_keeps_no_clear_secret(
    tmp_path: Path,
) -> None:
    path = tmp_path / "thoth.db"
    found = _old_database(path)
    assert all(_in_clear(path.read_bytes(), s) for s in found.values())  # the control

    async with services_on(path) as services:
        config = await services.desk.config(G)
        key = await services.intake.api_key("k1")

    data = _file_bytes(path)
    for name, secret in found.items():
        assert not _in_clear(data, secret), name
    assert b"Printer on fire" in data  # what is not secret is still there, in clear
    # Nothing is lost: the secrets open again, and each outbox row names its destination.
    assert key is not None
    assert key.webhook_secret == found["key_secret"]
    assert config.settings.destinations[0].secret == found["destination_secret"]
    assert config.revision == 3
    with sqlite3.connect(path) as conn:
        rows = [r[0] for r in conn.execute("SELECT destination FROM deliveries")]
        flags = conn.execute("SELECT name FROM sealing ORDER BY name").fetchall()
    assert config.settings.ops_webhook is not None
    assert [find_destination(config.settings, OutboxRef.from_json(r)) for r in rows] == [
        DiscordWebhook(config.settings.ops_webhook),
        HttpEndpoint(found["endpoint"], found["destination_secret"]),
    ]
    assert flags == [("check",)]


# Deliveries look their destination up; nothing secret in the file


@dataclass
class Receiver:
    """Local HTTP destinations: records each request; answers Discord-like with an id."""

    url: str = ""
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.path_qs, dict(request.headers), await request.read()))
        if self.status != 200:  # echo the address, as some error pages do
            return web.Response(status=self.status, text=f"no route for {request.url}")
        return web.json_response({"id": str(len(self.seen))})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield found
    await runner.cleanup()


def _webhook(base: str, token: str = TOKEN) -> str:
    return f"{base}/api/webhooks/112233/{token}"


def _loopback(receiver: Receiver) -> Guard:
    """The outbound guard as an operator sets it for a receiver on this host: loopback allowed,
    and the receiver standing for the Discord API (so its webhook URLs are Discord's)."""
    return Guard.allowing(["127.0.0.1/32"], discord_api_url=receiver.url)


async def _loopback_desk(path: Path, receiver: Receiver, *, outbox: bool = True) -> Harness:
    """The services on ``path`` with destinations checked by ``_loopback``; escalations go
    through the outbox unless ``outbox`` is false."""
    harness = Harness(path, outbox=outbox)
    await harness.start(outbound=_loopback(receiver))
    return harness


async def _deliver(harness: Harness) -> int:
    """Send what the outbox holds now, as the worker does."""
    services = harness.services
    worker = Deliveries(services.desk, outbox=services.outbox, clock=lambda: T0)
    try:
        return await worker.send_due()
    finally:
        if worker._session is not None:
            await worker._session.close()


def _settings(receiver: Receiver) -> dict[str, Any]:
    return {
        "staff": ["S1"],
        "ops_webhook": _webhook(receiver.url),
        "destinations": [{"kind": "http", "url": f"{receiver.url}/hooks/a", "secret": SECRET}],
    }


async def test_exported_settings_are_masked_and_reimported_keep_the_secrets_that_sign(
    tmp_path: Path, receiver: Receiver
) -> None:
    path = tmp_path / "thoth.db"
    harness = await _loopback_desk(path, receiver)
    desk = harness.desk
    await desk.save_rules(G, json.dumps(ESCALATE_ON_OPEN))
    await desk.save_settings(G, json.dumps(_settings(receiver)), T0)

    created = keys.new_key(G, T0)
    rotated_to = keys.new_secret()
    await harness.services.keys.create(created.row)
    await harness.services.keys.rotate(created.row.key_id, rotated_to, T0, timedelta(hours=1))

    exported = json.dumps(await desk.settings_export(G), ensure_ascii=False)
    await desk.save_settings(G, exported, T0)  # re-imported unchanged
    ticket = await desk.open_ticket(G, "U1", "Printer on fire", T0)
    sent = await _deliver(harness)
    await harness.close()

    assert SECRET not in exported
    assert TOKEN not in exported
    assert SECRET.removeprefix("whsec_") not in exported
    assert f"whsec_…{SECRET[-4:]}" in exported
    assert f"/api/webhooks/112233/…{TOKEN[-4:]}" in exported
    # The control for the order at save: the guard, had it seen the masked URL rather than
    # the stored one it stands for, would have refused it.
    masked_hook = json.loads(exported)["ops_webhook"]
    assert _loopback(receiver).discord_webhook_problem(masked_hook) is not None
    assert sent == 2
    seen = {path: (headers, body) for path, headers, body in receiver.seen}
    assert set(seen) == {f"/api/webhooks/112233/{TOKEN}?wait=true", "/hooks/a"}
    headers, body = seen["/hooks/a"]
    signed = (headers["webhook-id"], headers["webhook-timestamp"], body)
    assert keys.signature_matches(SECRET, *signed, headers["webhook-signature"])
    assert json.loads(body)["data"]["ticket"] == ticket.number
    # Not in the file either: the settings, the outbox and every page are free of them.
    data = _file_bytes(path)
    assert b"Printer on fire" in data  # the control: the scan sees clear text
    for secret in (
        SECRET, TOKEN, _webhook(receiver.url), f"{receiver.url}/hooks/a",
        created.row.webhook_secret, rotated_to, created.api_key,
    ):  # fmt: skip
        assert not _in_clear(data, secret), secret


@pytest.mark.parametrize(
    "applied",
    [
        pytest.param((1, 2, 3, 4, 5), id="before-both"),
        pytest.param((1, 2, 3, 4, 5, 7), id="sealed-only"),
        pytest.param((1, 2, 3, 4, 5, 9), id="outbound-only"),
    ],
)
async def test_a_database_from_before_either_migration_gets_both_and_delivers_once(
    tmp_path: Path, receiver: Receiver, applied: tuple[int, ...]
) -> None:
    """0007 (sealed secrets) and 0009 (exactly-once deliveries) apply whichever came first; a
    delivery waiting from before is then sent with a fixed body and a msg_ webhook-id."""
    path = tmp_path / "thoth.db"
    http = {"kind": "http", "url": f"{receiver.url}/hooks/a", "secret": SECRET}
    # Before 0007 the outbox copied the destination whole; from 0007 on it names it.
    waiting = reference(http) if 7 in applied else http
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for version, name, sql in migrations():
            if version in applied:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '')", (version, name))
        conn.execute(
            "INSERT INTO guilds (guild_id, settings) VALUES (?, ?)",
            (G, json.dumps({"staff": ["S1"], "destinations": [http]})),
        )
        conn.execute(
            "INSERT INTO tickets (guild_id, number, customer_id, subject, status, created_at,"
            " source) VALUES (?, 1, 'U1', 'Printer on fire', 'open', ?, 'discord')",
            (G, T0.isoformat()),
        )
        conn.execute(
            "INSERT INTO deliveries (guild_id, ticket_id, destination, reason, created_at,"
            " status, next_at) VALUES (?, 1, ?, 'Rule: page', ?, 'pending', ?)",
            (G, json.dumps(waiting, sort_keys=True), T0.isoformat(), T0.isoformat()),
        )

    harness = await _loopback_desk(path, receiver)
    sent = await _deliver(harness)
    await harness.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        [(versions,)] = conn.execute("SELECT group_concat(version) FROM schema_migrations")
        [(destination, body)] = conn.execute("SELECT destination, body FROM deliveries")

    assert sorted(int(v) for v in versions.split(",")) == [v for v, _, _ in migrations()]
    assert sent == 1
    [(where, headers, posted)] = receiver.seen
    assert where == "/hooks/a"
    assert headers["webhook-id"].startswith("msg_")
    signed = (headers["webhook-id"], headers["webhook-timestamp"], posted)
    assert keys.signature_matches(SECRET, *signed, headers["webhook-signature"])
    assert body == posted.decode()  # the body kept for every try is the one sent
    assert json.loads(destination) == reference(http)
    assert not _in_clear(_file_bytes(path), SECRET)


async def test_a_changed_secret_replaces_the_stored_one_and_an_unknown_mask_is_refused(
    tmp_path: Path, receiver: Receiver
) -> None:
    harness = await _loopback_desk(tmp_path / "thoth.db", receiver, outbox=False)
    desk = harness.desk
    await desk.save_settings(G, json.dumps(_settings(receiver)), T0)
    exported = await desk.settings_export(G)
    other = keys.new_secret()

    exported["destinations"][0]["secret"] = other
    await desk.save_settings(G, json.dumps(exported), T0)
    changed = (await desk.config(G)).settings.destinations[0].secret

    foreign = dict(exported, ops_webhook=_webhook(receiver.url, "elsewhere-" + "x" * 40))
    foreign["ops_webhook"] = mask(foreign["ops_webhook"])
    with pytest.raises(SettingsInvalid) as refused:
        await desk.save_settings(G, json.dumps(foreign), T0)
    kept = (await desk.config(G)).settings
    await harness.close()

    assert changed == other
    assert refused.value.problems[0][0] == "ops_webhook"
    assert "masked" in refused.value.problems[0][1]
    assert kept.ops_webhook == _webhook(receiver.url)


def test_masking_is_stable_and_keeps_what_identifies_a_secret() -> None:
    document = {
        "ops_webhook": _webhook("https://discord.com"),
        "destinations": [
            {"kind": "http", "url": "https://u:p@pager.example.com/hooks/x?t=1", "secret": SECRET},
            {"kind": "discord_webhook", "url": _webhook("https://discord.com", "a" * 68)},
        ],
        "staff": ["S1"],
    }
    masked = masked_document(document)

    assert masked["staff"] == ["S1"]
    assert masked["ops_webhook"] == f"https://discord.com/api/webhooks/112233/…{TOKEN[-4:]}"
    assert masked["destinations"][0]["url"] == "https://…@pager.example.com/hooks/…"
    assert masked["destinations"][0]["secret"] == f"whsec_…{SECRET[-4:]}"
    assert masked_document(masked) == masked
    assert document["ops_webhook"] == _webhook("https://discord.com")  # not changed in place
    # Reordered destinations still find their secrets.
    reordered = dict(masked, destinations=masked["destinations"][::-1])
    assert keep_masked(reordered, document)["destinations"] == document["destinations"][::-1]


def test_an_outbox_reference_names_the_destination_without_its_url_or_secret() -> None:
    settings = GuildSettings.model_validate(
        {
            "ops_webhook": _webhook("https://discord.com"),
            "destinations": [
                {"kind": "http", "url": "https://pager.example.com", "secret": SECRET}
            ],
        }
    )
    http = {"kind": "http", "url": "https://pager.example.com", "secret": SECRET}
    ref = reference(http)

    assert set(ref) == {"kind", "ref"}
    assert SECRET not in json.dumps(ref)
    typed = HttpEndpoint(http["url"], SECRET)
    assert typed.reference == OutboxRef(DestinationKind.HTTP, ref["ref"])
    assert find_destination(settings, typed.reference) == typed
    assert find_destination(settings, OutboxRef(DestinationKind.OPS)) == Ops()
    assert find_destination(settings, HttpEndpoint("https://gone", SECRET).reference) is None


async def test_a_removed_destination_fails_its_waiting_delivery_in_plain_words(
    tmp_path: Path, receiver: Receiver
) -> None:
    harness = await _loopback_desk(tmp_path / "thoth.db", receiver)
    desk = harness.desk
    await desk.save_rules(G, json.dumps(ESCALATE_ON_OPEN))
    await desk.save_settings(G, json.dumps(_settings(receiver)), T0)
    await desk.open_ticket(G, "U1", "Printer on fire", T0)
    await desk.save_settings(G, json.dumps({"staff": ["S1"]}), T0)

    await _deliver(harness)
    await harness.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "thoth.db")) as conn:
        rows = conn.execute("SELECT status, error FROM deliveries ORDER BY id").fetchall()

    assert receiver.seen == []
    assert [tuple(r) for r in rows] == [
        ("failed", "its destination is no longer in the settings"),
    ] * 2


async def test_a_refusal_quoting_the_webhook_url_is_stored_and_logged_masked(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # 400: Discord refusing a post it finds malformed (a 404 would mean the webhook was deleted,
    # which disables it with an error of its own words).
    receiver.status = 400
    harness = await _loopback_desk(tmp_path / "thoth.db", receiver)
    desk = harness.desk
    await desk.save_rules(G, json.dumps(ESCALATE_ON_OPEN))
    await desk.save_settings(G, json.dumps({"ops_webhook": _webhook(receiver.url)}), T0)
    await desk.open_ticket(G, "U1", "Printer on fire", T0)

    with caplog.at_level(logging.WARNING):
        await _deliver(harness)
    await harness.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "thoth.db")) as conn:
        [(error,)] = conn.execute("SELECT error FROM deliveries")

    assert TOKEN in receiver.seen[0][0]  # the control: the answer quoted it
    assert TOKEN not in error
    assert f"…{TOKEN[-4:]}" in error
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(sealing.MaskSecrets())
    for record in caplog.records:
        handler.handle(record)
    logged = handler.stream.getvalue()
    assert "delivery" in logged
    assert TOKEN not in logged


def test_log_lines_mask_every_secret_the_process_has_opened() -> None:
    sealer = sealing.Sealer([os.urandom(32)], "test")
    secret = keys.new_secret()
    sealer.open(sealer.seal(secret, "c"), "c")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(sealing.MaskSecrets())
    logger = logging.getLogger("tests.sealing")
    logger.addHandler(handler)
    try:
        logger.warning("posting with %s failed", secret)
        try:
            raise ValueError(secret.removeprefix("whsec_"))
        except ValueError:
            logger.exception("and again")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()

    assert "posting with whsec_…" in text
    assert "ValueError: …" in text
    assert secret.removeprefix("whsec_") not in text
