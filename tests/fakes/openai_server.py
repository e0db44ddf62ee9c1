"""A fake OpenAI-compatible server on loopback, for running the real ``openai`` client over HTTP.

It implements ``POST /v1/chat/completions`` and answers each request according to a mode,
taken from ``script`` (one per request, in order) or else ``mode``:

* ``good``: ``{"label": <label>, "reason": <reason>}`` as a strict-schema model would;
* ``bad_label``: a label outside the request's enum; ``not_json``: prose; ``missing_key``:
  no ``reason``; ``extra_key``: one key too many;
* ``obey``: a gullible model that does what the ticket says: "answer <word>" makes <word>
  the label, whatever the schema allows;
* ``stall``: no answer until ``stall_seconds`` pass (or the server stops);
* ``trickle``: headers at once, then the body one space every 0.05 s for ``stall_seconds``, so
  that no single read waits long (only a bound on the whole request stops it);
* ``error_500`` / ``error_400``: an HTTP error with an OpenAI-style error body.

It records every request body (``requests``), counts requests in flight and their maximum,
and can hold good answers for ``delay`` seconds so that concurrency becomes visible, or while
``answering`` is clear, so that a test knows no answer has come.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from aiohttp import web

_ORDER = re.compile(r"answer (?:with )?(?:the label )?['\"]?([A-Za-z0-9_-]+)")


class FakeOpenAI:
    def __init__(
        self,
        mode: str = "good",
        *,
        label: str | None = None,
        reason: str = "Customers cannot work.",
        delay: float = 0.0,
        stall_seconds: float = 5.0,
    ) -> None:
        self.mode = mode
        self.script: list[str] = []
        self.label = label  # None: the last (most urgent) label of the request's enum
        self.reason = reason
        self.delay = delay
        self.stall_seconds = stall_seconds
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.answering = asyncio.Event()
        self.answering.set()

    @property
    def count(self) -> int:
        return len(self.requests)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v1"
        return self.base_url

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @classmethod
    @contextmanager
    def threaded(cls, mode: str = "good", **options: Any) -> Iterator[FakeOpenAI]:
        """The server on its own event loop in a thread, for code that runs ``asyncio.run``."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

        async def make() -> FakeOpenAI:
            server = cls(mode, **options)
            await server.start()
            return server

        server = asyncio.run_coroutine_threadsafe(make(), loop).result(5)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        mode = self.script.pop(0) if self.script else self.mode
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(mode, body, request)
        finally:
            self.in_flight -= 1

    async def _answer(
        self, mode: str, body: dict[str, Any], request: web.Request
    ) -> web.StreamResponse:
        if mode == "trickle":
            return await self._trickle(body, request)
        if mode == "stall":
            with suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.stall_seconds)
            return _completion(body, '{"label": "low", "reason": "too late"}')
        if mode == "error_500":
            return _error(500, "The server had an error while processing your request.")
        if mode == "error_400":
            return _error(400, "response_format json_schema is not supported by this model.")
        await self.answering.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        labels = _enum(body)
        label = self.label or labels[-1]
        answers = {
            "good": {"label": label, "reason": self.reason},
            "bad_label": {"label": "urgent-ish", "reason": self.reason},
            "missing_key": {"label": label},
            "extra_key": {"label": label, "reason": self.reason, "confidence": 0.9},
        }
        if mode in answers:
            return _completion(body, json.dumps(answers[mode]))
        if mode == "not_json":
            return _completion(body, f"Sure! I would say this ticket is {label}.")
        if mode == "obey":
            ticket = json.loads(body["messages"][-1]["content"])
            found = _ORDER.search(f"{ticket['subject']} {ticket['body']}")
            ordered = found.group(1) if found else label
            return _completion(body, json.dumps({"label": ordered, "reason": "As you asked."}))
        raise AssertionError(f"unknown mode {mode!r}")

    async def _trickle(self, body: dict[str, Any], request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        end = loop.time() + self.stall_seconds
        with suppress(ConnectionError):
            while loop.time() < end and not self._closing.is_set():
                await response.write(b" ")
                await asyncio.sleep(0.05)
            late = _completion_body(body, '{"label": "low", "reason": "too late"}')
            await response.write(json.dumps(late).encode())
            await response.write_eof()
        return response


def _enum(body: dict[str, Any]) -> list[str]:
    schema = body["response_format"]["json_schema"]["schema"]
    labels: list[str] = schema["properties"]["label"]["enum"]
    return labels


def _completion(body: dict[str, Any], content: str) -> web.Response:
    return web.json_response(_completion_body(body, content))


def _completion_body(body: dict[str, Any], content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _error(status: int, message: str) -> web.Response:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": None}}, status=status
    )
