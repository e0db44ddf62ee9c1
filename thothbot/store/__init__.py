"""The only SQL in thothbot: its interfaces, and the SQLite database behind them.

``interfaces`` holds what the service layer types against and a backend implements: one
Protocol per aggregate (``GuildsTx``, ``TicketsTx``, ``ChannelsTx``, ``OutboxTx``, ``IngressTx``,
``ClassificationsTx``), the ``Tx`` a unit of work receives, and the ``Database`` that runs units.
``group_commit`` lets small units share a commit over any ``Database``.

SQLite, one file through one connection on its own thread (``thread``), schema from numbered
migrations: ``sqlite`` opens the database (``Store.open``) and runs units; one module per
aggregate holds its SQL and row mappers (``guilds``, ``tickets``, ``channels``, ``outbox``,
``ingress``, ``classifications``) over ``base``; ``tx.SqliteTx`` composes them; ``backup`` is
``thothbot db``.
"""

from thothbot.store.interfaces import Database, StoreFault, Tx
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

__all__ = [
    "FILE_MODE",
    "MEMORY",
    "SIDE_FILES",
    "Database",
    "DatabaseFault",
    "SchemaTooNew",
    "Store",
    "StoreFault",
    "StoreUnavailable",
    "Tx",
    "announce",
    "applied_versions",
    "explain",
    "migrate",
    "migrations",
]
