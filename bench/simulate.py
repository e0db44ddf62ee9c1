"""``thothbot simulate`` throughput on a 10,000-ticket scenario with SLA and business hours."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

from bench.workload import SCENARIO_RULES, SCENARIO_SETTINGS, scenario
from thothbot.simulate import run_scenario


def main(tickets: int = 10_000) -> None:
    text = scenario(tickets)
    lines = text.count("\n")
    kinds: Counter[str] = Counter()

    def emit(line: dict[str, Any]) -> None:
        kinds[line["kind"]] += 1

    started = time.perf_counter()
    asyncio.run(run_scenario(json.dumps(SCENARIO_RULES), json.dumps(SCENARIO_SETTINGS), text, emit))
    elapsed = time.perf_counter() - started
    print(f"simulate: {tickets:,} tickets, {lines:,} scenario lines, SLA with business hours")
    print(f"  total time : {elapsed:.2f} s  ({lines / elapsed:,.0f} lines/s)")
    breakdown = ", ".join(f"{kind} {count:,}" for kind, count in kinds.most_common())
    print(f"  effects    : {sum(kinds.values()):,} ({breakdown})")
