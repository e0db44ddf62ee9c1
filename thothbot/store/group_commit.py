"""Group commit: small units of work queued while a transaction is in flight share the next one.

The ingress's requests use it (one commit for many events under load); anything else that saves
many small units (the delivery worker) can use it beside ``Database.run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from thothbot.store.interfaces import Database, Tx

T = TypeVar("T")


class GroupCommit:
    """Small units queued while a transaction is in flight share the next one.

    Under load many requests pay for one thread hop and one commit; alone, a unit runs at once
    as with ``Database.run``. A unit that raises is retried alone, so it fails only its caller.
    """

    def __init__(self, store: Database) -> None:
        self._store = store
        self._queue: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def run(self, unit: Callable[[Tx], T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((unit, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="ingress-group-commit")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self._store.run(_together([unit for unit, _ in batch]))
            except Exception as error:
                if len(batch) == 1:
                    _settle(batch[0][1], error=error)
                    continue
                for unit, future in batch:
                    try:
                        _settle(future, await self._store.run(unit))
                    except Exception as alone:
                        _settle(future, error=alone)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)


def _together(units: list[Callable[[Tx], Any]]) -> Callable[[Tx], list[Any]]:
    return lambda tx: [unit(tx) for unit in units]


def _settle(
    future: asyncio.Future[Any], result: Any = None, error: Exception | None = None
) -> None:
    if future.done():  # its request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
