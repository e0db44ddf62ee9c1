"""``thothbot keys create|list|revoke`` in-process, on a database file under tmp_path."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests.support import thothbot
from thothbot import keys


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
