"""Operating the database: file modes, a newer schema, faults in plain words, ``thothbot db``.

The faults are real: a full disk and a read-only disk are a small tmpfs and a read-only bind
mount in a private mount namespace (``unshare -m``), since the tests run as root and file modes
do not stop root. Where that is not allowed the tests that need it are skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import thothbot
from thothbot.core.ingress import ApiKeyRow
from thothbot.keys import new_key
from thothbot.store import DatabaseFault, SchemaTooNew, Store, StoreFault, Tx, migrations

KNOWN = max(version for version, _, _ in migrations())
# `thothbot run` must never reach the real Discord from a test: a closed local port.
NO_DISCORD = {"THOTH_DISCORD_API_URL": "http://127.0.0.1:9", "THOTH_INGRESS_PORT": "0"}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def database_with_a_key(path: Path, guild: str = "111") -> str:
    store = await Store.open(path)
    key = new_key(guild, datetime.now(UTC))
    await store.run(lambda tx: tx.insert_api_key(key.row))
    await store.close()
    return key.row.key_id


def cli(
    *argv: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m thothbot`` in its own process: what an operator's terminal shows."""
    return subprocess.run(
        [sys.executable, "-m", "thothbot", *argv],
        env={k: v for k, v in os.environ.items() if not k.startswith(("THOTH_", "LOG_"))} | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_plain_line(run: subprocess.CompletedProcess[str]) -> str:
    """The one ``thothbot: ...`` line a failed command printed; no traceback."""
    assert run.returncode != 0, run
    assert "Traceback" not in run.stderr + run.stdout
    said = [line for line in run.stderr.splitlines() if line.startswith("thothbot: ")]
    problems = [line for line in said if "using the database" not in line]
    assert len(problems) == 1, run.stderr
    return problems[0]


# File modes


async def test_the_folder_is_made_0700_and_the_database_and_its_wal_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "thoth.db"
    store = await Store.open(path)
    await store.run(lambda tx: tx.guild("g"))
    assert mode(path.parent) == 0o700
    for name in ("thoth.db", "thoth.db-wal", "thoth.db-shm"):
        assert mode(path.parent / name) == 0o600, name
    await store.close()


async def test_a_database_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    await (await Store.open(path)).close()
    path.chmod(0o644)  # as an older thothbot made it
    store = await Store.open(path)
    assert mode(path) == 0o600
    assert mode(path.parent / "thoth.db-wal") == 0o600
    await store.close()


# A newer schema


async def test_a_newer_schema_is_refused_and_nothing_is_changed(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    await database_with_a_key(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO schema_migrations VALUES (?, 'from_the_future', 'x')", (KNOWN + 1,))
    db.close()  # the last connection folds the WAL into the file
    before = digest(path)
    with pytest.raises(SchemaTooNew) as refused:
        await Store.open(path)
    message = str(refused.value)
    assert f"schema {KNOWN + 1}; this one knows up to {KNOWN}" in message
    assert "Nothing was changed" in message
    assert digest(path) == before

    for argv in (["keys", "list"], ["run"]):
        run = cli(*argv, env={"THOTH_DB_PATH": str(path), "DISCORD_TOKEN": "x", **NO_DISCORD})
        assert "written by a newer thothbot" in one_plain_line(run)
    assert digest(path) == before
    # The control: the same file without the future migration opens.
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM schema_migrations WHERE version = ?", (KNOWN + 1,))
    await (await Store.open(path)).close()


# Faults while working


async def test_a_full_disk_is_said_plainly_and_keeps_what_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    kept = await database_with_a_key(path)
    store = await Store.open(path, threaded=False)  # its connection usable from here
    # The database may not grow: SQLite answers SQLITE_FULL, as on a full disk.
    (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
    store._conn.execute(f"PRAGMA max_page_count = {pages}")

    def fill(tx: Tx) -> None:
        for n in range(2000):
            key = new_key(f"guild-{n}", datetime.now(UTC))
            tx.insert_api_key(key.row)

    with pytest.raises(DatabaseFault) as full:
        await store.run(fill)
    assert "is on a full disk" in str(full.value)
    assert "no transaction is active" not in str(full.value)
    assert isinstance(full.value, StoreFault)  # callers that keep work pending
    # The store still works for what fits, and nothing committed before was lost.
    keys = await store.run(lambda tx: tx.api_keys())
    assert [k.key_id for k in keys] == [kept]
    await store.close()


async def test_a_locked_database_is_a_store_fault_and_a_bug_is_not(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    kept = await database_with_a_key(path)
    store = await Store.open(path, threaded=False)
    store._conn.execute("PRAGMA busy_timeout = 50")  # not the 5 s a real wait has
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(StoreFault) as locked:
            await store.run(lambda tx: tx.insert_api_key(new_key("g", datetime.now(UTC)).row))
        assert not isinstance(locked.value, sqlite3.Error)  # nothing of SQLite's gets out
        assert "database is locked" in str(locked.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    duplicate = (await store.run(lambda tx: tx.api_keys()))[0]
    with pytest.raises(sqlite3.IntegrityError):  # a bug, raised as it is: not retried forever
        await store.run(lambda tx: tx.insert_api_key(duplicate))
    assert [k.key_id for k in await store.run(lambda tx: tx.api_keys())] == [kept]
    await store.close()


def mount_namespaces() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(
    sys.platform != "linux" or not mount_namespaces(),
    reason="needs `unshare -m` and mount (root or a user namespace)",
)


def in_namespace(script: str, *argv_runs: list[str], env: dict[str, str]) -> list[str]:
    """Run ``script`` (mounts) then each ``thothbot`` command in one private mount namespace;
    each command's stderr, stdout and exit code, separated."""
    runs = "\n".join(
        " ".join([sys.executable, "-m", "thothbot", *argv]) + ' 2>&1; echo "exit=$?"; echo ==='
        for argv in argv_runs
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-euc", f"{script}\nset +e\n{runs}"],
        env={k: v for k, v in os.environ.items() if not k.startswith(("THOTH_", "LOG_"))} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("===\n")[: len(argv_runs)]


def failed_in_one_line(output: str) -> str:
    assert "Traceback" not in output
    assert "exit=0" not in output
    said = [line for line in output.splitlines() if line.startswith("thothbot: ")]
    problems = [line for line in said if "using the database" not in line]
    assert len(problems) == 1, output
    return problems[0]


@needs_mounts
async def test_a_full_disk_from_the_cli_is_one_line_and_loses_nothing(tmp_path: Path) -> None:
    seed = tmp_path / "seed.db"
    kept = await database_with_a_key(seed)
    disk = tmp_path / "disk"
    disk.mkdir()
    db = disk / "thoth.db"

    # Room for SQLite's 32 KiB shared-memory file and part of one WAL frame: opening works,
    # the first write does not fit.
    def full_disk(room_kib: int) -> str:
        return f"""
mount -t tmpfs -o size=1m tmpfs {disk}
cp {seed} {db}
cp {seed.parent / "secret.key"} {disk}/
dd if=/dev/zero of={disk}/spare bs=1k count={room_kib} 2>/dev/null
dd if=/dev/zero of={disk}/fill bs=1k 2>/dev/null || true
rm {disk}/spare
"""

    env = {"THOTH_DB_PATH": str(db), "DISCORD_TOKEN": "x", **NO_DISCORD}
    # Room for SQLite's 32 KiB shared-memory file and part of one WAL frame: opening works,
    # the first write does not fit.
    create, listing = in_namespace(
        full_disk(36), ["keys", "create", "--guild", "222"], ["keys", "list", "--json"], env=env
    )
    line = failed_in_one_line(create)
    assert "is on a full disk" in line, create
    assert "what was saved before is kept" in line
    assert "exit=0" in listing
    assert [k["key_id"] for k in json.loads(listing.splitlines()[-2])] == [kept]
    # With no room at all even opening fails: still one line.
    (run,) = in_namespace(full_disk(0), ["run"], env=env)
    assert "the disk failed, is full or is read-only" in failed_in_one_line(run)


@needs_mounts
async def test_a_read_only_disk_is_one_line_for_each_command(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    db = disk / "thoth.db"
    kept = await database_with_a_key(db)
    before = digest(db)
    script = f"mount --bind {disk} {disk}\nmount -o remount,bind,ro {disk}"
    create, listing, run, info, copy = in_namespace(
        script,
        ["keys", "create", "--guild", "222"],
        ["keys", "list"],
        ["run"],
        ["db", "info", "--json"],
        ["db", "backup", str(tmp_path / "copy.db")],
        env={"THOTH_DB_PATH": str(db), "DISCORD_TOKEN": "x", **NO_DISCORD},
    )
    for output in (create, listing, run):
        assert "on a read-only disk" in failed_in_one_line(output)
    # Reading it still works: what it holds, and a backup to somewhere writable.
    assert "exit=0" in info
    assert "exit=0" in copy
    assert digest(db) == before
    shutil.copy(disk / "secret.key", tmp_path / "secret.key")  # the copy's secrets need it
    assert [k.key_id for k in await keys_in(tmp_path / "copy.db")] == [kept]


async def keys_in(path: Path) -> list[ApiKeyRow]:
    store = await Store.open(path)
    try:
        return list(await store.run(lambda tx: tx.api_keys()))
    finally:
        await store.close()


@needs_mounts
async def test_an_unwritable_database_folder_is_one_line(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    script = f"mount --bind {disk} {disk}\nmount -o remount,bind,ro {disk}"
    new_file, new_folder = in_namespace(
        script,
        ["keys", "list"],
        ["run"],
        env={"THOTH_DB_PATH": str(disk / "thoth.db"), "DISCORD_TOKEN": "x", **NO_DISCORD},
    )
    assert "cannot create it in" in failed_in_one_line(new_file)
    assert "read-only" in failed_in_one_line(new_folder)


def test_a_database_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder should be")
    for argv in (["keys", "list"], ["run"]):
        env = {"THOTH_DB_PATH": str(blocker / "thoth.db"), "DISCORD_TOKEN": "x", **NO_DISCORD}
        run = cli(*argv, env=env)
        assert f"cannot create its folder {blocker}" in one_plain_line(run)


async def test_a_damaged_file_is_one_line_and_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    await database_with_a_key(path)
    data = bytearray(path.read_bytes())
    data[:100] = b"garbage!" * 12 + b"junk"  # the header is gone
    path.write_bytes(bytes(data))
    before = digest(path)
    env = {"THOTH_DB_PATH": str(path), "DISCORD_TOKEN": "x", **NO_DISCORD}
    for argv in (["keys", "list"], ["run"], ["db", "info"], ["db", "backup", "b.db"]):
        run = cli(*argv, env=env, cwd=tmp_path)
        line = one_plain_line(run)
        assert "not a thothbot database, or it is damaged" in line, argv
        assert "restore it from a backup" in line
    assert digest(path) == before


# thothbot db


async def test_db_info_says_where_what_schema_and_how_much(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await database_with_a_key(data / "thoth.db")
    # A relative THOTH_DB_PATH, run from the folder it is relative to.
    info = cli("db", "info", "--json", env={"THOTH_DB_PATH": "data/thoth.db"}, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    found = json.loads(info.stdout)
    where = str((data / "thoth.db").resolve())
    assert found["path"] == where
    assert found["schema"] == found["schema_known"] == KNOWN
    assert found["schema_current"] is True
    assert found["rows"]["api_keys"] == 1
    assert found["rows"]["tickets"] == 0
    assert found["sizes"]["thoth.db"] > 0
    assert f"thothbot: using the database at {where}" in info.stderr
    text = cli("db", "info", env={"THOTH_DB_PATH": "data/thoth.db"}, cwd=tmp_path).stdout
    assert f"database  {where}" in text
    assert f"schema    {KNOWN} of {KNOWN} (current)" in text
    assert "api_keys" in text


def test_db_info_on_no_database_creates_none(tmp_path: Path) -> None:
    run = cli("db", "info", env={"THOTH_DB_PATH": str(tmp_path / "missing.db")})
    assert "there is no database at" in one_plain_line(run)
    assert not (tmp_path / "missing.db").exists()


def test_keys_say_which_database_and_whether_it_is_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THOTH_DB_PATH", str(tmp_path / "thoth.db"))
    first = thothbot("keys", "list")
    assert f"thothbot: created a new, empty database at {tmp_path / 'thoth.db'}" in first.err
    second = thothbot("keys", "list")
    assert f"thothbot: using the database at {tmp_path / 'thoth.db'}" in second.err
    assert "created" not in second.err


async def test_a_backup_taken_while_another_connection_writes_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    await database_with_a_key(path)
    written = threading.Event()
    stop = threading.Event()
    counts: list[int] = []

    def writer() -> None:
        db = sqlite3.connect(path, isolation_level=None, timeout=10)
        n = 0
        while not stop.is_set():
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO guilds (guild_id) VALUES (?)", (f"g{n}",))
            db.execute("COMMIT")
            n += 1
            counts.append(n)
            written.set()
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        written.wait(10)
        low = len(counts)
        run = cli("db", "backup", str(tmp_path / "backup.db"), env={"THOTH_DB_PATH": str(path)})
        high = len(counts)
    finally:
        stop.set()
        thread.join()
    assert run.returncode == 0, run.stderr
    assert high > low, "the writer did not write during the backup"
    assert "useless without the secret key" in run.stdout
    assert "THOTH_SECRET_KEY" in run.stdout
    assert str(tmp_path / "secret.key") in run.stdout
    assert mode(tmp_path / "backup.db") == 0o600
    copy = sqlite3.connect(tmp_path / "backup.db")
    assert copy.execute("PRAGMA quick_check").fetchone() == ("ok",)
    (guilds,) = copy.execute("SELECT count(*) FROM guilds").fetchone()
    copy.close()
    assert low <= guilds <= high  # one consistent moment during the writes
    # A backup never overwrites a file.
    again = cli("db", "backup", str(tmp_path / "backup.db"), env={"THOTH_DB_PATH": str(path)})
    assert "already exists" in one_plain_line(again)


async def test_restore_is_refused_while_the_database_is_open_then_puts_the_backup_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "thoth.db"
    kept = await database_with_a_key(path)
    env = {"THOTH_DB_PATH": str(path)}
    assert cli("db", "backup", str(tmp_path / "b.db"), env=env).returncode == 0
    store = await Store.open(path)
    later = new_key("999", datetime.now(UTC))
    await store.run(lambda tx: tx.insert_api_key(later.row))

    refused = cli("db", "restore", str(tmp_path / "b.db"), env=env)
    assert "is in use (is thothbot running?)" in one_plain_line(refused)
    assert {k.key_id for k in await store.run(lambda tx: tx.api_keys())} == {
        kept,
        later.row.key_id,
    }
    await store.close()

    restored = cli("db", "restore", str(tmp_path / "b.db"), env=env)
    assert restored.returncode == 0, restored.stderr
    assert [k.key_id for k in await keys_in(path)] == [kept]
    before = kept_copies(tmp_path)
    assert len(before) == 1
    assert mode(before[0]) == 0o600
    assert {k.key_id for k in await keys_in(before[0])} == {kept, later.row.key_id}


def kept_copies(folder: Path) -> list[Path]:
    return list(folder.glob("thoth.db.before-restore-*"))


async def test_restore_refuses_what_is_not_a_thothbot_backup(tmp_path: Path) -> None:
    path = tmp_path / "thoth.db"
    await database_with_a_key(path)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    before = digest(path)
    run = cli("db", "restore", str(other), env={"THOTH_DB_PATH": str(path)})
    assert "is not a thothbot database" in one_plain_line(run)
    assert digest(path) == before
