"""Rule evaluation throughput: a server with 25 message_contains rules against real messages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.workload import messages, rules
from thothbot.core.engine import Context, RuleSet, run_rules
from thothbot.core.models import AuthorKind, MessagePosted, Ticket
from thothbot.core.rules import normalize_rules, validate_and_normalize
from thothbot.core.settings import GuildSettings

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def best_rate(count: int, run: Callable[[], object], repeats: int = 5) -> float:
    """Operations per second, best of ``repeats`` runs of ``run()`` doing ``count`` operations."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / best


def main() -> None:
    normalized = normalize_rules(rules(25)).rules
    ruleset = RuleSet(normalized)
    texts = messages(20_000)
    ticket = Ticket(id=1, guild_id="g", number=1, customer_id="U1", subject="s", created_at=T0)
    average = sum(map(len, texts)) / len(texts)

    def matching() -> None:
        for text in texts:
            ruleset.matching_message(ticket, text)

    settings = GuildSettings()
    events = [MessagePosted(T0, "U1", AuthorKind.CUSTOMER, text) for text in texts]

    def full() -> None:
        for event in events:
            fresh = Ticket(
                id=1, guild_id="g", number=1, customer_id="U1", subject="s", created_at=T0
            )
            run_rules(fresh, event, Context(ruleset, settings))

    raw = json.dumps(rules(25))

    def validate() -> None:
        for _ in range(1000):
            validate_and_normalize(raw)

    print(f"rules: 25 message_contains rules, {len(texts):,} messages of ~{average:.0f} chars")
    for label, count, body in (
        ("evaluations of the 25-rule set (which rules match)", len(texts), matching),
        ("full cascade (match, apply actions, record firings)", len(texts), full),
        ("validate-and-normalize of the 25 rules", 1000, validate),
    ):
        print(f"  {label:<52}: {best_rate(count, body):>12,.0f} /s")
