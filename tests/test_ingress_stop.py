"""``thothbot ingress`` as a process: a stop signal (``docker stop``, systemd, Ctrl-C) ends it
cleanly, with exit 0 and a "stopped" line, and what it accepted is kept and finished after the
restart. Real processes, real signals, a real database file, HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

EVENT = {
    "ticket_id": "T-77",
    "subject": "Checkout is broken",
    "body": "Every card is declined since this morning.",
    "customer_tier": "pro",
    "channel": "email",
}


def _thothbot() -> str:
    script = Path(sys.executable).with_name("thothbot")
    assert script.exists()
    return str(script)


def _environment(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THOTH_", "DISCORD_"))}
    return {**env, "THOTH_DB_PATH": str(db), "THOTH_INGRESS_PORT": "0", "LOG_LEVEL": "INFO"}


def _start(folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    ingress = subprocess.Popen(
        [_thothbot(), "ingress"],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert ingress.stdout is not None
    line = ingress.stdout.readline()  # pytest-timeout ends the test if it never comes
    assert line.startswith("thothbot ingress listening on http://127.0.0.1:"), line
    return ingress, line.split(" on ")[1].split()[0]


def _signed(key: dict[str, Any], message_id: str) -> tuple[bytes, dict[str, str]]:
    """One Standard Webhooks delivery, signed here as a sender would (not with our code)."""
    body = json.dumps({"type": "support.ticket.created", "data": EVENT}).encode()
    timestamp = str(int(time.time()))
    secret = base64.b64decode(key["webhook_secret"].removeprefix("whsec_"))
    digest = hmac.new(secret, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return body, {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode(),
    }


def _signed_delivery(url: str, key: dict[str, Any], message_id: str) -> int:
    body, headers = _signed(key, message_id)
    request = urllib.request.Request(
        url + key["webhook_path"], data=body, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def _stop(ingress: subprocess.Popen[str], signum: signal.Signals) -> tuple[str, str]:
    ingress.send_signal(signum)
    out, err = ingress.communicate(timeout=60)
    assert ingress.returncode == 0, err
    assert out.splitlines()[-1] == "thothbot ingress stopped"
    assert f"{signum.name} received" in err
    assert "Traceback" not in err
    return out, err


def _events(db: Path) -> list[tuple[str, int | None]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT status, ticket_id FROM ingress_events").fetchall()
    return [(str(status), ticket) for status, ticket in rows]


def _create_key(folder: Path, env: dict[str, str]) -> dict[str, Any]:
    created = subprocess.run(
        [_thothbot(), "keys", "create", "--guild", "42", "--json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key: dict[str, Any] = json.loads(created.stdout)
    return key


def test_a_stop_signal_ends_the_ingress_cleanly_and_keeps_what_it_accepted(
    tmp_path: Path,
) -> None:
    db = tmp_path / "data" / "thothbot.db"
    env = _environment(db)
    key = _create_key(tmp_path, env)

    ingress, url = _start(tmp_path, env)
    try:
        assert _signed_delivery(url, key, "msg_stop_1") == 202
    finally:
        _stop(ingress, signal.SIGTERM)
    [(status, _)] = _events(db)  # stored before it was answered: done, or pending if cut short
    assert status in {"pending", "done"}

    ingress, url = _start(tmp_path, env)
    try:
        deadline = time.monotonic() + 30
        while _events(db)[0][0] != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _signed_delivery(url, key, "msg_stop_1") == 202  # a redelivery: the same event
    finally:
        _stop(ingress, signal.SIGINT)
    [(status, ticket)] = _events(db)
    assert (status, ticket) == ("done", 1)
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM tickets").fetchone() == (1,)


def test_a_sender_stalled_in_its_body_does_not_hold_the_stop(tmp_path: Path) -> None:
    """aiohttp reads nothing more once shutting down: a body still arriving cannot complete, and
    without a bound the stop would wait 60 s for it, past ``docker stop``'s grace."""
    db = tmp_path / "thothbot.db"
    env = _environment(db)
    key = _create_key(tmp_path, env)
    ingress, url = _start(tmp_path, env)
    host, port = url.removeprefix("http://").split(":")
    body, headers = _signed(key, "msg_stalled")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    try:
        with socket.create_connection((host, int(port)), timeout=60) as client:
            # "Expect: 100-continue": "100 Continue" comes once the request is in its handler,
            # which then waits for a body that only comes after the ingress has stopped.
            client.sendall(
                f"POST {key['webhook_path']} HTTP/1.1\r\nHost: {host}\r\n{head}"
                f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
            )
            assert client.recv(1024).startswith(b"HTTP/1.1 100 Continue")
            ingress.send_signal(signal.SIGTERM)
            out, err = ingress.communicate(timeout=30)  # not the 60 s aiohttp would wait
            assert ingress.returncode == 0, err
            assert out.splitlines()[-1] == "thothbot ingress stopped"
            assert client.recv(1024) == b""  # closed without an answer: the sender sends it again
    finally:
        if ingress.poll() is None:  # only when the test failed: not left behind
            ingress.kill()
            ingress.wait()
    assert _events(db) == []  # nothing half-accepted
