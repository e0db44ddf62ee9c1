"""The store's interfaces, as tests: the service layer types against them, never against SQLite,
and nothing outside the store speaks SQLite's own language.

A second backend (PostgreSQL) is written behind ``thothbot.store.interfaces``; these checks keep
the code above the store from depending on what only SQLite has.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from thothbot.store import Database, Store, Tx

PACKAGE = Path(__file__).resolve().parent.parent / "thothbot"

# The SQLite implementation: the service layer never names it (the composition root opens it).
SQLITE = ("thothbot.store.sqlite", "thothbot.store.tx", "thothbot.store.base",
          "thothbot.store.thread", "thothbot.store.guilds", "thothbot.store.tickets",
          "thothbot.store.channels", "thothbot.store.outbox", "thothbot.store.ingress",
          "thothbot.store.classifications")  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sqlite_names(source: str) -> list[str]:
    """What ``source`` takes from the SQLite implementation rather than the interfaces."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name in SQLITE]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module in SQLITE:
                found.append(node.module)
            elif node.module == "thothbot.store":
                found += [f"thothbot.store.{a.name}" for a in node.names if a.name == "Store"]
    return found


def unbound_units(source: str) -> list[str]:
    """Where ``source`` takes a method off the ``Tx`` interface itself (``partial(Tx.x, ...)``):
    that is the Protocol's empty method, which returns None whatever the database holds."""
    return [
        f"line {node.lineno}: Tx.{node.attr}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Tx"
    ]


def imports_sqlite3(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(a.name == "sqlite3" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "sqlite3":
            return True
    return False


SERVICE = sorted((PACKAGE / "service").rglob("*.py"))
OUTSIDE_THE_STORE = [
    (module_name(p), p)
    for p in sorted(PACKAGE.rglob("*.py"))
    if not module_name(p).startswith(("thothbot.store", "thothbot.migrations"))
]


@pytest.mark.parametrize("path", SERVICE, ids=module_name)
def test_the_service_layer_types_against_the_interfaces(path: Path) -> None:
    assert sqlite_names(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("name", "path"), OUTSIDE_THE_STORE, ids=lambda v: v if isinstance(v, str) else ""
)
def test_only_the_store_imports_sqlite3(name: str, path: Path) -> None:
    assert not imports_sqlite3(path.read_text(encoding="utf-8")), f"{name} imports sqlite3"


@pytest.mark.parametrize(
    ("name", "path"), OUTSIDE_THE_STORE, ids=lambda v: v if isinstance(v, str) else ""
)
def test_units_call_the_methods_of_the_tx_they_are_given(name: str, path: Path) -> None:
    assert unbound_units(path.read_text(encoding="utf-8")) == [], name


def test_the_checks_catch_what_they_look_for() -> None:
    assert sqlite_names("from thothbot.store import Store, Tx\n") == ["thothbot.store.Store"]
    assert sqlite_names("from thothbot.store.tx import SqliteTx\n") == ["thothbot.store.tx"]
    assert sqlite_names("import thothbot.store.sqlite\n") == ["thothbot.store.sqlite"]
    assert sqlite_names("from thothbot.store.interfaces import Database, Tx\n") == []
    assert unbound_units("run(partial(Tx.postpone, ids=[1]))\n") == ["line 1: Tx.postpone"]
    assert unbound_units("run(lambda tx: tx.postpone([1], at))\n") == []
    assert imports_sqlite3("import sqlite3\n")
    assert imports_sqlite3("from sqlite3 import OperationalError\n")
    assert not imports_sqlite3("import aiosqlite\n")


async def test_the_sqlite_store_runs_units_typed_against_the_interfaces(tmp_path: Path) -> None:
    def unit(tx: Tx) -> tuple[int, int]:
        return tx.reserve_number("guild-1"), tx.revision("guild-1")

    database: Database = await Store.open(tmp_path / "thoth.db")
    try:
        assert await database.run(unit) == (1, 0)
        assert await database.run(unit) == (2, 0)
    finally:
        await database.close()
