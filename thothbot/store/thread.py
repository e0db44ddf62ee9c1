"""The database's own thread: a SQLite connection is used by the thread that made it, and the
event loop never waits on the disk.

Calls run there one at a time, in the order they were made; each costs one hop to the thread
and one back to the loop, whatever it does, so the store hands it a whole unit of work.
aiosqlite does the same, but offers it only through a private method (``_execute``), and the
store needs nothing else of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")

_Call = tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]]


class DatabaseThread:
    """One thread that runs calls in order and answers each on its caller's event loop."""

    def __init__(self) -> None:
        self._calls: SimpleQueue[_Call | None] = SimpleQueue()
        self._closed = False
        # A daemon: should the store never be closed, the process still ends (SQLite rolls an
        # unfinished transaction back when the file is next opened).
        self._thread = threading.Thread(target=self._serve, name="thothbot-database", daemon=True)
        self._thread.start()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the thread, after the calls made before it."""
        if self._closed:
            raise ValueError("the database is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls.put((future, fn, args))
        return await future

    async def stop(self, last: Callable[[], object]) -> None:
        """Run ``last`` (closing the connection) after the calls made before it, then end the
        thread; calls made afterwards are refused."""
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._calls.put((future, last, ()))
        self._calls.put(None)
        self._closed = True
        await future

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn, args = call
            try:
                result = fn(*args)
            except BaseException as error:  # handed to the caller, who raises it
                _answer(future, _fail, error)
            else:
                _answer(future, _succeed, result)


def _answer(future: asyncio.Future[Any], how: Callable[..., None], value: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
        future.get_loop().call_soon_threadsafe(how, future, value)


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # the caller was cancelled
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
