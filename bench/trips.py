"""Store round trips on the live path, and transactions per person's action, counted.

The real bot runs on the loopback sandbox as in ``bench.bot``. In each sample a customer opens
a billing ticket, writes a plain message, then writes "refund" (rule ``billing-escalate`` tags
and escalates it, and the delivery worker posts it to #ops); staff claim it from the #ops post
and close it; the customer rates it. Every ``Store.run`` (one transaction on the database
thread) is counted from the moment the sandbox dispatches each action until the bot is quiet
again, split by who ran it: the action's own handler, or a background loop of the bot after it
(the delivery worker, the SLA checker, closings, the classifier). For the escalating message
the units until the #ops post is requested are counted too. Counts, not times: the same on any
machine, so a change of the walk shows here first.

The baseline is measured in the same run: this module runs again in a child process over the
``thothbot`` package of commit ``BASELINE`` (taken with ``git archive``); only where git or the
commit is missing are the figures recorded from it shown instead, and said so.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bot import REFUND, _Desk
from thothbot.bot.client import ThothBot
from thothbot.demo import build_world, running_bot
from thothbot.sandbox import Sandbox
from thothbot.sandbox.testing import pointed_at
from thothbot.store import Store, Tx

TARGET = 2  # issue 11: one unit of work, one delivery
BASELINE = "10f9d95"  # main before the delivery worker took the desk's rows in hand
# Measured at BASELINE with this module, for when it cannot be measured in the run.
RECORDED = {
    "to_post": 4,
    "in_all": 6,
    "actions": {
        "open a ticket": [1, 2],
        "send a message": [1, 0],
        "escalating message": [1, 5],
        "claim (#ops button)": [2, 0],
        "close": [1, 5],
        "rate": [1, 0],
    },
}
ROOT = Path(__file__).resolve().parent.parent
PLAIN = "Thanks, I sent the order number by mail yesterday."


class _Counting:
    """Counts a store's units of work: who asked for each, and whether a background loop of
    the bot (a task it spawned) or an action's handler ran it."""

    def __init__(self, store: Store, bot: ThothBot) -> None:
        self.calls: Counter[str] = Counter()
        self.units: list[tuple[float, bool]] = []  # (time.monotonic(), in the background)
        run = store.run

        loops = (bot.deliveries, bot.sla, bot.closings)

        def in_background() -> bool:
            if asyncio.current_task() in bot._tasks:
                return True
            # A loop's own tasks (the delivery worker's lanes) are not the bot's: look up the
            # awaiting frames for one of its loops.
            frame = sys._getframe(2)
            while frame is not None:
                if any(frame.f_locals.get("self") is loop for loop in loops):
                    return True
                frame = frame.f_back
            return False

        async def counted(unit: Callable[[Tx], Any]) -> Any:
            background = in_background()
            self.units.append((time.monotonic(), background))
            named = getattr(unit, "func", unit)  # a functools.partial names its function
            caller = getattr(named, "__qualname__", repr(named)).split(".<locals>")[0]
            self.calls[f"{'background' if background else 'action'}: {caller}"] += 1
            return await run(unit)

        store.run = counted  # type: ignore[method-assign]


class _Actions:
    """One ticket's life as people act it, each action's units counted until quiet."""

    def __init__(self, sandbox: Sandbox, desk: _Desk, counting: _Counting) -> None:
        self.sandbox, self.desk, self.counting = sandbox, desk, counting
        self.world = desk.world
        self.own: dict[str, list[int]] = {}
        self.background: dict[str, list[int]] = {}
        self.to_post: list[int] = []
        self.by_caller: dict[str, Counter[str]] = {}

    async def counted(self, name: str, act: Callable[[], Any]) -> Any:
        await self.quiet()
        start, before = len(self.counting.units), Counter(self.counting.calls)
        value = await act()
        await self.quiet()
        units = self.counting.units[start:]
        self.own.setdefault(name, []).append(sum(1 for _, bg in units if not bg))
        self.background.setdefault(name, []).append(sum(1 for _, bg in units if bg))
        self.by_caller[name] = self.by_caller.get(name, Counter()) + self.counting.calls - before
        return value

    async def quiet(self) -> None:
        await self.desk.quiet()
        await asyncio.sleep(0.05)  # the SLA and delivery loops asleep again

    async def life(self, n: int) -> None:
        w, sandbox = self.world, self.sandbox
        customer = self.desk.customers.next()
        opened = await self.counted(
            "open a ticket",
            lambda: self.desk.slash(
                customer, "ticket open", {"subject": f"Order {n}", "type": "billing"}
            ),
        )
        channel = opened.split("<#")[1].split(">")[0]
        await self.counted("send a message", lambda: sandbox.send_message(channel, customer, PLAIN))
        ops = f"/channels/{w.ops}/messages"
        mark = len(sandbox.requests)

        async def escalate() -> None:
            start = len(self.counting.units)
            await sandbox.send_message(channel, customer, REFUND)
            post = await sandbox.wait_for(
                lambda: next(
                    (r for r in sandbox.requests[mark:] if (r.method, r.path) == ("POST", ops)),
                    None,
                )
            )
            self.to_post.append(sum(1 for at, _ in self.counting.units[start:] if at <= post.at))

        await self.counted("escalating message", escalate)
        post = sandbox.messages(w.ops)[-1]
        claim = _button(post, "Claim")
        await self.counted(
            "claim (#ops button)",
            lambda: _done(sandbox.click(w.ops, post["id"], claim, w.riley)),
        )

        async def close() -> None:
            asks = len(sandbox.dm_messages(customer))
            done = {"reason": "Done"}
            await _done(sandbox.slash(w.guild, channel, w.riley, "ticket close", done))
            # The transcript, the rating's question, and the channel deleted after the delay.
            await sandbox.wait_for(lambda: len(sandbox.dm_messages(customer)) >= asks + 2)
            await sandbox.wait_for(lambda: sandbox.channel(channel) is None)

        await self.counted("close", close)
        ask = sandbox.dm_messages(customer)[-1]
        five = _button(ask, "5")
        await self.counted(
            "rate", lambda: _done(sandbox.click(ask["channel_id"], ask["id"], five, customer))
        )


