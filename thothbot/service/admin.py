"""The operator's database (``thothbot db``): what it holds, an online backup, a restore; and
the store's refusals the command line words for the operator.

The work is the backup module's (SQLite's online backup API, beside the store); this service
names the database the configuration points at, so the command line never reaches the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from thothbot.config import Config
from thothbot.store import StoreUnavailable, announce, backup
from thothbot.store.backup import DatabaseInfo

__all__ = ["Database", "DatabaseInfo", "StoreUnavailable", "announce"]


@dataclass(frozen=True, slots=True)
class Database:
    """The database file at ``path`` (THOTH_DB_PATH)."""

    path: Path

    @classmethod
    def from_config(cls, config: Config) -> Database:
        return cls(Path(config.db_path))

    def info(self) -> DatabaseInfo:
        """What it holds, read without changing it."""
        return backup.info(self.path)

    def backup(self, target: Path) -> int:
        """Copy it, live, into the new file ``target``; the bytes written."""
        return backup.backup(self.path, target)

    def secret_key_note(self) -> str:
        """What every backup needs beside it: the key that seals its secrets."""
        return backup.secret_key_note(self.path)

    def restore(self, source: Path) -> Path:
        """Put the backup ``source`` in its place (nothing may have it open); where the
        database as it was is kept."""
        return backup.restore(self.path, source)
