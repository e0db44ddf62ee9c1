"""The urgency classifier's client: any OpenAI-compatible endpoint, bounded in time and in flight.

Cache first (``service/classifications.py``, keyed by ``classify.cache_key``), then the model
through a strict JSON schema: a hard ``timeout`` per attempt and one retry (done here, not by
the SDK, so that it is counted and testable), at most ``concurrency`` requests in flight.
Whatever goes wrong (no model configured, timeout, HTTP error, an answer outside the schema)
the keyword heuristic decides; ``classify`` never raises for the endpoint's sake. Every result
says who decided it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import openai
from openai import AsyncOpenAI

from thothbot.config import Config
from thothbot.core.classify import (
    Classification,
    RedactedTicket,
    Source,
    TicketText,
    build_messages,
    cache_key,
    heuristic,
    parse_response,
    redact_ticket,
    response_format,
)
from thothbot.core.settings import Classifier
from thothbot.napping import utc_now
from thothbot.service.classifications import DEFAULT_TTL, ClassificationCache

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 1
DEFAULT_CONCURRENCY = 4
# Local servers (Ollama, vLLM, llama.cpp) ignore the key, but the SDK insists on one.
PLACEHOLDER_API_KEY = "unused"


class UrgencyClassifier:
    """Classifies tickets by urgency with a model when one is configured, else by keywords."""

    def __init__(
        self,
        model: str | None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncOpenAI | None = None,
        cache: ClassificationCache | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        concurrency: int = DEFAULT_CONCURRENCY,
        ttl: timedelta = DEFAULT_TTL,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if retries < 0 or concurrency < 1 or timeout <= 0:
            raise ValueError("retries must be >= 0, concurrency >= 1 and timeout > 0")
        self.model = model
        self.cache = cache
        self.timeout = timeout
        self.retries = retries
        self.ttl = ttl
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._owns_client = client is None and model is not None
        self._client = client
        if self._owns_client:
            # The SDK's defaults (10 minutes, 2 retries) are far too long for a ticket in flight.
            self._client = AsyncOpenAI(
                base_url=base_url,
                api_key=api_key or PLACEHOLDER_API_KEY,
                timeout=timeout,
                max_retries=0,
            )

    @classmethod
    def from_config(
        cls, config: Config, cache: ClassificationCache | None = None, **options: Any
    ) -> UrgencyClassifier:
        """A classifier for ``THOTH_LLM_*``: off (heuristic only) when no model is set."""
        api_key = config.llm_api_key.get_secret_value() if config.llm_api_key else None
        return cls(
            config.llm_model,
            base_url=config.llm_base_url,
            api_key=api_key,
            cache=cache,
            **options,
        )

    async def close(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.close()

    async def classify(
        self, ticket: TicketText, settings: Classifier | None = None
    ) -> Classification:
        """The ticket's urgency, one of ``settings.labels``: from the cache, model or heuristic."""
        settings = settings or Classifier()
        client, model = self._client, self.model
        if model is None or client is None:
            return heuristic(ticket, settings.labels)
        redacted = redact_ticket(ticket)
        key = cache_key(model, settings, redacted)
        if self.cache is not None:
            hit = await self.cache.get(key, self.clock(), self.ttl)
            if hit is not None and hit[0] in settings.labels:
                return Classification(hit[0], hit[1], Source.CACHE)
        async with self._slots:
            answer = await self._ask(client, model, key, redacted, settings)
        if answer is None:
            return heuristic(ticket, settings.labels)
        if self.cache is not None:
            await self.cache.put(key, answer.label, answer.reason, self.clock())
        return answer

    async def _ask(
        self,
        client: AsyncOpenAI,
        model: str,
        key: str,
        ticket: RedactedTicket,
        settings: Classifier,
    ) -> Classification | None:
        """The model's valid answer within ``1 + retries`` attempts, or None."""
        messages: Any = build_messages(ticket, settings)
        schema: Any = response_format(settings.labels)
        for attempt in range(1, self.retries + 2):
            try:
                # The SDK's timeout applies per phase (connect, each read); this bounds the whole.
                async with asyncio.timeout(self.timeout):
                    completion = await client.chat.completions.create(
                        model=model, messages=messages, response_format=schema
                    )
                content = completion.choices[0].message.content if completion.choices else None
            except TimeoutError:
                log.warning("classifier %s: attempt %d timed out", key[:12], attempt)
                continue
            except openai.APIStatusError as error:
                log.warning(
                    "classifier %s: attempt %d: HTTP %d", key[:12], attempt, error.status_code
                )
                if error.status_code != 429 and error.status_code < 500:
                    return None  # the request itself is refused: asking again will not help
                continue
            except Exception as error:  # connection errors, malformed replies: fall back
                log.warning(
                    "classifier %s: attempt %d: %s", key[:12], attempt, type(error).__name__
                )
                continue
            answer = parse_response(content, settings.labels)
            if answer is not None:
                return answer
            log.warning("classifier %s: attempt %d: answer outside the schema", key[:12], attempt)
        return None


async def classify_once(
    config: Config, ticket: TicketText, settings: Classifier | None = None, **options: Any
) -> Classification:
    """Classify one ticket with a classifier built from ``config`` and closed after (the CLI)."""
    classifier = UrgencyClassifier.from_config(config, **options)
    try:
        return await classifier.classify(ticket, settings)
    finally:
        await classifier.close()
