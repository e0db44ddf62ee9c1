"""The only SQL in thothbot: one SQLite file through aiosqlite, schema from numbered migrations.

One module per aggregate, each with its SQL and row mappers: ``guilds`` (rules, settings,
Discord setup, roster, saved answers), ``tickets`` (tickets, numbers, firings, routing, SLA
clocks, answers sent, #ops messages), ``channels`` (openings, closings, transcripts), ``outbox``
(deliveries, disabled destinations), ``ingress`` (API keys, idempotency, events) and
``classifications`` (the classifier cache). ``tx.Tx`` composes them into one unit of work;
``sqlite`` opens the database and runs units; ``group_commit`` lets small units share a
commit; ``backup`` is ``thothbot db``.
"""

from thothbot.store.sqlite import (
    FILE_MODE,
    MEMORY,
    SIDE_FILES,
    DatabaseFault,
    SchemaTooNew,
    Store,
    StoreUnavailable,
    announce,
    applied_versions,
    explain,
    migrate,
    migrations,
)
from thothbot.store.tx import Tx

__all__ = [
    "FILE_MODE",
    "MEMORY",
    "SIDE_FILES",
    "DatabaseFault",
    "SchemaTooNew",
    "Store",
    "StoreUnavailable",
    "Tx",
    "announce",
    "applied_versions",
    "explain",
    "migrate",
    "migrations",
]
