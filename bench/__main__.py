"""Run every benchmark and print its figures."""

from __future__ import annotations

import importlib
import sys

SUITES = [
    "bench.rules",
    "bench.simulate",
    "bench.store",
    "bench.redact",
    "bench.ingress",
    "bench.bot",
    "bench.trips",
]


def main() -> None:
    chosen = sys.argv[1:] or [s.removeprefix("bench.") for s in SUITES]
    for name in chosen:
        importlib.import_module(f"bench.{name}").main()
        print()


if __name__ == "__main__":
    main()
