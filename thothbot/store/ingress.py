"""The ingress's tables: API keys (hash and sealed signing secret), idempotency records and
the events accepted for the worker."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from typing import Any, Literal

from thothbot.core.ingress import ApiKeyRow, IdempotencyRecord, IngressEventRow
from thothbot.core.models import (
    Ticket,
    TicketSource,
)
from thothbot.store.base import SqliteBase, from_ts, ts

_SELECT_API_KEY = (
    "SELECT key_id, guild_id, key_hash, webhook_secret, created_at, revoked_at,"
    " previous_secret, previous_expires_at FROM api_keys"
)


_SELECT_INGRESS_EVENT = (
    "SELECT event_id, key_id, guild_id, name, payload, via, received_at, status, ticket_id,"
    " error FROM ingress_events"
)


_INSERT_EVENT = (
    "INSERT INTO ingress_events (event_id, key_id, guild_id, name, payload, via, received_at,"
    " status, ticket_id, error) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
)
# The key given last is live: nothing is written for a revoked one.
_WHILE_LIVE = " WHERE EXISTS (SELECT 1 FROM api_keys WHERE key_id = ? AND revoked_at IS NULL)"
_SAVE_RECORD = (
    "INSERT INTO idempotency_records (key_id, kind, request_key, request_hash, status, answer,"
    " created_at) SELECT ?, ?, ?, ?, ?, ?, ?" + _WHILE_LIVE + " ON CONFLICT (key_id, kind,"
    " request_key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status,"
    " answer = excluded.answer, created_at = excluded.created_at"
    " WHERE idempotency_records.created_at <= ?"
)


def _event_values(event: IngressEventRow) -> tuple[Any, ...]:
    return (
        event.event_id,
        event.key_id,
        event.guild_id,
        event.name,
        json.dumps(event.payload, ensure_ascii=False),
        event.via,
        ts(event.received_at),
        event.status,
        event.ticket_id,
        event.error,
    )


def _ingress_event(row: sqlite3.Row) -> IngressEventRow:
    return IngressEventRow(
        row[0],
        row[1],
        row[2],
        row[3],
        json.loads(row[4]),
        row[5],
        datetime.fromisoformat(row[6]),
        row[7],
        row[8],
        row[9],
    )


class SqliteIngress(SqliteBase):
    """API keys, idempotency records and ingress events, inside one unit of work."""

    # API keys

    def insert_api_key(self, key: ApiKeyRow) -> None:
        self._conn.execute(
            "INSERT INTO api_keys (key_id, guild_id, key_hash, webhook_secret, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                key.key_id,
                key.guild_id,
                key.key_hash,
                self._sealer.seal(key.webhook_secret, f"api_keys:{key.key_id}"),
                ts(key.created_at),
            ),
        )

    def api_key(self, key_id: str) -> ApiKeyRow | None:
        row = self._one(_SELECT_API_KEY + " WHERE key_id = ?", (key_id,))
        return self._api_key(row) if row is not None else None

    def _api_key(self, row: sqlite3.Row) -> ApiKeyRow:
        context = f"api_keys:{row[0]}"
        return ApiKeyRow(
            row[0],
            row[1],
            row[2],
            self._sealer.open(row[3], context),
            datetime.fromisoformat(row[4]),
            from_ts(row[5]),
            self._sealer.open(row[6], context) if row[6] is not None else None,
            from_ts(row[7]),
        )

    def rotate_webhook_secret(
        self, key_id: str, secret: str, at: datetime, overlap: timedelta
    ) -> ApiKeyRow | None:
        row = self.api_key(key_id)
        if row is None or row.revoked_at is not None:
            return row
        context = f"api_keys:{key_id}"
        self._conn.execute(
            "UPDATE api_keys SET webhook_secret = ?, previous_secret = ?,"
            " previous_expires_at = ? WHERE key_id = ?",
            (
                self._sealer.seal(secret, context),
                self._sealer.seal(row.webhook_secret, context),
                ts(at + overlap),
                key_id,
            ),
        )
        return self.api_key(key_id)

    def api_keys(self, guild_id: str | None = None) -> list[ApiKeyRow]:
        if guild_id is None:
            rows = self._all(_SELECT_API_KEY + " ORDER BY created_at, key_id")
        else:
            rows = self._all(
                _SELECT_API_KEY + " WHERE guild_id = ? ORDER BY created_at, key_id", (guild_id,)
            )
        return [self._api_key(r) for r in rows]

    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKeyRow | None:
        self._conn.execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?",
            (ts(at), key_id),
        )
        return self.api_key(key_id)

    # Idempotency

    def idempotency_record(
        self, key_id: str, kind: str, request_key: str, since: datetime
    ) -> IdempotencyRecord | None:
        row = self._one(
            "SELECT request_hash, status, answer, created_at FROM idempotency_records"
            " WHERE key_id = ? AND kind = ? AND request_key = ? AND created_at > ?",
            (key_id, kind, request_key, ts(since)),
        )
        if row is None:
            return None
        return IdempotencyRecord(row[0], row[1], row[2], datetime.fromisoformat(row[3]))

    def save_idempotency_record(
        self, key_id: str, kind: str, request_key: str, record: IdempotencyRecord
    ) -> None:
        # REPLACE: an expired record not purged yet gives way to the new request.
        self._conn.execute(
            "INSERT OR REPLACE INTO idempotency_records (key_id, kind, request_key,"
            " request_hash, status, answer, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key_id,
                kind,
                request_key,
                record.request_hash,
                record.status,
                record.answer,
                ts(record.created_at),
            ),
        )

    def accept_ingress_event(
        self,
        event: IngressEventRow,
        request_key: str | None,
        first: IdempotencyRecord,
        since: datetime,
    ) -> IdempotencyRecord | Literal["revoked"] | None:
        # The common case in two statements, without opening the key's sealed secrets: the
        # record goes in (or replaces an expired one) only while the key is live; nothing
        # written means a revoked key or a live record, told apart by reading them.
        if request_key is None:
            written = self._conn.execute(
                _INSERT_EVENT + _WHILE_LIVE, (*_event_values(event), event.key_id)
            ).rowcount
            return None if written else "revoked"
        record = (first.request_hash, first.status, first.answer, ts(first.created_at))
        written = self._conn.execute(
            _SAVE_RECORD,
            (event.key_id, event.via, request_key, *record, event.key_id, ts(since)),
        ).rowcount
        if not written:
            current = self._one("SELECT revoked_at FROM api_keys WHERE key_id = ?", (event.key_id,))
            if current is None or current[0] is not None:
                return "revoked"
            earlier = self.idempotency_record(event.key_id, event.via, request_key, since)
            if earlier is None:  # cannot be: the record that stopped the write is live
                raise RuntimeError(f"no live idempotency record stopped {request_key!r}")
            return earlier
        self.insert_ingress_event(event)
        return None

    def purge_idempotency_records(self, before: datetime) -> int:
        cursor = self._conn.execute(
            "DELETE FROM idempotency_records WHERE created_at <= ?", (ts(before),)
        )
        return cursor.rowcount

    # Ingress events

    def insert_ingress_event(self, event: IngressEventRow) -> None:
        self._conn.execute(_INSERT_EVENT, _event_values(event))

    def pending_ingress_events(self, limit: int = 100) -> list[IngressEventRow]:
        rows = self._all(
            _SELECT_INGRESS_EVENT
            + " WHERE status = 'pending' ORDER BY received_at, event_id LIMIT ?",
            (limit,),
        )
        return [_ingress_event(r) for r in rows]

    def count_pending_ingress_events(self) -> int:
        row = self._one("SELECT COUNT(*) FROM ingress_events WHERE status = 'pending'")
        return int(row[0])

    def finish_ingress_event(
        self, event_id: str, status: str, ticket_id: int | None, error: str | None = None
    ) -> None:
        self._conn.execute(
            "UPDATE ingress_events SET status = ?, ticket_id = ?, error = ? WHERE event_id = ?",
            (status, ticket_id, error, event_id),
        )

    def purge_ingress_events(self, before: datetime) -> int:
        cursor = self._conn.execute(
            "DELETE FROM ingress_events WHERE received_at <= ? AND status != 'pending'"
            " AND (ticket_id IS NULL"
            " OR ticket_id IN (SELECT id FROM tickets WHERE status = 'closed'))",
            (ts(before),),
        )
        return cursor.rowcount

    def api_ticket(
        self, guild_id: str, customer_id: str, ref: str, created_at: datetime
    ) -> int | None:
        row = self._one(
            "SELECT id FROM tickets WHERE guild_id = ? AND customer_id = ? AND source = 'api'"
            " AND ref = ? AND created_at = ?",
            (guild_id, customer_id, ref, ts(created_at)),
        )
        return row[0] if row is not None else None

    def source_event(self, ticket: Ticket) -> tuple[str, dict[str, Any]] | None:
        if ticket.source != TicketSource.API or ticket.ref is None:
            return None
        key_id = ticket.customer_id.removeprefix("api:")
        row = self._one(
            "SELECT name, payload FROM ingress_events WHERE key_id = ?"
            " AND json_extract(payload, '$.ticket_id') = ? AND guild_id = ?"
            " ORDER BY received_at DESC LIMIT 1",
            (key_id, ticket.ref, ticket.guild_id),
        )
        return (row[0], json.loads(row[1])) if row is not None else None
