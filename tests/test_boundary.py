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
    assert not found, f"{name} reaches past the service layer: {found}"


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


# The bot's modules form no import cycle (type-only imports count too): each part is built with
# what it uses, and a module that needed the whole bot to be typed would be a way back to it.
BOT = PACKAGE / "bot"


def bot_imports(source: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``source`` imports, wherever the import stands."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found & known


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (module -> modules it imports), first module repeated; or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported, [*path, module])
            if cycle is not None:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle is not None:
            return cycle
    return None


def test_the_bot_modules_import_no_cycle() -> None:
    paths = {module_name(p): p for p in sorted(BOT.rglob("*.py"))}
    known = set(paths)
    graph = {
        name: bot_imports(path.read_text(encoding="utf-8"), known) - {name}
        for name, path in paths.items()
    }
    assert graph["thothbot.bot.client"]  # positive control: the graph has edges
    cycle = import_cycle(graph)
    assert cycle is None, f"an import cycle: {' -> '.join(cycle)}"


def test_the_cycle_check_finds_a_cycle() -> None:
    known = {"thothbot.bot.client", "thothbot.bot.flows", "thothbot.bot.render"}
    typed_back = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from thothbot.bot.client import ThothBot\n"
    )
    assert bot_imports(typed_back, known) == {"thothbot.bot.client"}
    assert bot_imports("from thothbot.bot import render\n", known) == {"thothbot.bot.render"}
    graph = {
        "thothbot.bot.client": {"thothbot.bot.flows"},
        "thothbot.bot.flows": {"thothbot.bot.render", "thothbot.bot.client"},
        "thothbot.bot.render": set(),
    }
    assert import_cycle(graph) == [
        "thothbot.bot.client",
        "thothbot.bot.flows",
        "thothbot.bot.client",
    ]
    graph["thothbot.bot.flows"].discard("thothbot.bot.client")
    assert import_cycle(graph) is None
