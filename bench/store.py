"""One store unit of work's round trip: what every ``Store.run`` pays before its SQL.

A unit that reads one row (``tx.revision``) is run many times, one after another, on a database
file with the store's own thread (the bot and the ingress), and in memory on the thread and in
place (``threaded=False``, ``thothbot simulate``). The thread's figure is the hop: the unit
handed to the database thread and its answer handed back to the event loop.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from thothbot.store import MEMORY, Store

G = "guild-1"


async def _per_unit(path: str | Path, *, threaded: bool, units: int) -> float:
    store = await Store.open(path, threaded=threaded)
    try:
        await store.run(lambda tx: tx.revision(G))  # the server's row exists from here
        best = float("inf")
        for _ in range(5):  # the best of five: the machine is shared
            began = time.perf_counter()
            for _ in range(units):
                await store.run(lambda tx: tx.revision(G))
            best = min(best, (time.perf_counter() - began) / units)
        return best
    finally:
        await store.close()


def main(units: int = 5_000) -> None:
    with tempfile.TemporaryDirectory() as folder:
        on_file = asyncio.run(_per_unit(Path(folder) / "b.db", threaded=True, units=units))
    in_memory = asyncio.run(_per_unit(MEMORY, threaded=True, units=units))
    in_place = asyncio.run(_per_unit(MEMORY, threaded=False, units=units))
    print(f"store: one unit reading one row, {units:,} in a row, best of 5")
    print(f"  file, on the database thread   : {on_file * 1e6:6.1f} us a unit")
    print(f"  memory, on the database thread : {in_memory * 1e6:6.1f} us a unit")
    print(f"  memory, in place               : {in_place * 1e6:6.1f} us a unit")
    print(f"  the thread's hop               : {(in_memory - in_place) * 1e6:6.1f} us a unit")


if __name__ == "__main__":
    main()
