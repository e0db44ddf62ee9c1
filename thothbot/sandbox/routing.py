"""Plumbing of the REST layer: parsed calls, recorded requests, injected failures, held
requests, JSON answers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from .world import JSON

if TYPE_CHECKING:
    from .sandbox import Sandbox


@dataclass
class RecordedRequest:
    """One REST request the bot made, and the status it was answered."""

    method: str
    path: str  # without /api/v10
    query: dict[str, str]
    json: Any  # the JSON body, or payload_json of a multipart body
    files: list[tuple[str, bytes]]
    at: float  # time.monotonic()
    status: int = 0
    reason: str | None = None  # X-Audit-Log-Reason


@dataclass
class Failure:
    """An injected failure for the next `count` matching requests."""

    method: str
    pattern: re.Pattern[str]
    status: int
    count: int
    retry_after: float
    code: int | None


class Hold:
    """The next request matching ``method`` and ``path`` waits until released: a test stops the
    bot (SIGKILL) while Discord holds a request, the way a crash lands between two steps.

    ``after=False``: Discord has not acted yet when the request is held (nothing happened).
    ``after=True``: Discord acted (the channel exists, the message is posted) and only its answer
    is held, so the bot never learns that it did.
    """

    def __init__(
        self,
        method: str,
        pattern: re.Pattern[str],
        *,
        after: bool,
        where: Callable[[RecordedRequest], bool] | None = None,
    ) -> None:
        self.method = method
        self.pattern = pattern
        self.after = after
        self.where = where
        self.request: RecordedRequest | None = None  # the request held, once one came
        self.dropped = False
        self._reached = asyncio.Event()
        self._released = asyncio.Event()

    def matches(self, record: RecordedRequest) -> bool:
        return (
            self.method in ("*", record.method)
            and bool(self.pattern.search(record.path))
            and (self.where is None or self.where(record))
        )

    async def wait(self, timeout: float = 10.0) -> RecordedRequest:  # noqa: ASYNC109
        """Wait until a matching request is held; the request."""
        try:
            async with asyncio.timeout(timeout):
                await self._reached.wait()
        except TimeoutError:
            raise TimeoutError(
                f"no {self.method} {self.pattern.pattern} came within {timeout} s"
            ) from None
        assert self.request is not None
        return self.request

    def release(self) -> None:
        """Let the held request go on (its client may be long gone)."""
        self._released.set()

    def drop(self) -> None:
        """Lose the held request: one held before Discord acted is never acted on, as when the
        connection dies first (one held ``after`` stays done)."""
        self.dropped = True
        self._released.set()

    def take(self, record: RecordedRequest) -> None:
        self.request = record
        self._reached.set()

    async def released(self) -> None:
        await self._released.wait()


@dataclass
class Call:
    """A parsed request, as the endpoint functions see it."""

    method: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def body(self) -> JSON:
        return self.json if isinstance(self.json, dict) else {}


Handler = Callable[[Call], Any]


def json_response(status: int, body: Any) -> web.Response:
    """A JSON answer with exactly `application/json` (discord.py compares the header as is)."""
    return web.Response(
        status=status, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


async def read_body(request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
    """JSON, or multipart payload_json plus files[n] in index order."""
    if request.content_type == "multipart/form-data":
        payload: Any = None
        files: dict[int, tuple[str, bytes]] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            data = await part.read()
            if name == "payload_json":
                payload = json.loads(data)
            elif m := re.fullmatch(r"files\[(\d+)\]", name):
                files[int(m.group(1))] = (part.filename or name, bytes(data))
        return payload, [files[i] for i in sorted(files)]
    raw = await request.read()
    return (json.loads(raw) if raw else None), []


def failure_response(failure: Failure) -> web.Response:
    """The answer to a request an injected failure matched."""
    if failure.status == 429:
        body = {"message": "Rate limited.", "retry_after": failure.retry_after, "global": False}
        response = json_response(429, body)
        # discord.py retries a 429 only with a Via header (else it is Cloudflare's ban).
        response.headers["Via"] = "1.1 google"
        response.headers["Retry-After"] = str(max(1, round(failure.retry_after)))
        response.headers["X-RateLimit-Scope"] = "user"
        return response
    if failure.status == 403:
        return json_response(403, {"code": failure.code or 50013, "message": "Missing Permissions"})
    message = f"{failure.status}: Sandbox failure"
    return json_response(failure.status, {"message": message, "code": failure.code or 0})


async def serve_file(sandbox: Sandbox, request: web.Request) -> web.Response:
    """GET /attachments/{id}/{filename}: the bytes of an upload, like Discord's CDN."""
    stored = sandbox.world.files.get(request.match_info["id"])
    if stored is None or stored.filename != request.match_info["filename"]:
        return web.Response(status=404, text="Not Found")
    return web.Response(body=stored.data, headers={"Content-Type": stored.content_type})
