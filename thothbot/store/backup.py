"""``thothbot db``: what a database holds, an online backup of it, and putting one back.

Backups use SQLite's online backup API: pages are copied inside one read transaction, which in
WAL mode never blocks the bot's writes, so a backup taken while the bot runs is a consistent
picture of one moment. A restore copies the other way, into the live file, through SQLite too:
a stale ``-wal`` beside the file can then never be replayed over the restored pages.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from thothbot.store.sqlite import (
    FILE_MODE,
    SIDE_FILES,
    StoreUnavailable,
    announce,
    applied_versions,
    explain,
    migrations,
)

# Where the "secrets" helper keeps the generated master key when THOTH_SECRET_KEY is unset.
SECRET_KEY_FILE = "secret.key"  # noqa: S105  (a file name, not a secret)


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    path: Path
    schema: int  # the highest migration applied; 0 for an empty file
    known: int  # the highest migration this thothbot ships
    sizes: dict[str, int]  # the database and its -wal and -shm, in bytes, those that exist
    rows: dict[str, int]  # table -> rows

    @property
    def schema_state(self) -> str:
        if self.schema == self.known:
            return "current"
        if self.schema > self.known:
            return "newer than this thothbot: it refuses to open it"
        return "older: `thothbot run` upgrades it at start"


def known_schema() -> int:
    return max(version for version, _, _ in migrations())


def _existing(path: Path) -> Path:
    if not path.exists():
        raise StoreUnavailable(f"there is no database at {path.resolve()} (THOTH_DB_PATH)")
    if path.is_dir():
        raise StoreUnavailable(f"{path.resolve()} is a folder, not a database")
    return path.resolve()


@contextlib.contextmanager
def _connect(path: Path, *, readonly: bool) -> Iterator[sqlite3.Connection]:
    """A plain connection that says what a broken file means, in words."""
    try:
        conn = _open(path, readonly=readonly)
    except sqlite3.Error as error:
        raise StoreUnavailable(
            f"cannot open the database at {path}: {_words(error, path)}"
        ) from None
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        yield conn
    except sqlite3.Error as error:
        raise StoreUnavailable(f"the database at {path}: {_words(error, path)}") from None
    finally:
        conn.close()


def _open(path: Path, *, readonly: bool) -> sqlite3.Connection:
    uri = f"{path.as_uri()}?mode={'ro' if readonly else 'rw'}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        # SQLite opens lazily: read now, so a file that cannot be read is named as such.
        conn.execute("PRAGMA schema_version")
    except sqlite3.Error:
        # A WAL database on a read-only mount cannot make its -shm: with no -wal beside it,
        # nothing can change the file, so it is read as immutable (a backup still works).
        wal = path.with_name(path.name + "-wal")
        if not readonly or wal.exists() or not os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            raise
        conn = sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True, isolation_level=None)
        conn.execute("PRAGMA schema_version")
    return conn


def _words(error: sqlite3.Error, path: Path) -> str:
    return explain(error, path) or str(error)


def info(path: Path) -> DatabaseInfo:
    """What the database at ``path`` holds, read without changing it."""
    where = _existing(path)
    announce.info("using the database at %s", where)
    with _connect(where, readonly=True) as conn:
        applied = applied_versions(conn)
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY name"
            )
        ]
        # Table names come from the file's own catalogue, quoted as identifiers.
        rows = {
            table: int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # noqa: S608
            for table in tables
        }
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        file = where.with_name(where.name + suffix)
        with contextlib.suppress(OSError):
            sizes[file.name] = file.stat().st_size
    return DatabaseInfo(where, max(applied, default=0), known_schema(), sizes, rows)


def secret_key_note(path: Path) -> str:
    """The reminder every backup carries: its secrets are sealed with a key it does not hold."""
    key_file = path.resolve().with_name(SECRET_KEY_FILE)
    return (
        "This backup is useless without the secret key that seals its secrets: THOTH_SECRET_KEY,"
        f" or the file {key_file} when that variable is unset. Keep a copy of the key, apart"
        " from the backups: whoever holds both can read the secrets."
    )


def backup(path: Path, target: Path) -> int:
    """Copy the live database at ``path`` into a new file ``target``; the bytes written.

    Safe while the bot runs. The copy is written beside ``target`` and renamed into place once
    checked, so ``target`` is either a whole backup or absent.
    """
    where = _existing(path)
    announce.info("using the database at %s", where)
    target = target.resolve()
    if target.exists():
        raise StoreUnavailable(f"{target} already exists: choose a new file for the backup")
    if target == where:
        raise StoreUnavailable("the backup cannot be the database itself")
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.unlink(missing_ok=True)
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    except OSError as error:
        raise StoreUnavailable(
            f"cannot write the backup in {target.parent}: {error.strerror or error}"
        ) from None
    try:
        with _connect(where, readonly=True) as source, _connect(partial, readonly=False) as copy:
            source.backup(copy)
            # A backup is only worth keeping if it reads back whole.
            (check,) = copy.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise StoreUnavailable(f"the backup did not check out ({check}): try again")
            # One file: the copy's own journal folded in, so it can be moved around alone.
            copy.execute("PRAGMA journal_mode = DELETE")
        partial.rename(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def restore(path: Path, source: Path, now: datetime | None = None) -> Path:
    """Put the backup ``source`` in place of the database at ``path``; the file where the
    database as it was is kept.

    Refused while anything has the database open (the bot, the ingress, another command):
    overwriting pages under a running bot would lose what it writes and confuse what it reads.
    """
    where = _existing(path)
    announce.info("using the database at %s", where)
    backup_file = _existing(source)
    with _connect(backup_file, readonly=True) as check:
        (state,) = check.execute("PRAGMA quick_check").fetchone()
        if state != "ok":
            raise StoreUnavailable(f"{backup_file} is damaged ({state}): it was not restored")
        applied = applied_versions(check)
    if not applied:
        raise StoreUnavailable(f"{backup_file} is not a thothbot database: it was not restored")
    if max(applied) > known_schema():
        raise StoreUnavailable(
            f"{backup_file} was written by a newer thothbot (schema {max(applied)}; this one"
            f" knows up to {known_schema()}): restore it with that version"
        )
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    kept = where.with_name(f"{where.name}.before-restore-{moment}")
    with _connect(where, readonly=False) as live:
        live.execute("PRAGMA busy_timeout = 0")
        # Exclusive locking mode keeps every lock this connection takes until it closes. In
        # WAL mode each open connection holds a shared lock for as long as it is open, so
        # the exclusive lock is refused while anyone else has the database open.
        live.execute("PRAGMA locking_mode = EXCLUSIVE")
        try:
            live.execute("BEGIN EXCLUSIVE")
            live.execute("COMMIT")
        except sqlite3.OperationalError:
            raise StoreUnavailable(
                f"the database at {where} is in use (is thothbot running?): stop it, then"
                " restore again"
            ) from None
        os.close(os.open(kept, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
        with _connect(kept, readonly=False) as keep:
            live.backup(keep)
            keep.execute("PRAGMA journal_mode = DELETE")
        with _connect(backup_file, readonly=True) as backup_db:
            backup_db.backup(live)
        live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return kept


def side_files(path: Path) -> list[Path]:
    """The database's companions that a copy by hand must move or delete with it."""
    return [path.with_name(path.name + side) for side in SIDE_FILES]
