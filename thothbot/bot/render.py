"""What the bot shows: tickets, escalations, reports and firings as embeds and plain lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import discord

from thothbot.core.answers import SavedAnswer
from thothbot.core.embeds import fit
from thothbot.core.models import Firing, SlaTarget, Ticket, TicketSource
from thothbot.core.rules import Problem
from thothbot.core.settings import GuildSettings
from thothbot.core.stats import DeskStats
from thothbot.core.text import neutralize

COLOR_OPEN = 0x3B82F6

NO_PINGS = discord.AllowedMentions.none()

_TARGETS = {SlaTarget.FIRST_RESPONSE: "first response", SlaTarget.RESOLUTION: "resolution"}


def channel_name(number: int) -> str:
    return f"ticket-{number:04d}"


def ticket_ref(ticket: Ticket) -> str:
    """How a ticket is named in messages: its channel when it has one."""
    if ticket.channel_id is not None:
        return f"<#{ticket.channel_id}> (#{ticket.number})"
    return f"#{ticket.number} ({ticket.source})"


def type_label(settings: GuildSettings, ticket: Ticket) -> str | None:
    """The label of the ticket's type, as the server's settings name it."""
    ticket_type = settings.types.get(ticket.type_id) if ticket.type_id else None
    return ticket_type.label if ticket_type is not None else None


def when(moment: datetime) -> str:
    """A Discord timestamp: each reader sees it in their own time zone."""
    return f"<t:{int(moment.timestamp())}:f>"


def duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours // 24} days"


def _embed(
    title: str,
    fields: Sequence[tuple[str, str]],
    *,
    description: str = "",
    color: int,
    footer: str = "",
) -> discord.Embed:
    spec = fit(title, fields, description=description, footer=footer, color=color)
    return discord.Embed.from_dict(spec.to_dict())


def ticket_fields(ticket: Ticket, type_label: str | None) -> list[tuple[str, str]]:
    return [
        (
            "Customer",
            f"<@{ticket.customer_id}>"
            if ticket.source == TicketSource.DISCORD
            else ticket.customer_id,
        ),
        ("Type", type_label or ticket.type_id or "-"),
        ("Urgency", ticket.urgency or "not known yet"),
        ("Assignee", f"<@{ticket.assignee_id}>" if ticket.assignee_id else "nobody yet"),
        ("Tags", ", ".join(ticket.tags) or "-"),
    ]


def ticket_card(ticket: Ticket, type_label: str | None) -> discord.Embed:
    """The first message of a ticket channel. The customer's words are neutralized: staff
    read them here and must see where a link really goes."""
    return _embed(
        f"Ticket #{ticket.number}: {neutralize(ticket.subject)}",
        ticket_fields(ticket, type_label)[:2],
        description=neutralize(ticket.body),
        color=COLOR_OPEN,
        footer="Staff: Claim takes the ticket, Escalate sends it to the ops channel.",
    )


def info(
    ticket: Ticket, type_label: str | None, clocks: Sequence[tuple[SlaTarget, datetime, str]]
) -> discord.Embed:
    fields = [("Status", ticket.status.value), *ticket_fields(ticket, type_label)]
    if ticket.escalated:
        fields.append(("Escalated", ticket.escalation_reason or "yes"))
    for target, deadline, status in clocks:
        fields.append((f"SLA {_TARGETS[target]}", f"{status}, due {when(deadline)}"))
    title = f"Ticket #{ticket.number}: {neutralize(ticket.subject)}"
    return _embed(title, fields, color=COLOR_OPEN, footer="")


def answer_lines(answers: Sequence[SavedAnswer]) -> list[str]:
    """``/answer list``: each answer's id, triggers and start, neutralized like any repeated
    text (an answer may have been saved from a pasted message)."""
    return [neutralize(f"{a.id}: {', '.join(a.triggers)} -> {a.text[:80]}") for a in answers]


def problems(lines: Sequence[str], heading: str) -> str:
    """A report: the heading, then one problem per line (a code block keeps paths readable)."""
    if not lines:
        return heading
    return heading + "\n```\n" + "\n".join(lines) + "\n```"


def rule_problems(found: Sequence[Problem]) -> list[str]:
    return [p.line() for p in found]


def firing_lines(firings: Sequence[Firing]) -> list[str]:
    """What rules did, one line per firing: ``/automation test`` shows what they would do,
    ``/automation log`` what they did, with when and on which ticket."""
    return [_firing_line(firing) for firing in firings]


def _firing_line(firing: Firing) -> str:
    outcomes = "; ".join(
        f"{o.type.value}: {'applied' if o.applied else 'no-op'} ({o.detail})"
        for o in firing.outcomes
    )
    line = f"{firing.rule_id} ({firing.trigger.value}): {outcomes or 'no actions'}"
    if firing.ticket_number is None:  # a dry run: no ticket, and now
        return line
    return f"{firing.at:%Y-%m-%d %H:%M} #{firing.ticket_number} {line}"


def stats(numbers: DeskStats, days: int) -> discord.Embed:
    csat = f"{numbers.csat:.0%} of {numbers.rated} ratings" if numbers.csat is not None else "-"
    first = (
        duration(numbers.median_first_response)
        if numbers.median_first_response is not None
        else "-"
    )
    return _embed(
        f"The last {days} days",
        [
            ("Opened", str(numbers.opened)),
            ("Open now", str(numbers.open_now)),
            ("Closed", str(numbers.closed)),
            ("CSAT", csat),
            ("Median first response", first),
            ("SLA breaches", str(numbers.breaches)),
        ],
        color=COLOR_OPEN,
    )
