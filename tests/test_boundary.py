"""The service boundary, as a test: only the service layer and the composition root reach the store.

Adapters (the bot, the ingress's handlers, the delivery worker, the model client, the command
line, the demo and ``simulate``) ask ``thothbot.service`` for what they need. None of them
imports ``thothbot.store`` or opens a unit of work (``store.run``): the day a second database
backend arrives, it is written behind the store's interfaces and nothing above the service layer
changes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "thothbot"

# Who may import the store: the store itself, the service layer, the composition root (it opens
# the store and hands it to the services) and the migrations beside the store.
MAY_REACH_THE_STORE = ("thothbot.store", "thothbot.service", "thothbot.application",
                       "thothbot.migrations")  # fmt: skip

# Modules that still reach the store from outside the service layer (issue 11, item 1). Each
# entry is checked to still cross, so the list can only shrink; done when it is empty.
STILL_CROSSING: set[str] = {
    "thothbot.backup",
    "thothbot.bot.app",
    "thothbot.bot.closing",
    "thothbot.bot.commands",
    "thothbot.bot.effects",
    "thothbot.bot.flows",
    "thothbot.bot.opening",
    "thothbot.bot.timers",
    "thothbot.cli",
    "thothbot.delivery",
    "thothbot.demo",
    "thothbot.group_commit",
    "thothbot.health",
    "thothbot.keys",
    "thothbot.llm",
    "thothbot.maintenance",
    "thothbot.simulate",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> list[tuple[str, Path]]:
    found = [(module_name(p), p) for p in sorted(PACKAGE.rglob("*.py"))]
    return [(name, p) for name, p in found if not name.startswith(MAY_REACH_THE_STORE)]


def crossings(source: str) -> list[str]:
    """Where ``source`` reaches past the service layer: store imports and units of work."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if _is_store(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _is_store(node.module):
                found.append(f"imports {node.module}")
            elif node.module == "thothbot" and any(a.name == "store" for a in node.names):
                found.append("imports thothbot.store")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "run"
            and _names_a_store(node.func.value)
        ):
            found.append(f"line {node.lineno}: opens a unit of work (store.run)")
    return found


def _is_store(module: str) -> bool:
    return module == "thothbot.store" or module.startswith("thothbot.store.")


def _names_a_store(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name.lstrip("_") == "store"


@pytest.mark.parametrize(("name", "path"), modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_adapters_reach_the_store_only_through_the_service_layer(name: str, path: Path) -> None:
    found = crossings(path.read_text(encoding="utf-8"))
    if name in STILL_CROSSING:
        assert found, f"{name} no longer reaches the store: take it off STILL_CROSSING"
    else:
        assert not found, f"{name} reaches past the service layer: {found}"


def test_every_listed_module_exists() -> None:
    assert {name for name, _ in modules()} >= STILL_CROSSING


def test_the_check_catches_each_way_past_the_boundary() -> None:
    assert crossings("from thothbot.store import Store\n") == ["imports thothbot.store"]
    assert crossings("import thothbot.store.tickets\n") == ["imports thothbot.store.tickets"]
    assert crossings("from thothbot import store\n") == ["imports thothbot.store"]
    assert crossings("async def f(bot):\n    await bot.store.run(lambda tx: tx.ticket(1))\n") == [
        "line 2: opens a unit of work (store.run)"
    ]
    assert crossings("async def f(self):\n    await self._store.run(g)\n") == [
        "line 2: opens a unit of work (store.run)"
    ]
    assert crossings("from thothbot.service import Desk\nawait runner.run()\n") == []
