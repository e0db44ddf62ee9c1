"""Escalations on their way out: where they go, what the post says, and how bursts fold.

Pure decisions for ``thothbot/delivery.py``: which destinations an escalation matches, the
#ops post (an embed within Discord's limits, redacted, pinging only whom the server opted in),
the signed-webhook body, and the per-destination limiter that turns a burst into one summary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from thothbot.core.destinations import (
    BUILT_IN,
    Addressed,
    Destination,
    DiscordWebhook,
    HttpEndpoint,
    Ops,
    OutboxRef,
)
from thothbot.core.embeds import EmbedSpec, cut, fit, flatten_value
from thothbot.core.models import Ticket, TicketSource
from thothbot.core.redact import redact
from thothbot.core.settings import Destination as Configured
from thothbot.core.settings import GuildSettings
from thothbot.core.text import neutralize

WINDOW = timedelta(minutes=1)
WEBHOOK_LIMIT = 30  # Discord channel webhooks: about 30 messages a minute
SUMMARY_LINES = 20
COLOR_ESCALATED, COLOR_CLAIMED = 0xDC2626, 0x16A34A
_REFERENCE = re.compile(r"\$event((?:\.[A-Za-z0-9_-]+)+)")


@dataclass(frozen=True, slots=True)
class Facts:
    """What ``when`` conditions look at."""

    urgency: str | None
    tier: str | None
    channel: str | None
    type: str | None


def facts(ticket: Ticket, payload: Mapping[str, Any]) -> Facts:
    tier, channel = payload.get("customer_tier"), payload.get("channel")
    return Facts(
        urgency=ticket.urgency,
        tier=tier if isinstance(tier, str) else None,
        channel=channel if isinstance(channel, str) else ("discord" if ticket.channel_id else None),
        type=ticket.type_id,
    )


def matches(destination: Configured, known: Facts) -> bool:
    when = destination.when
    for wanted, value in (
        (when.urgency, known.urgency),
        (when.tier, known.tier),
        (when.channel, known.channel),
        (when.type, known.type),
    ):
        if wanted is not None and value not in wanted:
            return False
    return True


def destinations(settings: GuildSettings, known: Facts) -> list[Destination]:
    """Every place one escalation goes: the ops channel (through the bot, or the server's
    ``ops_webhook``), then each matching fan-out destination. Stored with the delivery, so a
    settings change later does not redirect what is already on its way."""
    found: list[Destination] = [_ops(settings)]
    for configured in settings.destinations:
        # One webhook listed twice (or as ops_webhook too) gets one post, and one rate limit.
        destination = _addressed(configured)
        if matches(configured, known) and destination not in found:
            found.append(destination)
    return found


def _ops(settings: GuildSettings) -> Ops | DiscordWebhook:
    """Where the server's #ops posts go: its ``ops_webhook`` if set, else the bot."""
    return Ops() if settings.ops_webhook is None else DiscordWebhook(settings.ops_webhook)


def _addressed(configured: Configured) -> Addressed:
    # The settings spell the kind as a Literal string (which mypy checks): pydantic would
    # name an enum's members, not their values, when it refuses a kind.
    match configured.kind:
        case "discord_webhook":
            return DiscordWebhook(configured.url)
        case "http":
            assert configured.secret is not None  # the settings refuse an http one without
            return HttpEndpoint(configured.url, configured.secret)


def resolve(template: str, event: Mapping[str, Any]) -> str:
    """``$event.a.b`` references replaced by the event's values ("-" when missing)."""

    def value(match: re.Match[str]) -> str:
        current: Any = event
        for part in match.group(1).split(".")[1:]:
            if not isinstance(current, Mapping) or part not in current:
                return "-"
            current = current[part]
        return flatten_value(current)

    return _REFERENCE.sub(value, template)


