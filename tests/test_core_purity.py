"""The domain core stays pure: no I/O libraries, no Discord, SQL, HTTP or LLMs, no clock reads."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "thothbot" / "core"

# Standard library modules that do I/O, talk to the network or the OS, or read the clock.
FORBIDDEN_STDLIB = {
    "asyncio", "io", "os", "pathlib", "shutil", "socket", "ssl", "select", "selectors",
    "sqlite3", "subprocess", "tempfile", "threading", "multiprocessing", "urllib", "http",
    "time", "logging", "random", "secrets", "glob", "signal",
}  # fmt: skip
# Third-party libraries the core may use: pydantic for validation, and phonenumbers'
# metadata for PII redaction (pure data and parsing, no I/O).
ALLOWED_THIRD_PARTY = {"pydantic", "phonenumbers"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_imports_only_pure_modules(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = set()
    for root in imported_roots(tree):
        if root == "thothbot":
            continue
        if root in sys.stdlib_module_names:
            if root in FORBIDDEN_STDLIB:
                bad.add(root)
        elif root not in ALLOWED_THIRD_PARTY and root != "__future__":
            bad.add(root)
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_imports_no_other_thothbot_layer(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("thothbot")
        ):
            assert node.module.startswith("thothbot.core"), f"{path.name}: {node.module}"


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_never_reads_the_clock_or_awaits(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        assert not isinstance(node, ast.AsyncFunctionDef | ast.Await), f"{path.name}: async code"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in CLOCK_CALLS, (
                f"{path.name}:{node.lineno} calls .{node.func.attr}(): time must be passed in"
            )
        if isinstance(node, ast.Name):
            assert node.id != "open", f"{path.name}:{node.lineno} uses open()"


def test_the_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    tree = ast.parse("import discord\nfrom aiosqlite import connect\nimport os.path\n")
    assert imported_roots(tree) == {"discord", "aiosqlite", "os"}
