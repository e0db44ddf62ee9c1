"""``thothbot simulate`` on scenarios with SLA and business hours: time in memory and on a
database file, SQL statements per ticket, and peak memory as the scenario grows.

Each figure stands beside its baseline from the same run: the file run beside the memory run,
the 50,000-ticket peak beside the 10,000-ticket one (a scenario read a line at a time costs
about the same memory at any length). Statements are counted with SQLite's trace callback on
a smaller run, the migrations included; those that only begin and end transactions and units
(BEGIN, COMMIT, SAVEPOINT, RELEASE, ROLLBACK) are counted apart.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from unittest import mock

from bench.workload import SCENARIO_RULES, SCENARIO_SETTINGS, scenario
from thothbot.simulate import run_scenario

ROUNDS = 3  # each timing is the best of this many
TARGET_STATEMENTS = 20  # per ticket over its whole life (issue 11, item 7)
TARGET_FILE_RATIO = 1.2  # a database file beside memory
TARGET_PEAK_MIB = 200  # at 50,000 tickets
# Statements that only mark where transactions and units begin and end, counted apart.
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")

# Run in a child process, so its peak memory is the simulation's alone. Its own high-water
# mark, not getrusage's ru_maxrss: Linux carries that over exec from the forked parent.
_PEAK = """
import os, re, sys
from thothbot.cli import main
with open(os.devnull, "w") as out:
    code = main(["simulate", "--rules", sys.argv[1], "--settings", sys.argv[2], sys.argv[3]],
                out=out, err=sys.stderr)
with open("/proc/self/status") as status:
    print(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1))
sys.exit(code)
"""


def main(tickets: int = 10_000, large: int = 50_000, counted: int = 2_000) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        rules, settings = root / "rules.json", root / "settings.json"
        rules.write_text(json.dumps(SCENARIO_RULES), encoding="utf-8")
        settings.write_text(json.dumps(SCENARIO_SETTINGS), encoding="utf-8")
        scenarios = {n: _write(root / f"{n}.jsonl", n) for n in (tickets, large, counted)}
        path = scenarios[tickets]
        lines = path.read_bytes().count(b"\n")
        kinds: Counter[str] = Counter()
        in_memory, on_file = _play(path, None, kinds), _play(path, str(root / "0.db"), Counter())
        for n in range(1, ROUNDS):  # taken in turns, so both meet the same load on the machine
            in_memory = min(in_memory, _play(path, None, Counter()))
            on_file = min(on_file, _play(path, str(root / f"{n}.db"), Counter()))
        statements = _statements(scenarios[counted])
        peaks = {n: _peak(rules, settings, scenarios[n]) for n in (tickets, large)}

    ratio = on_file / in_memory
    control = sum(statements[word] for word in _CONTROL)
    per_ticket = (sum(statements.values()) - control) / counted
    print(f"simulate: {tickets:,} tickets, {lines:,} scenario lines, SLA with business hours")
    print(f"  in memory  : {in_memory:.2f} s  ({lines / in_memory:,.0f} lines/s, best of {ROUNDS})")
    print(
        f"  on a file  : {on_file:.2f} s  = {ratio:.2f}x memory"
        f"  (target {TARGET_FILE_RATIO}x: {_met(ratio <= TARGET_FILE_RATIO)})"
    )
    print(
        f"  statements : {per_ticket:.1f} per ticket over its life ({counted:,} tickets)"
        f"  (target {TARGET_STATEMENTS}: {_met(per_ticket <= TARGET_STATEMENTS)}),"
        f" in {statements['BEGIN'] / counted:.2f} transactions;"
        f" besides, {control / counted:.1f} to begin, commit and mark units (savepoints)"
    )
    small, big = peaks[tickets], peaks[large]
    print(
        f"  peak memory: {big[0]:.0f} MiB at {large:,} tickets ({big[1]:.0f} s),"
        f" {small[0]:.0f} MiB at {tickets:,}  (target {TARGET_PEAK_MIB} MiB:"
        f" {_met(big[0] <= TARGET_PEAK_MIB)})"
    )
    breakdown = ", ".join(f"{kind} {count:,}" for kind, count in kinds.most_common())
    print(f"  effects    : {sum(kinds.values()):,} ({breakdown})")


def _write(path: Path, tickets: int) -> Path:
    path.write_text(scenario(tickets), encoding="utf-8")
    return path


def _play(path: Path, database: str | None, kinds: Counter[str]) -> float:
    """Seconds to play the scenario at ``path`` (in memory unless ``database``)."""

    def emit(line: dict[str, Any]) -> None:
        kinds[line["kind"]] += 1

    rules, settings = json.dumps(SCENARIO_RULES), json.dumps(SCENARIO_SETTINGS)
    with path.open("rb") as lines:
        started = time.perf_counter()
        asyncio.run(run_scenario(rules, settings, lines, emit, database=database))
        return time.perf_counter() - started


def _statements(path: Path) -> Counter[str]:
    """Every statement SQLite ran for the scenario, by its first word."""
    seen: Counter[str] = Counter()
    with _traced(lambda sql: seen.update([sql.split(None, 1)[0].upper()])):
        _play(path, None, Counter())
    return seen


def _traced(callback: Callable[[str], object]) -> AbstractContextManager[object]:
    """Every SQLite connection opened meanwhile reports its statements to ``callback``."""
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*args, **kwargs)
        conn.set_trace_callback(callback)
        return conn

    return mock.patch.object(sqlite3, "connect", traced)


def _peak(rules: Path, settings: Path, path: Path) -> tuple[float, float]:
    """Peak resident memory (MiB) of ``thothbot simulate`` in a child process, and its time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(rules), str(settings), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"thothbot simulate failed on {path.name}:\n{done.stderr}")
    return int(done.stdout.split()[-1]) / 1024, time.perf_counter() - started


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    main()
