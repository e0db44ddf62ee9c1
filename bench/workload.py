"""Realistic rules, messages and scenarios for the benchmarks, generated from a fixed seed."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

KEYWORDS = [
    "refund", "chargeback", "invoice", "cancel my subscription", "down for everyone",
    "data breach", "lawyer", "password reset", "two-factor", "api key", "rate limit",
    "webhook", "export", "delete my account", "gdpr", "double charged", "outage",
    "cannot log in", "billing address", "vat", "discount code", "upgrade", "downgrade",
    "sso", "invoice copy",
]  # fmt: skip
PHRASES = [
    "Hi team, since this morning I get an error 502 when I open the dashboard.",
    "Could you send me an invoice copy for October? Our accountant needs it.",
    "I was double charged on my card ending 4242, please help!",
    "The webhook deliveries to our endpoint keep failing with a timeout.",
    "How do I reset my password? The e-mail never arrives.",
    "We would like to upgrade to the enterprise plan, who can I talk to?",
    "Your app has been down for everyone in our office for an hour now.",
    "Please delete my account and all my data under GDPR article 17.",
    "Thanks, that fixed it! Have a nice day.",
    "Is there a discount code for non-profits? We are a small charity.",
    "Our SSO login with Okta stopped working after the update yesterday.",
    "I keep hitting the rate limit on the API even though we are on the pro plan.",
]  # fmt: skip


def rules(count: int = 25) -> list[dict[str, Any]]:
    """``count`` message_contains rules, each tagging and some escalating."""
    made = []
    for i, keyword in enumerate(KEYWORDS[:count]):
        actions: list[dict[str, Any]] = [{"type": "add_tag", "tag": keyword[:40]}]
        if i % 5 == 0:
            actions.append({"type": "escalate"})
        made.append(
            {"id": f"kw-{i}", "enabled": True, "name": f"Keyword {keyword}",
             "trigger": "message_contains", "match": keyword, "actions": actions}
        )  # fmt: skip
    return made


def messages(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(PHRASES) for _ in range(rng.randint(1, 3))) for _ in range(count)]


SCENARIO_RULES: list[dict[str, Any]] = [
    {"id": "assign", "enabled": True, "trigger": "ticket_opened",
     "actions": [{"type": "assign_round_robin"}]},
    {"id": "billing", "enabled": True, "trigger": "ticket_opened", "ticketTypeId": "billing",
     "actions": [{"type": "add_tag", "tag": "billing"}]},
    {"id": "refund", "enabled": True, "trigger": "message_contains", "match": "double charged",
     "actions": [{"type": "add_tag", "tag": "refund"}, {"type": "escalate"}]},
    {"id": "outage", "enabled": True, "trigger": "message_contains", "match": "down for everyone",
     "actions": [{"type": "escalate"}]},
    {"id": "escalated", "enabled": True, "trigger": "ticket_escalated",
     "actions": [{"type": "add_tag", "tag": "escalated"}]},
    {"id": "late", "enabled": True, "trigger": "sla_breach",
     "actions": [{"type": "add_tag", "tag": "sla-missed"}]},
    {"id": "sad", "enabled": True, "trigger": "csat_negative",
     "actions": [{"type": "add_tag", "tag": "follow-up"}, {"type": "escalate"}]},
]  # fmt: skip
SCENARIO_SETTINGS: dict[str, Any] = {
    "staff": [f"S{i}" for i in range(1, 9)],
    "types": {"billing": {"label": "Billing", "staff": ["S1", "S2", "S3"],
                          "sla": {"first_response_minutes": 20}}},
    "capacity": 40,
    "sla": {
        "first_response_minutes": 60,
        "resolution_minutes": 8 * 60,
        "business_hours": {
            "timezone": "Europe/Berlin",
            "weekly": {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
            "holidays": ["2026-12-24", "2026-12-25", "2026-12-26"],
        },
    },
}  # fmt: skip


def scenario(tickets: int, seed: int = 11) -> str:
    """A JSON Lines scenario: tickets open every ~2 minutes, get replies, close and are rated."""
    rng = random.Random(seed)
    clock = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    lines: list[tuple[datetime, dict[str, Any]]] = []
    staff = SCENARIO_SETTINGS["staff"]
    for n in range(tickets):
        clock += timedelta(seconds=rng.randint(30, 210))
        name, customer = f"T{n}", f"U{n % 3000}"
        opened = {"kind": "open", "ticket": name, "user": customer, "subject": f"Question {n}"}
        if rng.random() < 0.3:
            opened["type"] = "billing"
        lines.append((clock, opened))
        asked = clock + timedelta(minutes=rng.randint(0, 5))
        text = rng.choice(PHRASES)
        lines.append(
            (asked, {"kind": "message", "ticket": name, "user": customer, "content": text})
        )
        replied = asked + timedelta(minutes=rng.expovariate(1 / 25))
        reply = {"kind": "message", "ticket": name, "user": rng.choice(staff), "content": "On it!"}
        lines.append((replied, reply))
        closed = replied + timedelta(minutes=rng.randint(5, 600))
        lines.append((closed, {"kind": "close", "ticket": name, "user": customer}))
        if rng.random() < 0.4:
            rating = {"kind": "rate", "ticket": name, "user": customer, "rating": rng.randint(1, 5)}
            lines.append((closed + timedelta(minutes=3), rating))
        if n % 500 == 250:
            duty = {"kind": "duty", "user": rng.choice(staff), "on": rng.random() < 0.5}
            lines.append((clock, duty))
    lines.sort(key=lambda item: item[0])
    return "".join(json.dumps({"at": at.isoformat()} | line) + "\n" for at, line in lines)
