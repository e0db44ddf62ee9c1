"""API keys and webhook signing secrets for the HTTP ingress, and the ``thothbot keys`` commands.

An API key reads ``thk_<key_id>_<secret>``: the ingress finds the key by its id and compares
hashes. Only a SHA-256 hash of the key is stored. A slow password hash (bcrypt, scrypt,
argon2) exists to make guessing low-entropy passwords expensive; our keys carry 256 random bits,
so no dictionary applies and brute force is out of reach even against a fast hash. A fast
hash also keeps authentication cheap on every request.

The webhook signing secret (``whsec_<base64 of 32 random bytes>``, the Standard Webhooks format)
is kept sealed (``thothbot/sealing.py``): verifying an HMAC needs the secret itself, not a hash
of it, so it is encrypted with the operator's master key rather than hashed. ``keys rotate``
issues a new one while the previous keeps verifying for an overlap (24 hours unless told), so
a sender can switch without a gap: Standard Webhooks lets a request carry several signatures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO, TypeVar

from thothbot.application import services_of
from thothbot.config import Config, load_env_file
from thothbot.core.errors import InvalidInput
from thothbot.core.ingress import ApiKeyRow
from thothbot.core.masking import mask
from thothbot.service.keys import Keys

T = TypeVar("T")

KEY_PREFIX = "thk_"
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
SIGNATURE_VERSION = "v1"
MAX_GUILD_ID = 100
DEFAULT_OVERLAP_HOURS = 24.0  # how long the previous signing secret verifies after a rotation
MAX_OVERLAP_HOURS = 24.0 * 30


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: ``api_key`` exists only here, the database keeps its hash."""

    row: ApiKeyRow
    api_key: str


def new_key(guild_id: str, at: datetime) -> NewKey:
    key_id = secrets.token_hex(8)
    api_key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKeyRow(key_id, guild_id, hash_key(api_key), new_secret(), at)
    return NewKey(row, api_key)


def new_secret() -> str:
    """A webhook signing secret: 32 random bytes, ``whsec_`` and base64 (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogateescape")).hexdigest()


def key_id_of(api_key: str) -> str | None:
    """The key id inside ``thk_<key_id>_<secret>``, or None when it is not shaped like a key."""
    if not api_key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = api_key.removeprefix(KEY_PREFIX).partition("_")
    if not sep or not secret or not key_id.isalnum() or not key_id.isascii():
        return None
    return key_id


def key_matches(row: ApiKeyRow, api_key: str) -> bool:
    return hmac.compare_digest(row.key_hash, hash_key(api_key))


def signing_key(webhook_secret: str) -> bytes:
    return base64.b64decode(webhook_secret.removeprefix(SECRET_PREFIX))


def signature(webhook_secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one delivery (what a sender puts in webhook-signature)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.digest(signing_key(webhook_secret), signed, "sha256")
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_matches(
    webhook_secret: str, message_id: str, timestamp: str, body: bytes, header: str
) -> bool:
    """Whether any ``v1`` signature in the space-separated header is right (rotation: several)."""
    expected = signature(webhook_secret, message_id, timestamp, body).encode("ascii")
    found = False
    for candidate in header.split():
        if candidate.startswith(SIGNATURE_VERSION + ","):
            # No early exit: the time taken does not tell which candidate matched.
            found |= hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"), expected)
    return found


def signed_by_any(
    webhook_secrets: Iterable[str], message_id: str, timestamp: str, body: bytes, header: str
) -> bool:
    """Whether a signature in the header is right for any of the secrets (during a rotation's
    overlap, the new one and the previous one); every secret is checked, whatever matched."""
    found = False
    for webhook_secret in webhook_secrets:
        found |= signature_matches(webhook_secret, message_id, timestamp, body, header)
    return found


def timestamp_fresh(timestamp: str, now: datetime, tolerance: timedelta) -> bool:
    """Whether a Unix-seconds timestamp lies within ``tolerance`` of ``now``, either way."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(now.timestamp() - int(timestamp)) <= tolerance.total_seconds()


# The `thothbot keys` commands


def _with_keys(use: Callable[[Keys], Awaitable[T]]) -> T:
    """What ``use`` makes of the configured database's keys (opened for it, closed after)."""
    load_env_file()
    config = Config.from_env(os.environ)

    async def run() -> T:
        async with services_of(config) as services:
            return await use(services.keys)

    return asyncio.run(run())


