"""Helpers for tests: point discord.py at a sandbox, and run a bot against it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from .sandbox import Sandbox


@contextlib.asynccontextmanager
async def pointed_at(sandbox: Sandbox) -> AsyncIterator[Sandbox]:
    """Make discord.py talk to `sandbox` (starting it if needed), and restore it afterwards."""
    started_here = not sandbox.started
    if started_here:
        await sandbox.start()
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = sandbox.api_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sandbox.gateway_url)
    try:
        yield sandbox
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway
        if started_here:
            await sandbox.stop()


@contextlib.asynccontextmanager
async def running(
    client: discord.Client,
    sandbox: Sandbox,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109
) -> AsyncIterator[discord.Client]:
    """Run `client` against the sandbox until it is ready; close it on exit."""
    task = asyncio.create_task(client.start(sandbox.bot_token))
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait(
            {task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            task.result()  # raises what stopped the client
            raise RuntimeError("the client stopped before it was ready")
        if ready not in done:
            raise TimeoutError(f"the client was not ready after {timeout} s")
        yield client
    finally:
        ready.cancel()
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task
