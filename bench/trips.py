"""Store round trips on the live path: one customer message that escalates, counted.

The real bot runs on the loopback sandbox as in ``bench.bot``: a customer writes "refund" in a
billing ticket, rule ``billing-escalate`` tags and escalates it, and the delivery worker posts
it to #ops. Every ``Store.run`` (one transaction on the database thread) is counted from the
moment the sandbox dispatches the message: until the #ops post is requested, and until the bot
is quiet again (the post recorded, the worker asleep). Counts, not times: the same on any
machine, so a change of the walk shows here first.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bot import REFUND, _Desk
from thothbot.demo import build_world, running_bot
from thothbot.sandbox import Sandbox
from thothbot.sandbox.testing import pointed_at
from thothbot.store import Store, Tx

TARGET = 2  # issue 11: one unit of work, one delivery


class _Counting:
    """Counts a store's units of work, by the function that asked for each."""

    def __init__(self, store: Store) -> None:
        self.calls: Counter[str] = Counter()
        self.started: list[float] = []  # when each unit was asked for (time.monotonic())
        run = store.run

        async def counted(unit: Callable[[Tx], Any]) -> Any:
            self.started.append(time.monotonic())
            named = getattr(unit, "func", unit)  # a functools.partial names its function
            self.calls[getattr(named, "__qualname__", repr(named)).split(".<locals>")[0]] += 1
            return await run(unit)

        store.run = counted  # type: ignore[method-assign]


async def _measure(samples: int) -> tuple[list[int], list[int], Counter[str]]:
    to_post: list[int] = []
    in_all: list[int] = []
    by_caller: Counter[str] = Counter()
    async with pointed_at(Sandbox()) as sandbox:
        world = build_world(sandbox)
        with tempfile.TemporaryDirectory() as folder:
            async with running_bot(sandbox, Path(folder) / "b.db", (int(world.guild),)) as bot:
                desk = _Desk(sandbox, world, bot)
                await desk.configure()
                counting = _Counting(bot.desk.store)
                ops = f"/channels/{world.ops}/messages"
                for n in range(samples):
                    customer = desk.customers.next()
                    opened = await desk.slash(
                        customer, "ticket open", {"subject": f"Order {n}", "type": "billing"}
                    )
                    channel = opened.split("<#")[1].split(">")[0]
                    await desk.quiet()
                    await asyncio.sleep(0.05)  # the SLA and delivery loops asleep again
                    mark, start = len(sandbox.requests), len(counting.started)
                    before = Counter(counting.calls)
                    await sandbox.send_message(channel, customer, REFUND)
                    post = await sandbox.wait_for(
                        lambda m=mark: next(
                            (
                                r
                                for r in sandbox.requests[m:]
                                if (r.method, r.path) == ("POST", ops)
                            ),
                            None,
                        )
                    )
                    await desk.quiet()
                    await asyncio.sleep(0.05)
                    units = counting.started[start:]
                    to_post.append(sum(1 for at in units if at <= post.at))
                    in_all.append(len(units))
                    by_caller += counting.calls - before
    return to_post, in_all, by_caller


def main(samples: int = 5) -> None:
    to_post, in_all, by_caller = asyncio.run(_measure(samples))
    print("trips: store round trips (Store.run) for one escalating customer message, real bot")
    print(
        f"  to the #ops post      : {max(to_post)} (samples {to_post})"
        f"  (target {TARGET}: {'met' if max(to_post) <= TARGET else 'NOT met'})"
    )
    print(f"  until quiet again     : {max(in_all)} (samples {in_all})")
    for caller, count in by_caller.most_common():
        print(f"    {count / samples:4.1f}  {caller}")


if __name__ == "__main__":
    main()
