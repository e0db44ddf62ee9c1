"""``LOG_FORMAT=json``: one JSON object a line, for a log collector.

A line holds the time, level, logger and message, and the ids a call passes as ``extra``
(``ticket_id``, ``guild_id``, ...). thothbot logs ids, never what people wrote; so that a line
cannot carry it by another way, an error is logged by its type and where it happened, not its
message (which may quote data), and discord.py's debug lines, which print whole gateway
payloads, message content included, are not logged at all.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime

# Ids a log call may pass as ``extra``: they go into the object as they are.
ID_FIELDS = (
    "ticket_id",
    "guild_id",
    "event_id",
    "delivery_id",
    "key_id",
    "interaction_id",
    "channel_id",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ID_FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                line[field] = str(value)
        if record.exc_info and record.exc_info[0] is not None:
            error, _, trace = record.exc_info
            line["error"] = error.__name__
            line["where"] = [
                f"{frame.filename}:{frame.lineno} in {frame.name}"
                for frame in traceback.extract_tb(trace)
            ]
        return json.dumps(line, ensure_ascii=False)


class ReconnectsInOneLine(logging.Filter):
    """discord.py logs every failed gateway reconnect with a whole traceback; an operator
    needs only why, since it keeps trying on its own (and /readyz says it is not ready)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and "reconnect" in str(record.msg):
            error = record.exc_info[1]
            reason = str(error) or type(error).__name__
            record.msg = f"{record.getMessage()} (Discord's gateway: {reason})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_reconnects() -> None:
    client = logging.getLogger("discord.client")
    if not any(isinstance(f, ReconnectsInOneLine) for f in client.filters):
        client.addFilter(ReconnectsInOneLine())


def configure_json(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # discord.py's DEBUG lines hold raw gateway events: messages as customers wrote them.
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLevelName(level)))
