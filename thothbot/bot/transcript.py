"""Ticket transcripts as plain text and as a self-contained HTML page.

Plain data in, text and bytes out: the Discord layer turns channel history into
``TranscriptMessage`` values. Every user-written string in the HTML page goes through
``html.escape``, and the page loads nothing and runs nothing (its CSP forbids both).
Times are shown in UTC; naive datetimes are taken to be UTC already.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class TranscriptMessage:
    author_id: str
    author_name: str
    at: datetime  # aware UTC
    content: str
    attachments: tuple[str, ...] = ()  # file names
    is_bot: bool = False
    embeds: tuple[str, ...] = ()  # embeds flattened to text (title/description)


@dataclass(frozen=True, slots=True)
class TranscriptHeader:
    guild_name: str
    channel_name: str  # "ticket-0042"
    ticket_number: int
    subject: str
    customer_name: str
    opened_at: datetime
    closed_at: datetime
    closed_by: str
    reason: str | None = None
    # A transcript too long for one message's files is posted in parts, each a whole page.
    part: int = 1
    parts: int = 1
    first_message: int = 1  # the number of this part's first message in the ticket
    note: str | None = None  # said at the top, e.g. that the transcript was cut


INDENT = "    "
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _when(at: datetime) -> str:
    """``2026-11-23 09:04 UTC``"""
    return _utc(at).strftime("%Y-%m-%d %H:%M UTC")


def _iso(at: datetime) -> str:
    """``2026-11-23T09:04:05Z``, for machine-readable attributes."""
    return _utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _reason(header: TranscriptHeader) -> str:
    return header.reason if header.reason and header.reason.strip() else "-"


# -- plain text ------------------------------------------------------------------------------


def render_text(header: TranscriptHeader, messages: Sequence[TranscriptMessage]) -> str:
    """A header block, then one entry per message, oldest first as given."""
    meta = [
        ("Server", header.guild_name),
        ("Ticket", f"#{header.ticket_number}: {header.subject}"),
        ("Customer", header.customer_name),
        ("Opened", _when(header.opened_at)),
        ("Closed", f"{_when(header.closed_at)} by {header.closed_by}"),
        ("Reason", _reason(header)),
        ("Messages", _messages(header, messages)),
        *_extra(header),
    ]
    lines = [f"Transcript of #{_one_line(header.channel_name)}"]
    # Values that span lines continue under the first, aligned past the label.
    lines.extend(f"{label + ':':<11}{_hang(value, 11)}" for label, value in meta)
    lines.append("=" * 72)
    if not messages:
        lines.append("(no messages)")
    for message in messages:
        lines.extend(_text_entry(message))
    return "\n".join(lines) + "\n"


def _messages(header: TranscriptHeader, messages: Sequence[TranscriptMessage]) -> str:
    if header.parts == 1:
        return str(len(messages))
    last = header.first_message + len(messages) - 1
    return f"{header.first_message:,}-{last:,} (part {header.part} of {header.parts})"


def _extra(header: TranscriptHeader) -> list[tuple[str, str]]:
    return [("Note", header.note)] if header.note else []


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _hang(text: str, width: int) -> str:
    first, *rest = text.splitlines() or [""]
    return "\n".join([first, *(" " * width + line if line else "" for line in rest)])


def _text_entry(message: TranscriptMessage) -> list[str]:
    bot = " [bot]" if message.is_bot else ""
    first, *rest = message.content.splitlines() or [""]
    head = f"[{_when(message.at)}] {message.author_name}{bot} ({message.author_id}):"
    lines = [f"{head} {first}" if first else head]
    lines.extend(f"{INDENT}{line}" if line else "" for line in rest)
    for embed in message.embeds:
        lines.extend(f"{INDENT}> {line}".rstrip() for line in embed.splitlines() or [""])
    lines.extend(f"  attachment: {name}" for name in message.attachments)
    return lines


# -- HTML ------------------------------------------------------------------------------------

_CSS = """
body { margin: 0; background: #f4f5f7; color: #1f2328;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 860px; margin: 0 auto; padding: 24px 16px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; overflow-wrap: anywhere; }
.channel { color: #57606a; margin: 0 0 16px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px;
  background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 12px 16px;
  margin: 0 0 24px; }
dl.meta dt { color: #57606a; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; white-space: pre-wrap; }
.msg { background: #fff; border: 1px solid #d0d7de; border-radius: 8px;
  padding: 10px 14px; margin: 0 0 8px; }
.msg.bot { background: #f6f8ff; border-color: #c8d1f5; }
.msg header { display: flex; flex-wrap: wrap; gap: 8px; align-items: baseline; }
.author { font-weight: 600; overflow-wrap: anywhere; }
.uid, time { color: #6e7781; font-size: 12px; }
.tag { background: #5865f2; color: #fff; border-radius: 4px; font-size: 11px;
  font-weight: 600; padding: 0 5px; }
.content { white-space: pre-wrap; overflow-wrap: anywhere; margin-top: 4px; }
blockquote.embed { white-space: pre-wrap; overflow-wrap: anywhere; margin: 6px 0 0;
  padding: 4px 10px; border-left: 4px solid #5865f2; background: #f0f2f5; color: #30363d; }
ul.files { margin: 6px 0 0; padding-left: 20px; color: #57606a; font-size: 13px; }
.empty { color: #6e7781; font-style: italic; }
""".strip()

# Defence in depth on top of escaping: no scripts, no requests, only the inline stylesheet.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def render_html(header: TranscriptHeader, messages: Sequence[TranscriptMessage]) -> str:
    """A standalone page: inline CSS, no scripts, no external resources."""
    title = f"Ticket #{header.ticket_number}: {header.subject}"
    meta = [
        ("Server", _e(header.guild_name)),
        ("Customer", _e(header.customer_name)),
        ("Opened", _html_time(header.opened_at)),
        ("Closed", f"{_html_time(header.closed_at)} by {_e(header.closed_by)}"),
        ("Reason", _e(_reason(header))),
        ("Messages", _e(_messages(header, messages))),
        *((label, _e(value)) for label, value in _extra(header)),
    ]
    body = [_html_message(m) for m in messages] or ['<p class="empty">No messages.</p>']
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="channel">#{_e(header.channel_name)}'
        f" &middot; {_e(_count(len(messages), 'message'))}</p>",
        '<dl class="meta">',
        *(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in meta),
        "</dl>",
        '<section class="messages">',
        *body,
        "</section>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _html_time(at: datetime) -> str:
    return f'<time datetime="{_iso(at)}">{_when(at)}</time>'


def _html_message(message: TranscriptMessage) -> str:
    classes = "msg bot" if message.is_bot else "msg"
    tag = ' <span class="tag">BOT</span>' if message.is_bot else ""
    parts = [
        f'<article class="{classes}">',
        f'<header><span class="author">{_e(message.author_name)}</span>{tag}'
        f' <span class="uid">{_e(message.author_id)}</span> {_html_time(message.at)}</header>',
    ]
    if message.content:
        parts.append(f'<div class="content">{_e(_newlines(message.content))}</div>')
    parts.extend(
        f'<blockquote class="embed">{_e(_newlines(embed))}</blockquote>' for embed in message.embeds
    )
    if message.attachments:
        parts.append('<ul class="files">')
        parts.extend(f"<li>Attachment: {_e(name)}</li>" for name in message.attachments)
        parts.append("</ul>")
    parts.append("</article>")
    return "\n".join(parts)


def _newlines(text: str) -> str:
    """Line breaks normalized to ``\\n``, which the page's ``pre-wrap`` shows as written."""
    return "\n".join(text.splitlines())


# -- files -----------------------------------------------------------------------------------

# Room left in each part for what the measure below does not count: the part and note lines.
PART_MARGIN = 4096
# At most this many messages of files per transcript; a longer ticket's transcript is cut.
MAX_PARTS = 5


def transcript_files(
    header: TranscriptHeader, messages: Sequence[TranscriptMessage]
) -> list[tuple[str, bytes]]:
    """``[("ticket-0042.html", ...), ("ticket-0042.txt", ...)]``, UTF-8 encoded."""
    stem = _UNSAFE_FILENAME.sub("-", header.channel_name).strip(".-")
    if not stem:
        stem = f"ticket-{header.ticket_number:04d}"
    if header.parts > 1:
        stem = f"{stem}-part{header.part}"
    return [
        (f"{stem}.html", render_html(header, messages).encode("utf-8", "replace")),
        (f"{stem}.txt", render_text(header, messages).encode("utf-8", "replace")),
    ]


def message_size(message: TranscriptMessage) -> int:
    """The bytes a message adds to the HTML and the text file together."""
    text = "\n".join(_text_entry(message))
    return len(_html_message(message).encode("utf-8", "replace")) + len(text.encode()) + 2


def transcript_parts(
    header: TranscriptHeader,
    messages: Sequence[TranscriptMessage],
    limit: int,
    *,
    cut: bool = False,
    max_parts: int = MAX_PARTS,
) -> list[list[tuple[str, bytes]]]:
    """The transcript as the files of one or more messages, each message's files together at
    most ``limit`` bytes (Discord refuses a larger upload, and with it the whole post).

    A ticket longer than ``max_parts`` messages of files is cut after the last message that
    fits, and ``cut`` says the caller stopped reading early: either way the last part's header
    says so. A single message larger than a part (never with Discord's limits) gets a part alone.
    """
    base = sum(len(data) for _, data in transcript_files(header, [])) + PART_MARGIN
    budget = max(1, limit - base)
    groups: list[list[TranscriptMessage]] = [[]]
    used = 0
    for message in messages:
        size = message_size(message)
        if groups[-1] and used + size > budget:
            if len(groups) == max_parts:
                cut = True
                break
            groups.append([])
            used = 0
        groups[-1].append(message)
        used += size
    kept = sum(len(group) for group in groups)
    note = (
        f"This transcript stops after message {kept:,}: the rest of the ticket was too long"
        f" to send ({max_parts} messages of files at most)."
        if cut
        else None
    )
    files = []
    first = 1
    for index, group in enumerate(groups, start=1):
        part = replace(
            header,
            part=index,
            parts=len(groups),
            first_message=first,
            note=note if index == len(groups) else None,
        )
        files.append(transcript_files(part, group))
        first += len(group)
    return files