async def _done(started: Any) -> Any:
    return await (await started).done()


def _button(message: dict[str, Any], label: str) -> str:
    return next(
        str(c["custom_id"])
        for row in message.get("components") or []
        for c in row.get("components") or []
        if c.get("label") == label
    )


async def _measure(samples: int) -> dict[str, Any]:
    async with pointed_at(Sandbox()) as sandbox:
        world = build_world(sandbox)
        with tempfile.TemporaryDirectory() as folder:
            async with running_bot(sandbox, Path(folder) / "b.db", (int(world.guild),)) as bot:
                desk = _Desk(sandbox, world, bot)
                await desk.configure()
                actions = _Actions(sandbox, desk, _Counting(bot.desk.store, bot))
                for n in range(samples):
                    await actions.life(n)
    escalating = "escalating message"
    return {
        "to_post": max(actions.to_post),
        "in_all": max(
            own + bg
            for own, bg in zip(actions.own[escalating], actions.background[escalating], strict=True)
        ),
        "actions": {
            name: [max(own), max(actions.background[name])] for name, own in actions.own.items()
        },
        "by_caller": {
            name: {k: v / samples for k, v in calls.most_common()}
            for name, calls in actions.by_caller.items()
        },
    }


def _baseline(samples: int) -> tuple[dict[str, Any], str]:
    """The figures of commit BASELINE, measured now in a child process (else the recorded)."""
    try:
        with tempfile.TemporaryDirectory() as tree:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", BASELINE, "thothbot"],
                capture_output=True, check=True,
            )  # fmt: skip
            subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
            # The child's own folder first: BASELINE's thothbot, and this bench beside it.
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([tree, str(ROOT)])}
            child = subprocess.run(
                [sys.executable, "-m", "bench.trips", "--json", str(samples)],
                cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=600,
            )  # fmt: skip
        return json.loads(child.stdout.splitlines()[-1]), f"{BASELINE}, measured in this run"
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as error:
        why = getattr(error, "stderr", None) or error
        return RECORDED, f"{BASELINE}, recorded (not measurable here: {str(why).strip()[:80]})"


def main(samples: int = 5) -> None:
    now = asyncio.run(_measure(samples))
    base, said = _baseline(samples)
    print("trips: store transactions (Store.run) on the live path, real bot on the sandbox")
    print(f"  baseline: {said}; figures are the most of {samples} samples")
    print(f"  {'one escalating customer message':40} {'now':>7} {'baseline':>9}")
    met = "met" if now["to_post"] <= TARGET else "NOT met"
    print(f"  {'  to the #ops post':40} {now['to_post']:>7} {base['to_post']:>9}"
          f"  (target {TARGET}: {met})")  # fmt: skip
    print(f"  {'  until quiet again':40} {now['in_all']:>7} {base['in_all']:>9}")
    print(f"  {'per action: own + background after it':40} {'now':>7} {'baseline':>9}")
    for name, (own, background) in now["actions"].items():
        was = base["actions"].get(name, ["?", "?"])
        print(f"  {'  ' + name:40} {own:>3} + {background:<3} {was[0]:>5} + {was[1]:<3}"
              f"{'' if own <= 1 else '  (more than one)'}")  # fmt: skip
    print("  by action and caller, per sample (now):")
    for name, calls in now["by_caller"].items():
        print(f"    {name}: " + ", ".join(f"{caller} {n:g}" for caller, n in calls.items()))


if __name__ == "__main__":
    if "--json" in sys.argv:
        print(json.dumps(asyncio.run(_measure(int(sys.argv[-1])))))
    else:
        main()
