"""``thothbot keys create|list|revoke|rotate`` in-process, on a database file under tmp_path,
and a rotated key at the ingress as the clock moves through the overlap."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support import thothbot
from tests.test_ingress import EVENT, NAME, _serve
from thothbot import keys
from thothbot.store import Store


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data" / "thoth.db"
    monkeypatch.setenv("THOTH_DB_PATH", str(path))
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    return path


def test_create_prints_a_key_and_secret_and_stores_only_the_keys_hash(db: Path) -> None:
    run = thothbot("keys", "create", "--guild", "123456789")

    assert run.code == 0, run.err
    [api_key] = re.findall(r"thk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", run.out)
    [secret] = re.findall(r"whsec_[A-Za-z0-9+/=]{44}", run.out)
    key_id = keys.key_id_of(api_key)
    assert key_id is not None
    assert f"/v1/webhooks/{key_id}" in run.out
    assert "cannot be shown again" in run.out
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT guild_id, key_hash, webhook_secret, revoked_at FROM api_keys WHERE key_id = ?",
            (key_id,),
        ).fetchone()
        dump = "\n".join(conn.iterdump())
    assert row[:2] == ("123456789", keys.hash_key(api_key))
    assert row[2].startswith("sealed:v1:")  # the signing secret is sealed, not in clear
    assert row[3] is None
    assert api_key not in dump
    assert secret.removeprefix("whsec_") not in dump
    assert len(keys.signing_key(secret)) == 32


def test_create_as_json_and_keys_differ_every_time(db: Path) -> None:
    first = thothbot("keys", "create", "--guild", "G1", "--json").json
    second = thothbot("keys", "create", "--guild", "G1", "--json").json

    assert set(first) == {"key_id", "guild_id", "api_key", "webhook_secret", "webhook_path"}
    assert first["guild_id"] == "G1"
    assert first["webhook_path"] == f"/v1/webhooks/{first['key_id']}"
    assert keys.key_id_of(first["api_key"]) == first["key_id"]
    for field in ("key_id", "api_key", "webhook_secret"):
        assert first[field] != second[field]


def test_create_needs_a_sensible_server_id(db: Path) -> None:
    run = thothbot("keys", "create", "--guild", "   ")
    assert run.code == 2
    assert "--guild must be a server id" in run.err
    assert not db.exists() or sqlite3.connect(db).execute(
        "SELECT COUNT(*) FROM api_keys"
    ).fetchone() == (0,)


def test_list_shows_keys_without_secrets_and_filters_by_server(db: Path) -> None:
    assert "No keys yet" in thothbot("keys", "list").err
    a = thothbot("keys", "create", "--guild", "G1", "--json").json
    b = thothbot("keys", "create", "--guild", "G2", "--json").json

    everything = thothbot("keys", "list")
    only_g2 = thothbot("keys", "list", "--guild", "G2", "--json").json

    assert everything.code == 0
    lines = everything.out.splitlines()
    assert lines[0].split() == ["KEY", "ID", "SERVER", "CREATED", "SECRET", "STATUS"]
    assert {line.split()[0] for line in lines[1:]} == {a["key_id"], b["key_id"]}
    assert all(line.endswith("active") for line in lines[1:])
    for secret in (a["api_key"], a["webhook_secret"], b["api_key"], b["webhook_secret"]):
        assert secret not in everything.out
    # Each signing secret shows masked, with its last characters to tell them apart.
    assert f"whsec_…{a['webhook_secret'][-4:]}" in everything.out
    assert only_g2[0]["webhook_secret"] == f"whsec_…{b['webhook_secret'][-4:]}"
    assert [k["key_id"] for k in only_g2] == [b["key_id"]]
    assert only_g2[0]["revoked_at"] is None
    assert "for server G3" in thothbot("keys", "list", "--guild", "G3").err


def test_revoke_marks_the_key_once_and_refuses_unknown_ids(db: Path) -> None:
    key = thothbot("keys", "create", "--guild", "G1", "--json").json

    revoked = thothbot("keys", "revoke", key["key_id"])
    again = thothbot("keys", "revoke", key["key_id"])
    unknown = thothbot("keys", "revoke", "feedfacefeedface")

    assert revoked.code == 0
    assert f"Revoked key {key['key_id']} (server G1)" in revoked.out
    assert again.code == 0
    assert "was already revoked" in again.out
    assert unknown.code == 2
    assert "There is no key 'feedfacefeedface'" in unknown.err
    [listed] = thothbot("keys", "list", "--json").json
    assert listed["revoked_at"] is not None
    assert "revoked 20" in thothbot("keys", "list").out


# Rotating a webhook signing secret


def test_rotate_prints_a_new_secret_once_and_keeps_the_old_one_for_the_overlap(db: Path) -> None:
    key = thothbot("keys", "create", "--guild", "G1", "--json").json

    rotated = thothbot("keys", "rotate", key["key_id"])
    [new] = re.findall(r"whsec_[A-Za-z0-9+/=]{44}", rotated.out)
    listed = thothbot("keys", "list")
    [as_json] = thothbot("keys", "list", "--json").json

    assert rotated.code == 0, rotated.err
    assert new != key["webhook_secret"]
    assert key["webhook_secret"] not in rotated.out  # the old one only masked
    assert f"whsec_…{key['webhook_secret'][-4:]}" in rotated.out
    assert "keeps verifying until" in rotated.out
    assert "(24 h)" in rotated.out
    assert new not in listed.out
    assert f"whsec_…{new[-4:]}" in listed.out
    assert "active (previous secret until 20" in listed.out
    assert as_json["previous_secret_until"] is not None
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    for secret in (new, key["webhook_secret"]):
        assert secret.removeprefix("whsec_") not in dump


def test_rotate_as_json_with_no_overlap_ends_the_old_secret_now(db: Path) -> None:
    key = thothbot("keys", "create", "--guild", "G1", "--json").json

    rotated = thothbot("keys", "rotate", key["key_id"], "--overlap", "0", "--json").json
    [listed] = thothbot("keys", "list", "--json").json

    assert set(rotated) == {
        "key_id", "guild_id", "webhook_secret", "webhook_path", "previous_secret_until",
    }  # fmt: skip
    assert rotated["key_id"] == key["key_id"]
    assert rotated["webhook_secret"].startswith("whsec_")
    assert len(keys.signing_key(rotated["webhook_secret"])) == 32
    assert listed["previous_secret_until"] is None
    assert listed["webhook_secret"] == f"whsec_…{rotated['webhook_secret'][-4:]}"


def test_rotate_refuses_unknown_and_revoked_keys_and_a_bad_overlap(db: Path) -> None:
    key = thothbot("keys", "create", "--guild", "G1", "--json").json
    before = thothbot("keys", "list", "--json").json

    unknown = thothbot("keys", "rotate", "feedfacefeedface")
    negative = thothbot("keys", "rotate", key["key_id"], "--overlap", "-1")
    too_long = thothbot("keys", "rotate", key["key_id"], "--overlap", "1000")
    assert thothbot("keys", "list", "--json").json == before
    thothbot("keys", "revoke", key["key_id"])
    revoked = thothbot("keys", "rotate", key["key_id"])

    assert unknown.code == negative.code == too_long.code == revoked.code == 2
    assert "There is no key 'feedfacefeedface'" in unknown.err
    assert "--overlap must be a number of hours from 0 to 720" in negative.err
    assert "--overlap must be" in too_long.err
    assert "was revoked" in revoked.err
    assert "Traceback" not in revoked.err


async def test_during_the_overlap_either_secret_verifies_and_after_it_only_the_new(
    tmp_path: Path,
) -> None:
    async with _serve(tmp_path) as server:
        old = server.secret
        rotated_at = server.now[0]
        assert (await server.webhook(message_id="msg_before")).status == 202  # key now cached
        # Rotated by another process (the CLI), as an operator would.
        other = await Store.open(server.path)
        new = keys.new_secret()
        await other.run(
            lambda tx: tx.rotate_webhook_secret(server.key_id, new, rotated_at, timedelta(hours=24))
        )
        await other.close()

        async def signed_with(*secrets: str, message_id: str) -> int:
            stamp = str(int(server.now[0].timestamp()))
            raw = json.dumps({"type": NAME, "data": EVENT}).encode()
            sigs = [keys.signature(s, message_id, stamp, raw) for s in secrets]
            return (await server.webhook(message_id=message_id, timestamp=int(stamp),
                                         body=raw, signatures=sigs)).status  # fmt: skip

        during = [
            await signed_with(new, message_id="msg_new"),
            await signed_with(old, message_id="msg_old"),
            await signed_with(old, new, message_id="msg_both"),
        ]
        server.now[0] = rotated_at + timedelta(hours=23, minutes=59)
        server.clock.now += 3600  # the ingress reads its cached keys again
        last_minute = await signed_with(old, message_id="msg_last")
        server.now[0] = rotated_at + timedelta(hours=24)
        after = [
            await signed_with(old, message_id="msg_after_old"),
            await signed_with(new, message_id="msg_after_new"),
            await signed_with(old, new, message_id="msg_after_both"),
        ]

    assert during == [202, 202, 202]
    assert last_minute == 202
    assert after == [401, 202, 202]


async def test_a_running_ingress_stops_the_old_secret_even_if_it_never_saw_the_new(
    tmp_path: Path,
) -> None:
    async with _serve(tmp_path) as server:
        assert (await server.webhook(message_id="msg_cached")).status == 202
        other = await Store.open(server.path)
        await other.run(
            lambda tx: tx.rotate_webhook_secret(
                server.key_id, keys.new_secret(), server.now[0], timedelta(hours=1)
            )
        )
        await other.close()
        within = await server.webhook(message_id="msg_within")
        server.now[0] += timedelta(hours=2)
        server.clock.now += 31  # past the ingress's key cache (30 s)
        after = await server.webhook(message_id="msg_after")  # signed with the old secret

    assert within.status == 202
    assert after.status == 401