def _guild(raw: str) -> str:
    guild_id = raw.strip()
    if not guild_id or len(guild_id) > MAX_GUILD_ID or not guild_id.isprintable():
        raise InvalidInput(
            f"--guild must be a server id of 1 to {MAX_GUILD_ID} printable characters."
        )
    return guild_id


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_keys_create(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    created = new_key(_guild(args.guild), datetime.now(UTC))
    _with_keys(lambda keys: keys.create(created.row))
    row = created.row
    if args.json:
        document = {
            "key_id": row.key_id,
            "guild_id": row.guild_id,
            "api_key": created.api_key,
            "webhook_secret": row.webhook_secret,
            "webhook_path": f"/v1/webhooks/{row.key_id}",
        }
        out.write(json.dumps(document) + "\n")
        return 0
    out.write(
        f"Created key {row.key_id} for server {row.guild_id}.\n\n"
        f"API key (send it as 'Authorization: Bearer <key>' to POST /v1/events/<name>):\n"
        f"  {created.api_key}\n\n"
        f"Webhook signing secret (Standard Webhooks, for POST /v1/webhooks/{row.key_id}):\n"
        f"  {row.webhook_secret}\n\n"
        "Keep both somewhere safe: the API key is not stored and cannot be shown again.\n"
    )
    return 0


def _status(row: ApiKeyRow, now: datetime) -> str:
    if row.revoked_at is not None:
        return f"revoked {_when(row.revoked_at)}"
    if _overlapping(row, now) and row.previous_expires_at is not None:
        return f"active (previous secret until {_when(row.previous_expires_at)})"
    return "active"


def _overlapping(row: ApiKeyRow, now: datetime) -> bool:
    return len(row.signing_secrets(now)) > 1


def _table(rows: Iterable[ApiKeyRow], now: datetime) -> str:
    lines = [("KEY ID", "SERVER", "CREATED", "SECRET", "STATUS")]
    lines += [
        (r.key_id, r.guild_id, _when(r.created_at), mask(r.webhook_secret), _status(r, now))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in lines
    )


def cmd_keys_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    guild_id = _guild(args.guild) if args.guild is not None else None
    rows = _with_keys(lambda keys: keys.listed(guild_id))
    now = datetime.now(UTC)
    if args.json:
        document = [
            {
                "key_id": r.key_id,
                "guild_id": r.guild_id,
                "created_at": r.created_at.isoformat(),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                "webhook_secret": mask(r.webhook_secret),  # masked: shown in full only once
                "previous_secret_until": (
                    r.previous_expires_at.isoformat()
                    if _overlapping(r, now) and r.previous_expires_at
                    else None
                ),
            }
            for r in rows
        ]
        out.write(json.dumps(document) + "\n")
    elif rows:
        out.write(_table(rows, now))
    else:
        where = f" for server {guild_id}" if guild_id is not None else ""
        err.write(f"No keys{where} yet: create one with `thothbot keys create --guild ID`.\n")
    return 0


def cmd_keys_revoke(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    key_id = args.key_id.strip()
    at = datetime.now(UTC)
    row = _with_keys(lambda keys: keys.revoke(key_id, at))
    if row is None:
        raise InvalidInput(f"There is no key {key_id!r}; `thothbot keys list` shows them.")
    assert row.revoked_at is not None
    if row.revoked_at != at:
        out.write(f"Key {row.key_id} (server {row.guild_id}) was already revoked on")
        out.write(f" {_when(row.revoked_at)}.\n")
    else:
        out.write(
            f"Revoked key {row.key_id} (server {row.guild_id}): requests with it now get 401.\n"
        )
    return 0


def _overlap(hours: float) -> timedelta:
    if not 0 <= hours <= MAX_OVERLAP_HOURS:  # NaN fails too
        raise InvalidInput(
            f"--overlap must be a number of hours from 0 to {MAX_OVERLAP_HOURS:g}, not {hours:g}."
        )
    return timedelta(hours=hours)


def cmd_keys_rotate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Issue a new webhook signing secret; the previous one verifies for the overlap."""
    key_id = args.key_id.strip()
    overlap = _overlap(args.overlap)
    secret, at = new_secret(), datetime.now(UTC)
    row = _with_keys(lambda keys: keys.rotate(key_id, secret, at, overlap))
    if row is None:
        raise InvalidInput(f"There is no key {key_id!r}; `thothbot keys list` shows them.")
    if row.revoked_at is not None:
        raise InvalidInput(
            f"Key {row.key_id} was revoked on {_when(row.revoked_at)}: its secret cannot be"
            " rotated. Create a new key with `thothbot keys create`."
        )
    until = at + overlap
    if args.json:
        document = {
            "key_id": row.key_id,
            "guild_id": row.guild_id,
            "webhook_secret": row.webhook_secret,
            "webhook_path": f"/v1/webhooks/{row.key_id}",
            "previous_secret_until": until.isoformat(),
        }
        out.write(json.dumps(document) + "\n")
        return 0
    previous = mask(row.previous_secret or "")
    ends = (
        f"keeps verifying until {_when(until)} ({args.overlap:g} h)"
        if overlap
        else "stopped verifying now"
    )
    out.write(
        f"Rotated the webhook signing secret of key {row.key_id} (server {row.guild_id}).\n\n"
        f"New webhook signing secret (Standard Webhooks, for POST /v1/webhooks/{row.key_id}):\n"
        f"  {row.webhook_secret}\n\n"
        f"The previous secret ({previous}) {ends}: meanwhile a sender may sign with either,"
        " or with both (several signatures in webhook-signature, separated by spaces).\n"
        "Keep the new secret somewhere safe: it is not shown again.\n"
    )
    return 0