@dataclass(frozen=True, slots=True)
class OpsPost:
    """An escalation as Discord shows it: mention line, embed, and who may be pinged."""

    content: str
    embed: EmbedSpec
    allowed_mentions: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON a Discord webhook (or the bot's REST call) takes."""
        return {
            "content": self.content,
            "embeds": [self.embed.to_dict()],
            "allowed_mentions": self.allowed_mentions,
        }


def ops_post(
    ticket: Ticket,
    settings: GuildSettings,
    reason: str,
    *,
    event_name: str | None = None,
    payload: Mapping[str, Any] | None = None,
    claimed_by: str | None = None,
    type_label: str | None = None,
    link: str | None = None,
    marker: str | None = None,
) -> OpsPost:
    """The #ops post for an escalated ticket. Text people wrote is redacted; by default the
    title is the subject (or the event name) and the fields are the event's payload. The
    ``marker`` in the footer lets a restart find the post in the channel (see ``footer``)."""
    event = {k: _redacted(v) for k, v in (payload or {}).items()}
    event.setdefault("subject", neutralize(redact(ticket.subject)))
    title = neutralize(redact(ticket.subject)) or event_name or f"Ticket #{ticket.number}"
    fields: list[tuple[str, str]] = [
        ("Ticket", link or f"#{ticket.number} ({ticket.source})"),
        ("Reason", neutralize(reason)),
        ("Urgency", ticket.urgency or "not known yet"),
        ("Tags", ", ".join(ticket.tags) or "-"),
    ]
    if ticket.source == TicketSource.DISCORD:
        fields[1:1] = [("Customer", f"<@{ticket.customer_id}>"), ("Type", type_label or "-")]
    template = settings.embed
    if template is not None and template.title:
        title = resolve(template.title, event)
    if template is not None and template.fields:
        fields += [(name, resolve(value, event)) for name, value in template.fields.items()]
    else:
        fields += [(str(key), flatten_value(value)) for key, value in event.items()
                   if key not in ("subject", "body")]  # fmt: skip
    if ticket.assignee_id is not None:
        fields.append(("Assignee", f"<@{ticket.assignee_id}>"))
    if claimed_by is not None:
        fields.append(("Claimed by", f"<@{claimed_by}>"))
    body = event.get("body") if isinstance(event.get("body"), str) else ticket.body
    spec = fit(
        f"Escalated: {title}",
        fields,
        description=neutralize(redact(str(body or ""))),
        footer=footer(marker),
        color=COLOR_CLAIMED if claimed_by else COLOR_ESCALATED,
    )
    pings = settings.ops_mentions
    content = " ".join([f"<@&{r}>" for r in pings.roles] + [f"<@{u}>" for u in pings.users])
    allowed = {"parse": [], "roles": list(pings.roles), "users": list(pings.users)}
    return OpsPost(content, spec, allowed)


def _redacted(value: Any) -> Any:
    """A payload value as the #ops post shows it: redacted, then neutralized (core/text.py)."""
    if isinstance(value, str):
        return neutralize(redact(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)  # a card or phone number sent as a JSON number
        cleaned = redact(text)
        return value if cleaned == text else cleaned
    if isinstance(value, Mapping):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def webhook_event(ticket: Ticket, reason: str, at: datetime) -> dict[str, Any]:
    """The body sent to an http destination (Standard Webhooks: type, timestamp, data)."""
    return {
        "type": "ticket.escalated",
        "timestamp": at.isoformat(),
        "data": {
            "ticket": ticket.number,
            "guild_id": ticket.guild_id,
            "source": ticket.source,
            "ref": ticket.ref,
            "subject": redact(ticket.subject),
            "urgency": ticket.urgency,
            "type": ticket.type_id,
            "tags": ticket.tags,
            "reason": reason,
        },
    }


# Exactly once as people see it: ids and markers


def footer(marker: str | None) -> str:
    """The embed footer carrying a delivery's marker. Discord keeps a nonce for minutes only
    and history does not return it; the footer stays, so a restart reads it back."""
    return f"ref {marker}" if marker else ""


def has_marker(footer_text: str | None, marker: str) -> bool:
    return footer_text is not None and footer_text.split() == ["ref", marker]


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_event_id(at: datetime, entropy: bytes) -> str:
    """A Standard Webhooks webhook-id unique across installs: ``msg_`` and a ULID (48 bits of
    milliseconds, 80 random bits), so ids sort by time."""
    if len(entropy) != 10:
        raise ValueError("a ULID takes 10 bytes of entropy")
    value = (int(at.timestamp() * 1000) << 80) | int.from_bytes(entropy, "big")
    return "msg_" + "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def target(destination: Addressed) -> str:
    """A destination's identity for disabling it: the fingerprint its outbox rows carry
    (``OutboxRef.ref``), so no URL or token is kept and one hash names it everywhere."""
    return destination.reference.ref or ""


def target_label(destination: Addressed) -> str:
    """How admins are told which destination it is, without its token or path."""
    match = re.match(r"https?://([^/?#]+)", destination.url)
    host = match.group(1).rpartition("@")[2] if match else "?"
    kind = "Discord webhook" if isinstance(destination, DiscordWebhook) else "http destination"
    return f"the {kind} at {host}"


# The limiter: a destination takes WEBHOOK_LIMIT posts a minute; a burst folds into a summary.

Step = Literal["send", "summary", "wait"]


def plan(
    sent: Sequence[datetime], waiting: int, now: datetime, limit: int = WEBHOOK_LIMIT
) -> tuple[Step, datetime | None]:
    """What a destination does next with ``waiting`` posts queued, having sent at ``sent``:
    send the oldest; or, with one slot left in the minute and more than one waiting, send one
    summary of them all; or wait until the given moment, when a slot frees up."""
    recent = sorted(t for t in sent if now - t < WINDOW)
    if len(recent) < limit - 1 or (len(recent) == limit - 1 and waiting == 1):
        return "send", None
    if len(recent) == limit - 1:
        return "summary", None
    return "wait", recent[len(recent) - limit] + WINDOW


def summary(tickets: Sequence[Ticket], marker: str | None = None) -> EmbedSpec:
    """One post standing for many escalations of the last minute."""
    labels = {t.urgency for t in tickets}
    what = f"{next(iter(labels))} tickets" if len(labels) == 1 and None not in labels else "tickets"
    lines = [
        f"#{t.number} {cut(neutralize(redact(t.subject)), 80)}"
        + (f" ({t.urgency})" if t.urgency else "")
        for t in tickets[:SUMMARY_LINES]
    ]
    if len(tickets) > SUMMARY_LINES:
        lines.append(f"... and {len(tickets) - SUMMARY_LINES} more")
    return fit(f"{len(tickets)} more {what} escalated in the last minute", [],
               description="\n".join(lines), footer=footer(marker))  # fmt: skip


def find_destination(settings: GuildSettings, ref: OutboxRef) -> Destination | None:
    """The destination (URL and secret included) an outbox row's reference names, as the
    settings hold it now; None when the settings no longer have it."""
    built_in = BUILT_IN.get(ref.kind)
    if built_in is not None:
        return built_in
    found: list[Destination] = []
    if settings.ops_webhook is not None:
        found.append(DiscordWebhook(settings.ops_webhook))
    found += [_addressed(configured) for configured in settings.destinations]
    return next((d for d in found if d.reference == ref), None)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One escalation on its way to one destination."""

    id: int
    guild_id: str
    ticket_id: int
    destination: str  # JSON, as stored; also the rate limit's key
    reason: str
    created_at: datetime
    attempts: int
    event_id: str | None = None  # the webhook-id and marker, the same on every try
    body: str | None = None  # an http destination's body, fixed on the first try
    attempt: str | None = None  # the marker of a post that was being tried, maybe accepted
    attempting_at: datetime | None = None
