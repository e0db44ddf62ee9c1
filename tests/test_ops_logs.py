"""LOG_FORMAT=json lines: one object each, ids kept, an error by its type and place only."""

from __future__ import annotations

import json
import logging
import sys

from thothbot.logs import JsonFormatter, ReconnectsInOneLine


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("thothbot.test", logging.ERROR, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_line_is_one_object_with_its_ids() -> None:
    line = JsonFormatter().format(record("ticket %s closed", 7, ticket_id=7, guild_id="42"))
    assert "\n" not in line
    found = json.loads(line)
    assert found["message"] == "ticket 7 closed"
    assert found["level"] == "ERROR"
    assert found["logger"] == "thothbot.test"
    assert (found["ticket_id"], found["guild_id"]) == ("7", "42")
    assert found["time"].endswith("+00:00")


def test_an_error_is_logged_by_type_and_place_never_its_message() -> None:
    try:
        raise ValueError("customer wrote dana@example.org")
    except ValueError:
        failed = record("opening a ticket failed")
        failed.exc_info = sys.exc_info()
    line = JsonFormatter().format(failed)
    found = json.loads(line)
    assert found["error"] == "ValueError"
    assert any("test_ops_logs.py" in where for where in found["where"])
    assert "dana@example.org" not in line
    # The control: a text formatter would have printed it.
    assert "dana@example.org" in logging.Formatter().format(failed)


def test_a_reconnect_traceback_becomes_one_line() -> None:
    try:
        raise OSError("Connect call failed ('127.0.0.1', 9)")
    except OSError:
        noisy = record("Attempting a reconnect in %.2fs", 1.5)
        noisy.exc_info = sys.exc_info()
    assert ReconnectsInOneLine().filter(noisy)
    text = logging.Formatter().format(noisy)
    assert "Traceback" not in text
    assert text == (
        "Attempting a reconnect in 1.50s (Discord's gateway: Connect call failed ('127.0.0.1', 9))"
    )
