"""The SQLite database: opening it (folder and file modes, migrations, sealing), running units
of work on its own thread, and database faults said in plain words.

Work is done in units: ``await store.run(fn)`` calls ``fn(tx)`` on the database's thread inside
one ``BEGIN IMMEDIATE`` transaction, so a unit is atomic, units never interleave, and a whole
gather -> decide -> save costs one thread hop instead of one per statement.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr

from thothbot import sealing
from thothbot.store.base import Batch, ts
from thothbot.store.interfaces import StoreFault, Tx
from thothbot.store.thread import DatabaseThread
from thothbot.store.tx import SqliteTx

log = logging.getLogger(__name__)

T = TypeVar("T")

MEMORY = ":memory:"


class StoreUnavailable(Exception):
    """The database cannot be opened: a path, permission or file problem, said in plain words."""


class DatabaseFault(StoreUnavailable, StoreFault):
    """The database file failed while working (full disk, read-only, damaged), in plain words.

    A ``StoreFault``, so code that keeps work pending on database trouble (the ingress worker)
    treats it as any other. What was committed before is kept: SQLite rolls the failed
    transaction back.
    """


class SchemaTooNew(StoreUnavailable):
    """The database was migrated by a newer thothbot: opening it could damage it."""


# Who opens which file, said once per open: a relative THOTH_DB_PATH run from another folder
# would otherwise silently make a second, empty database.
announce = logging.getLogger("thothbot.database")

# Created by whoever opens a database first: the database holds webhook secrets and every
# ticket's text, so only its owner reads it. SQLite gives its -wal and -shm the database's mode.
FOLDER_MODE = 0o700
FILE_MODE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")


class Store:
    """An open SQLite database (a ``Database``): ``run`` units of work, ``close`` when done."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        sealer: sealing.Sealer,
        *,
        thread: DatabaseThread | None,
    ) -> None:
        self._conn = conn
        self._thread = thread
        self.path = path
        self.sealer = sealer
        self._batch: Batch | None = None
        self._seen_version: int | None = None  # ``changed_elsewhere``'s last data_version

    @classmethod
    async def open(
        cls, path: str | Path, *, threaded: bool = True, secret_key: SecretStr | None = None
    ) -> Store:
        """Open (and migrate) the database at ``path``, with its secrets sealed by
        ``secret_key`` (``THOTH_SECRET_KEY``), else by the key file beside it.

        ``threaded`` runs every unit on the database's own thread, so the event loop never waits on
        the disk: what the bot and the ingress need. A batch with one caller and nothing else on
        its loop (``thothbot simulate`` on an in-memory database) passes ``threaded=False`` and
        runs units in place, saving the two thread switches per unit (about a third of its time).
        """
        path = str(path)
        key = secret_key.get_secret_value() if secret_key is not None else None
        try:
            created = path != MEMORY and _make_room(Path(path))
            store = await cls._open(path, threaded=threaded, key=key)
        except sealing.SealingError as error:
            raise StoreUnavailable(str(error)) from None
        except StoreUnavailable as error:
            raise type(error)(f"cannot open the database at {path}: {error}") from error
        except (OSError, sqlite3.Error) as error:
            reason = _diagnose(Path(path)) or _reason(error)
            raise StoreUnavailable(f"cannot open the database at {path}: {reason}") from error
        if path != MEMORY:
            where = _absolute(path)
            if created:
                announce.info("created a new, empty database at %s", where)
            else:
                announce.info("using the database at %s", where)
        return store

    @classmethod
    async def _open(cls, path: str, *, threaded: bool, key: str | None) -> Store:
        if not threaded:
            conn, sealer = _connect(path, key)
            return cls(conn, path, sealer, thread=None)
        thread = DatabaseThread()
        try:
            conn, sealer = await thread.call(_connect, path, key)
        except BaseException:
            await thread.stop(lambda: None)  # the connection, if made, was closed on the thread
            raise
        return cls(conn, path, sealer, thread=thread)

    async def changed_elsewhere(self) -> bool:
        """Whether another connection committed since the last call (``PRAGMA data_version``
        changes only for other connections' commits, never for this one's)."""
        version = await self._call(_data_version, self._conn)
        seen, self._seen_version = self._seen_version, version
        return seen is not None and version != seen

    async def close(self) -> None:
        if self._thread is not None:
            await self._thread.stop(self._conn.close)
        else:
            self._conn.close()

    @contextlib.asynccontextmanager
    async def batch(self, every: int = 1000) -> AsyncIterator[None]:
        """Units run inside this block share transactions, committed every ``every`` units and
        when it ends: one commit for many. Each unit runs under its own savepoint, so one that
        raises is rolled back alone and the others are kept. What the block ran before an error
        that leaves it is committed too, unless the database itself failed (then SQLite has
        rolled back the open transaction). The batch is the store's: every unit run on it
        meanwhile, whoever asks, joins it. Inside a batch, a batch adds nothing."""
        if self._batch is not None:
            yield
            return
        self._batch = Batch(every)
        try:
            yield
        finally:
            self._batch = None
            await self._call(_commit, self._conn)

    async def run(self, unit: Callable[[Tx], T]) -> T:
        """Run ``unit`` in one transaction on the database thread (in a batch, under a savepoint
        of the batch's transaction); roll back if it raises."""
        return await self._call(_transaction, self._conn, unit, self.sealer, self._batch)

    async def _call(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` on the database thread, its SQLite errors said in plain words."""
        try:
            if self._thread is None:
                return work(*args)
            return await self._thread.call(work, *args)
        except sqlite3.Error as error:
            if isinstance(error, DatabaseFault):
                raise
            fault = explain(error, Path(self.path))
            if fault is not None:
                raise DatabaseFault(f"the database at {self.path}: {fault}") from error
            if isinstance(error, sqlite3.OperationalError):  # locked or busy past the wait
                raise StoreFault(f"the database at {self.path}: {error}") from error
            raise


def _absolute(path: str) -> Path:
    return Path(path).resolve()


def _make_room(path: Path) -> bool:
    """Create the database's folder (0700) and file (0600), saying whether the file is new;
    refuse a folder where the file goes, in words."""
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise StoreUnavailable(f"cannot create its folder {folder}: a file of that name is there")
    if not folder.exists():
        try:
            folder.mkdir(parents=True, mode=FOLDER_MODE)
        except FileExistsError:
            pass  # made meanwhile by another process
        except OSError as error:
            raise StoreUnavailable(
                f"cannot create its folder {folder}: {_reason(error)}"
            ) from error
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder, not a file")
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    except FileExistsError:
        _tighten(path)
        return False
    except OSError as error:
        raise StoreUnavailable(
            f"cannot create it in {folder}: {_reason(error)} (thothbot must be able to write"
            " to the database's folder)"
        ) from error
    return True


def _tighten(path: Path) -> None:
    """Take group and others' access away from a database made by an older thothbot."""
    for file in (path, *(path.with_name(path.name + side) for side in SIDE_FILES)):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(mode & 0o700)
                log.warning("%s was readable by others: now only by its owner", file)
        except OSError:
            pass  # missing, not ours, or on a read-only disk: opening it says what matters


def explain(error: sqlite3.Error, path: Path) -> str | None:
    """What a database error at ``path`` means for the operator, or None when it is not the
    file's fault (a bug, a constraint)."""
    fault = _fault(error)
    if fault is None:
        return None
    if error.sqlite_errorcode & 0xFF in (_READONLY, _CANTOPEN, _IOERR):
        return _diagnose(path) or f"it {fault}"
    return f"it {fault}"


def _diagnose(path: Path) -> str | None:
    """Why SQLite cannot write the database, when the file system can tell: SQLite's own
    errors say "unable to open" or "disk I/O error" for a read-only mount."""
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return (
                "it is on a read-only disk (a read-only mount?): thothbot must be able to write"
                " to the database and its folder"
            )
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            return (
                "permission denied: the user thothbot runs as must be able to write to the"
                " database and its folder"
            )
    except OSError:
        return None
    return None


def _reason(error: OSError | sqlite3.Error) -> str:
    """Why a file operation failed, in words."""
    if isinstance(error, sqlite3.Error):
        fault = _fault(error)
        return f"it {fault}" if fault else str(error)
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.EROFS:
        return "the disk is mounted read-only"
    if error.errno == errno.ENOSPC:
        return "the disk is full"
    return str(error.strerror or error).lower() if error.strerror else str(error)


# SQLite's primary result codes (the low byte of the extended code) worth saying in words.
_FULL, _READONLY, _PERM, _CORRUPT, _NOTADB, _CANTOPEN, _IOERR = 13, 8, 3, 11, 26, 14, 10


def _fault(error: sqlite3.Error) -> str | None:
    """What a database error means for the operator, or None when it is not the file's fault."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    if primary == _FULL:
        return (
            "is on a full disk: nothing new can be saved until space is freed (what was saved"
            " before is kept)"
        )
    if primary in (_READONLY, _PERM):
        return (
            "is read-only (a read-only disk or mount, or file permissions): thothbot must be"
            " able to write to the database and its folder"
        )
    if primary in (_CORRUPT, _NOTADB):
        return (
            "is not a thothbot database, or it is damaged: restore it from a backup"
            " (thothbot db restore FILE)"
        )
    if primary == _CANTOPEN:
        return "cannot be opened: check that its folder exists and that thothbot may write there"
    if primary == _IOERR:
        return "could not be read or written: the disk failed, is full or is read-only"
    return None


def _connect(path: str, key: str | None) -> tuple[sqlite3.Connection, sealing.Sealer]:
    """A prepared connection (closed again should preparing fail) and its sealer. It leaves
    transactions to ``_transaction``: no implicit BEGIN."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn, _prepare(conn, path, key)
    except BaseException:
        conn.close()
        raise


def _transaction(
    conn: sqlite3.Connection,
    unit: Callable[[SqliteTx], T],
    sealer: sealing.Sealer,
    batch: Batch | None = None,
) -> T:
    if batch is not None:
        return _in_batch(conn, unit, sealer, batch)
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = unit(SqliteTx(conn, sealer))
        conn.execute("COMMIT")
    except BaseException:
        # SQLite has already rolled back after some errors (a full disk, an I/O error): a
        # second rollback would hide the first error behind "no transaction is active".
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result


def _in_batch(
    conn: sqlite3.Connection, unit: Callable[[SqliteTx], T], sealer: sealing.Sealer, batch: Batch
) -> T:
    """One unit of a batch: under a savepoint of the batch's open transaction, begun if none
    is (the first unit, the one after a commit, or after SQLite rolled back on a fault)."""
    if not conn.in_transaction:
        conn.execute("BEGIN IMMEDIATE")
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        if version != batch.data_version:  # another connection committed since the last one
            batch.forget()
            batch.data_version = version
    conn.execute("SAVEPOINT unit")
    try:
        result = unit(SqliteTx(conn, sealer, batch))
        conn.execute("RELEASE unit")
    except BaseException:
        batch.forget()  # what the unit read or wrote may be rolled back below
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
        raise
    batch.units += 1
    if batch.units >= batch.every:
        batch.units = 0
        conn.execute("COMMIT")
    return result


def _data_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("PRAGMA data_version").fetchone()
    return int(version)


def _commit(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("COMMIT")


def _prepare(conn: sqlite3.Connection, path: str, key: str | None) -> sealing.Sealer:
    on_disk = path != MEMORY
    refuse_newer(conn)  # before anything below writes to the file
    if on_disk:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    migrate(conn)
    if not on_disk:  # nothing outlives an in-memory database, so neither does its key
        sealer = sealing.ephemeral()
    else:
        sealed = conn.execute("SELECT 1 FROM sealing WHERE name = 'check'").fetchone()
        sealer = sealing.sealer_for(path, key, may_create=sealed is None)
    if _transaction(conn, SqliteTx.seal_at_rest, sealer) and on_disk:
        # Secrets were in clear until now: rewrite the file, so no old page, free page or
        # WAL frame still holds them.
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log.info("sealed the secrets that were stored in clear")
    return sealer


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in ``thothbot/migrations``, in order."""
    found = []
    for entry in resources.files("thothbot.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(version), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    """The migrations this database has had, read without writing (none for a new file)."""
    table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if table is None:
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def refuse_newer(conn: sqlite3.Connection) -> None:
    """Refuse a database migrated by a newer thothbot, changing nothing: this code does not
    know its tables, and writing to them could lose what the newer version keeps there."""
    known = max(version for version, _, _ in migrations())
    applied = applied_versions(conn)
    if applied and max(applied) > known:
        raise SchemaTooNew(
            f"it was written by a newer thothbot (schema {max(applied)}; this one knows up to"
            f" {known}). Run the newer thothbot, or restore a backup taken before the upgrade"
            " (thothbot db restore FILE). Nothing was changed."
        )


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations this database has not seen yet, each in its own transaction."""
    refuse_newer(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    done = []
    for version, name, sql in migrations():
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (version, name, ts(datetime.now(UTC))),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        log.info("applied migration %04d_%s", version, name)
        done.append(version)
    return done


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit on its own)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    leftover = [ln for ln in current.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise sqlite3.OperationalError(f"a migration ends in an incomplete statement: {leftover}")
    return statements
